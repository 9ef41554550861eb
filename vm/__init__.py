"""QEMU runner and the kernel matrix: lands with issue 6."""
