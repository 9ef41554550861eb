"""The checkpoint/restore engine (dump, restore, images, CLI): lands with issue 3."""
