"""The engine's exceptions: every failure a user sees is one of these, with one clear line."""


class CRError(Exception):
    """Base of all engine errors."""


class DumpError(CRError):
    """The dump failed; the tree was left running as it was."""


class Unsupported(DumpError):
    """The tree holds something the engine cannot dump yet (named in the message)."""


class ImageError(CRError):
    """An image directory is missing, foreign, damaged or from a newer format."""


class RestoreError(CRError):
    """The restore failed at ``stage``; every task it created was killed."""

    def __init__(self, message, stage=None):
        super().__init__(f"{stage}: {message}" if stage else message)
        self.stage = stage
