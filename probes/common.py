"""Things several probes share: the parsed kernel BTF, small BPF objects."""

import contextlib
import functools
import os

from kernel import btf


@functools.lru_cache(maxsize=1)
def vmlinux_btf():
    """The running kernel's BTF (parsed once: BTF.vmlinux); OSError(ENOENT) when absent."""
    return btf.BTF.vmlinux()


def kernel_has(name, kind):
    """Is there a BTF type ``name`` of ``kind`` in the running kernel?"""
    try:
        return vmlinux_btf().find(name, kind) is not None
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def int_btf_blob():
    """A BTF blob holding one `int`, for maps that need a typed key and value."""
    builder = btf.Builder()
    builder.int("int", 4, signed=True)
    return builder.blob()


@contextlib.contextmanager
def closing_fds(*already_open):
    """Collect fds in a list and close them all on the way out."""
    fds = list(already_open)
    try:
        yield fds
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                os.close(fd)

