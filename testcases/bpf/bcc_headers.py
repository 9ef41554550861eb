"""Kernel headers for bcc, which compiles its BPF C at run time against them.

A host kernel without headers of its own (no /lib/modules/RELEASE/build, no kheaders) gets
Debian's (linux-headers-amd64, one of ./crbench's packages): their -common and arch trees
merged, as symlinks, into one tree under the cache that BCC_KERNEL_SOURCE names.  Programs
that only make maps do not depend on the headers' version.
"""

import glob
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path


def kernel_source():
    """The directory for BCC_KERNEL_SOURCE, None when bcc finds headers itself; raises
    LookupError when there are none to use."""
    own = Path("/lib/modules") / platform.release() / "build"
    if (own / "include" / "linux" / "kconfig.h").exists():
        return None
    commons = sorted(glob.glob("/usr/src/linux-headers-*-common"))
    if not commons:
        raise LookupError("no kernel headers for bcc: neither the running kernel's nor "
                          "Debian's linux-headers-amd64")
    common = Path(commons[-1])
    arch = Path(str(common)[:-len("-common")] + "-amd64")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    merged = Path(base) / "crbench" / "bcc-headers" / arch.name
    if (merged / "include" / "linux" / "kconfig.h").exists():
        return merged
    merged.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".merge-", dir=merged.parent))
    try:
        for tree in (common, arch):                 # the arch tree's files win
            subprocess.run(["cp", "-asf", f"{tree}/.", str(work)], check=True,
                           capture_output=True)
        try:
            work.rename(merged)
        except OSError:
            if not (merged / "include").exists():   # not a lost race with another merger
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return merged
