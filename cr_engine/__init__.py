"""The bundled checkpoint/restore engine.

    import cr_engine
    res = cr_engine.dump(pid, "imgs")                 # freeze, write images, kill the tree
    res = cr_engine.dump(pid, "imgs", leave_running=True)
    res = cr_engine.restore("imgs")                   # same pids; the root is our child
    print(res.root_pid, res.stats)
    cr_engine.show("imgs")                            # the decoded images, as a dict

Every failure raises a CRError subclass (DumpError, Unsupported, RestoreError, ImageError).
"""

from .dump import DumpResult, dump, pre_dump
from .errors import CRError, DumpError, ImageError, RestoreError, Unsupported
from .restore import RestoreResult, restore
from .show import show

__all__ = ["dump", "pre_dump", "restore", "show", "DumpResult", "RestoreResult", "CRError", "DumpError",
           "ImageError", "RestoreError", "Unsupported"]
