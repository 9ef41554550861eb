"""File locks: flock(2) and open-file-description (OFD) locks belong to a description,
POSIX (fcntl) locks to a process.  All are taken again by calls injected into the restored
process (so /proc/locks names it), at the end of its restore: closing any fd of a file
drops the process's POSIX locks on it, and the restore closes its service fds before.

Dump reads them from the ``lock:`` lines of /proc/pid/fdinfo/N, which list the locks of
that description (flock, OFD) and of that process on that file (POSIX).
"""

import fcntl
import os
import struct

from kernel import fdinfo

from .errors import RestoreError, Unsupported

F_OFD_SETLK = 37
_FLOCK = struct.Struct("hhqqi4x")       # struct flock: type, whence, start, len, pid
_TYPES = {"READ": fcntl.F_RDLCK, "WRITE": fcntl.F_WRLCK}


def from_fdinfo(info, what):
    """[{"kind": "flock"|"ofd"|"posix", "type": "READ"|"WRITE", "start", "end"}] of an fd;
    ``end`` is None for a lock to the end of the file."""
    out = []
    for line in fdinfo.values(info, "lock"):
        parts = line.split()
        kind, lock_type = parts[1], parts[3]
        if kind not in ("FLOCK", "OFDLCK", "POSIX") or lock_type not in _TYPES:
            raise Unsupported(f"unsupported: {kind} {lock_type} lock ({what})")
        out.append({"kind": {"FLOCK": "flock", "OFDLCK": "ofd", "POSIX": "posix"}[kind],
                    "type": lock_type, "start": int(parts[6]),
                    "end": None if parts[7] == "EOF" else int(parts[7])})
    return out


def take(rem, scratch, fd, locks, who):
    """Have the process take ``locks`` on its ``fd`` without waiting; a conflict fails the
    restore naming the lock."""
    for lock in locks:
        if lock["kind"] == "flock":
            op = fcntl.LOCK_EX if lock["type"] == "WRITE" else fcntl.LOCK_SH
            got = rem.call("flock", fd, op | fcntl.LOCK_NB, check=False)
        else:
            length = 0 if lock["end"] is None else lock["end"] - lock["start"] + 1
            arg = scratch.put(_FLOCK.pack(_TYPES[lock["type"]], os.SEEK_SET, lock["start"],
                                          length, 0))
            cmd = F_OFD_SETLK if lock["kind"] == "ofd" else fcntl.F_SETLK
            got = rem.call("fcntl", fd, cmd, arg, check=False)
            scratch.reset()
        if got < 0:
            raise RestoreError(f"cannot take the {lock['kind']} {lock['type']} lock "
                               f"({lock['start']}-{lock['end'] if lock['end'] is not None else 'EOF'}) "
                               f"of {who}: {os.strerror(-got)}", "state")
