"""BPF maps made by bcc (the design's BPF package) from Python, beside the raw bpf() ones of
test_bpf.py: the C/R engine must not care who made a map."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent


def _bcc_missing():
    """Why bcc cannot compile here, or None."""
    import importlib.util
    import sys
    if importlib.util.find_spec("bcc") is None:     # Debian's python3-bpfcc
        return "bcc is not importable: ./crbench setup installs python3-bpfcc"
    sys.path.insert(0, str(HERE))
    from bcc_headers import kernel_source
    try:
        kernel_source()
    except (LookupError, OSError) as e:
        return str(e)
    return None


# bcc needs CAP_BPF of the initial user namespace (no uns flavor, see test_bpf.py) and reads
# /sys, which the ns flavor's private root does not hold (sysfs mounts: issue 10)
PROGRAM = Program(HERE / "bcc_maps.py", flavors=("h",), start_timeout=120)


@pytest.mark.skipif("_bcc_missing() is not None", reason="bcc cannot compile BPF C here")
def test_bcc_maps(zdtm):
    zdtm.run(PROGRAM)
