"""SysV IPC: shared memory segments, semaphore sets and message queues through raw system
calls (x86-64 IPC_64 layouts, <asm/ipcbuf.h>, <asm/shmbuf.h>, <asm/sembuf.h>,
<asm-generic/msgbuf.h>), the /proc/sysvipc tables and the next-id sysctls of the caller's
IPC namespace.

Thin wrappers: every failure raises ``OSError`` with the kernel's errno.
"""

import ctypes
import struct

from .libc import syscall

KINDS = ("shm", "sem", "msg")
IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
IPC_RMID, IPC_SET, IPC_STAT = 0, 1, 2
SHM_RDONLY, SHM_EXEC = 0o10000, 0o100000
SHM_LOCK, SHM_UNLOCK = 11, 12
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000          # mode bits the kernel sets on a segment
GETPID, GETALL, SETALL = 11, 13, 17
SEM_UNDO = 0x1000
MSG_NOERROR, MSG_COPY = 0o10000, 0o40000       # MSG_COPY needs CONFIG_CHECKPOINT_RESTORE
_ID_COLUMN = {"shm": "shmid", "sem": "semid", "msg": "msqid"}


class Perm(ctypes.Structure):                  # struct ipc64_perm
    _fields_ = [("key", ctypes.c_int32), ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32),
                ("cuid", ctypes.c_uint32), ("cgid", ctypes.c_uint32),
                ("mode", ctypes.c_uint32), ("seq", ctypes.c_uint16), ("pad", ctypes.c_uint16),
                ("unused", ctypes.c_uint64 * 2)]


class ShmidDs(ctypes.Structure):
    _fields_ = [("perm", Perm), ("segsz", ctypes.c_uint64), ("atime", ctypes.c_int64),
                ("dtime", ctypes.c_int64), ("ctime", ctypes.c_int64), ("cpid", ctypes.c_int32),
                ("lpid", ctypes.c_int32), ("nattch", ctypes.c_uint64),
                ("unused", ctypes.c_uint64 * 2)]


class SemidDs(ctypes.Structure):
    _fields_ = [("perm", Perm), ("otime", ctypes.c_int64), ("unused1", ctypes.c_uint64),
                ("ctime", ctypes.c_int64), ("unused2", ctypes.c_uint64),
                ("nsems", ctypes.c_uint64), ("unused", ctypes.c_uint64 * 2)]


class MsqidDs(ctypes.Structure):
    _fields_ = [("perm", Perm), ("stime", ctypes.c_int64), ("rtime", ctypes.c_int64),
                ("ctime", ctypes.c_int64), ("cbytes", ctypes.c_uint64),
                ("qnum", ctypes.c_uint64), ("qbytes", ctypes.c_uint64),
                ("lspid", ctypes.c_int32), ("lrpid", ctypes.c_int32),
                ("unused", ctypes.c_uint64 * 2)]


_DS = {"shm": ShmidDs, "sem": SemidDs, "msg": MsqidDs}


def table(kind):
    """{id: {column: int}} of /proc/sysvipc/<kind>, the id under "id" (perms is octal there:
    the access bits and, for shm, SHM_DEST and SHM_LOCKED)."""
    with open(f"/proc/sysvipc/{kind}") as f:
        header, *rows = f.read().splitlines()
    names = header.split()
    out = {}
    for row in rows:
        entry = {name: int(value, 8 if name == "perms" else 10)
                 for name, value in zip(names, row.split())}
        entry["id"] = entry.pop(_ID_COLUMN[kind])
        out[entry["id"]] = entry
    return out


def ctl(kind, ident, cmd, arg=None):
    """shmctl / semctl (on the whole set) / msgctl."""
    if kind == "sem":
        return syscall("semctl", ident, 0, cmd, arg)
    return syscall(f"{kind}ctl", ident, cmd, arg)


def stat(kind, ident):
    ds = _DS[kind]()
    ctl(kind, ident, IPC_STAT, ctypes.byref(ds))
    return ds


def set_perm(kind, ident, uid, gid, mode, qbytes=None):
    """IPC_SET: owner, access bits and (a queue's) byte limit; the rest as it is."""
    ds = stat(kind, ident)
    ds.perm.uid, ds.perm.gid, ds.perm.mode = uid, gid, mode
    if qbytes is not None:
        ds.qbytes = qbytes
    ctl(kind, ident, IPC_SET, ctypes.byref(ds))


def remove(kind, ident):
    ctl(kind, ident, IPC_RMID)


def set_next_id(kind, ident):
    """The id the namespace's next <kind>get() creation takes.  The kernel resets it to -1
    (its choice) once a creation used it, and only then: the sysctl takes no -1.  A taken id
    makes the creation take the next free index instead."""
    with open(f"/proc/sys/kernel/{kind}_next_id", "w") as f:
        f.write(str(ident))


def next_id(kind):
    with open(f"/proc/sys/kernel/{kind}_next_id") as f:
        return int(f.read())


# shared memory ------------------------------------------------------------------
def shmget(key, size, flags):
    return syscall("shmget", key, size, flags)


def shmat(ident, flags=0, addr=0):
    return syscall("shmat", ident, addr, flags)


def shmdt(addr):
    return syscall("shmdt", addr)


# semaphores ---------------------------------------------------------------------
def semget(key, nsems, flags):
    return syscall("semget", key, nsems, flags)


def semop(ident, ops):
    """``ops``: [(semaphore, op, flags)] done at once."""
    buf = b"".join(struct.pack("Hhh", *op) for op in ops)
    syscall("semop", ident, ctypes.create_string_buffer(buf, len(buf)), len(ops))


def sem_values(ident, nsems):
    values = (ctypes.c_ushort * nsems)()
    syscall("semctl", ident, 0, GETALL, values)
    return list(values)


def sem_set_values(ident, values):
    """SETALL (it also clears every process's undo adjustments of the set)."""
    syscall("semctl", ident, 0, SETALL, (ctypes.c_ushort * len(values))(*values))


def sem_pids(ident, nsems):
    """The pid of the last operation (semop, SETVAL, SETALL, undo at exit) per semaphore."""
    return [syscall("semctl", ident, i, GETPID) for i in range(nsems)]


# message queues -----------------------------------------------------------------
def msgget(key, flags):
    return syscall("msgget", key, flags)


def msg_copy(ident, index, size):
    """(type, text) of the message at ``index`` (from 0), left in the queue (MSG_COPY)."""
    buf = ctypes.create_string_buffer(8 + size)
    n = syscall("msgrcv", ident, buf, size, index, IPC_NOWAIT | MSG_COPY)
    return struct.unpack_from("q", buf.raw)[0], buf.raw[8:8 + n]


def msg_receive(ident, size):
    """Take the first message out of the queue, without waiting: (type, text)."""
    buf = ctypes.create_string_buffer(8 + size)
    n = syscall("msgrcv", ident, buf, size, 0, IPC_NOWAIT | MSG_NOERROR)
    return struct.unpack_from("q", buf.raw)[0], buf.raw[8:8 + n]


def msg_send(ident, mtype, text):
    buf = ctypes.create_string_buffer(struct.pack("q", mtype) + text, 8 + len(text))
    syscall("msgsnd", ident, buf, len(text), IPC_NOWAIT)
