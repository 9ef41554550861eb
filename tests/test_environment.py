"""The environment `./crbench` builds: what the project's code relies on."""

import sys


def test_bcc_is_importable():
    # Debian's python3-bpfcc, visible through the venv's system site packages
    import bcc
    assert hasattr(bcc, "BPF")


def test_pinned_python_packages_import():
    import ptrace  # python-ptrace
    import pyroute2
    import xdist
    assert ptrace and pyroute2 and xdist


def test_interpreter_is_debians():
    # bcc exists only for /usr/bin/python3; the venv must be built from it
    assert sys.base_prefix == "/usr", sys.base_prefix
