"""Our answers to CRIU's feature names agree with `criu check --feature` itself.

Runs against the reference CRIU (Debian trixie's 4.x in its own root,
tools/reference_criu.py, set up by ./crbench).  Names the installed CRIU
does not know yet (4.2 added some) are skipped; the few places where the
answer depends on more than the kernel are listed with the reason.
"""

import os
import subprocess
import sys

import pytest

from .helpers import TOP, run_probes
from .test_registry import CRIU_FEATURES

TOOL = os.path.join(TOP, "tools", "reference_criu.py")

# name -> why our answer may differ from CRIU's on the same host
NOT_KERNEL_ONLY = {
    "nftables": "CRIU's answer is whether it was built with libnftables; ours whether this "
                "host has nf_tables and libnftables or nft (the trixie root has them, the host "
                "may not)",
    "has_ipt_legacy": "CRIU looks for iptables-legacy binaries in its own root",
    "net_diag_raw": "CRIU passes it when raw_diag is missing (it treats ENOENT as collected); "
                    "ours requires raw sockets to be really dumped (CONFIG_INET_RAW_DIAG)",
}


def reference_criu():
    if os.geteuid() != 0:
        return None
    found = subprocess.run([sys.executable, TOOL, "path"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


pytestmark = pytest.mark.skipif(
    reference_criu() is None,
    reason="no reference CRIU (as root: /usr/bin/python3 tools/reference_criu.py setup)")


@pytest.mark.parametrize("name", [n for n in CRIU_FEATURES if n not in NOT_KERNEL_ONLY])
def test_same_answer_as_criu(name):
    criu = subprocess.run([sys.executable, TOOL, "run", "--", "check", "--feature", name],
                          capture_output=True, text=True, timeout=60)
    if "Unknown feature" in criu.stdout + criu.stderr:
        pytest.skip(f"the reference CRIU does not know {name!r} (newer than its version)")
    ours = run_probes("--feature", name)
    assert ours.returncode == criu.returncode, (
        f"{name}: criu says {criu.returncode} ({(criu.stdout + criu.stderr).strip()[-200:]}), "
        f"we say {ours.returncode} ({ours.stdout.strip()})")
