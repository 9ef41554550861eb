"""io_uring_setup(2) and io_uring_register(2): structures, numbers, names.

Layouts and values follow include/uapi/linux/io_uring.h (through 6.19).
Thin wrappers: failures raise OSError with the kernel's errno.
"""

import ctypes

from .libc import syscall

u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class SqringOffsets(ctypes.Structure):
    _fields_ = [("head", u32), ("tail", u32), ("ring_mask", u32), ("ring_entries", u32),
                ("flags", u32), ("dropped", u32), ("array", u32), ("resv1", u32),
                ("user_addr", u64)]


class CqringOffsets(ctypes.Structure):
    _fields_ = [("head", u32), ("tail", u32), ("ring_mask", u32), ("ring_entries", u32),
                ("overflow", u32), ("cqes", u32), ("flags", u32), ("resv1", u32),
                ("user_addr", u64)]


class Params(ctypes.Structure):
    """struct io_uring_params (120 bytes)."""
    _fields_ = [("sq_entries", u32), ("cq_entries", u32), ("flags", u32),
                ("sq_thread_cpu", u32), ("sq_thread_idle", u32), ("features", u32),
                ("wq_fd", u32), ("resv", u32 * 3), ("sq_off", SqringOffsets),
                ("cq_off", CqringOffsets)]


class ProbeOp(ctypes.Structure):
    _fields_ = [("op", u8), ("resv", u8), ("flags", u16), ("resv2", u32)]


class Probe(ctypes.Structure):
    """struct io_uring_probe with room for every possible opcode."""
    _fields_ = [("last_op", u8), ("ops_len", u8), ("resv", u16), ("resv2", u32 * 3),
                ("ops", ProbeOp * 256)]


class RsrcRegister(ctypes.Structure):
    """struct io_uring_rsrc_register (IORING_REGISTER_FILES2/BUFFERS2, 5.13)."""
    _fields_ = [("nr", u32), ("flags", u32), ("resv2", u64), ("data", u64), ("tags", u64)]


class RsrcUpdate(ctypes.Structure):
    """struct io_uring_rsrc_update (IORING_REGISTER_RING_FDS and others)."""
    _fields_ = [("offset", u32), ("resv", u32), ("data", u64)]


class FilesUpdate(ctypes.Structure):
    """struct io_uring_files_update (IORING_REGISTER_FILES_UPDATE)."""
    _fields_ = [("offset", u32), ("resv", u32), ("fds", u64)]


class Restriction(ctypes.Structure):
    """struct io_uring_restriction (16 bytes)."""
    _fields_ = [("opcode", u16), ("op", u8), ("resv", u8), ("resv2", u32 * 3)]


class Iovec(ctypes.Structure):
    _fields_ = [("base", u64), ("len", u64)]


SQE_SIZE, CQE_SIZE = 64, 16

# io_uring_setup() flags, in bit order
SETUP_FLAGS = ("IOPOLL", "SQPOLL", "SQ_AFF", "CQSIZE", "CLAMP", "ATTACH_WQ", "R_DISABLED",
               "SUBMIT_ALL", "COOP_TASKRUN", "TASKRUN_FLAG", "SQE128", "CQE32",
               "SINGLE_ISSUER", "DEFER_TASKRUN", "NO_MMAP", "REGISTERED_FD_ONLY", "NO_SQARRAY",
               "HYBRID_IOPOLL", "CQE_MIXED", "SQE_MIXED")
SETUP = {name: 1 << bit for bit, name in enumerate(SETUP_FLAGS)}

# io_uring_params.features bits, in bit order
FEATURES = ("SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY",
            "FAST_POLL", "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS",
            "RSRC_TAGS", "CQE_SKIP", "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE",
            "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT")
FEAT = {name: 1 << bit for bit, name in enumerate(FEATURES)}

# enum io_uring_op, in order
OPCODES = (
    "NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD", "POLL_REMOVE",
    "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE", "ACCEPT",
    "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE",
    "STATX", "READ", "WRITE", "FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL",
    "SPLICE", "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT", "UNLINKAT",
    "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING", "FSETXATTR", "SETXATTR", "FGETXATTR",
    "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC", "SENDMSG_ZC", "READ_MULTISHOT", "WAITID",
    "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_WAITV", "FIXED_FD_INSTALL", "FTRUNCATE", "BIND",
    "LISTEN", "RECV_ZC", "EPOLL_WAIT", "READV_FIXED", "WRITEV_FIXED", "PIPE", "NOP128",
    "URING_CMD128",
)


def opcode_name(op):
    return OPCODES[op] if op < len(OPCODES) else f"OP_{op}"


# io_uring_register() opcodes
REGISTER_BUFFERS = 0
UNREGISTER_BUFFERS = 1
REGISTER_FILES = 2
UNREGISTER_FILES = 3
REGISTER_EVENTFD = 4
UNREGISTER_EVENTFD = 5
REGISTER_FILES_UPDATE = 6
REGISTER_EVENTFD_ASYNC = 7
REGISTER_PROBE = 8
REGISTER_PERSONALITY = 9
UNREGISTER_PERSONALITY = 10
REGISTER_RESTRICTIONS = 11
REGISTER_ENABLE_RINGS = 12
REGISTER_FILES2 = 13
REGISTER_FILES_UPDATE2 = 14
REGISTER_BUFFERS2 = 15
REGISTER_BUFFERS_UPDATE = 16
REGISTER_IOWQ_AFF = 17
UNREGISTER_IOWQ_AFF = 18
REGISTER_IOWQ_MAX_WORKERS = 19
REGISTER_RING_FDS = 20
UNREGISTER_RING_FDS = 21
REGISTER_PBUF_RING = 22
UNREGISTER_PBUF_RING = 23
REGISTER_SYNC_CANCEL = 24
REGISTER_FILE_ALLOC_RANGE = 25
REGISTER_USE_REGISTERED_RING = 1 << 31

RSRC_REGISTER_SPARSE = 1 << 0
IO_URING_OP_SUPPORTED = 1 << 0

# io_uring_restriction.opcode
RESTRICTION_REGISTER_OP = 0
RESTRICTION_SQE_OP = 1
RESTRICTION_SQE_FLAGS_ALLOWED = 2
RESTRICTION_SQE_FLAGS_REQUIRED = 3

# mmap offsets of a ring fd
OFF_SQ_RING = 0
OFF_CQ_RING = 0x8000000
OFF_SQES = 0x10000000


def setup(entries, params):
    """io_uring_setup(2): a ring fd (or, with REGISTERED_FD_ONLY, a registered index)."""
    return syscall("io_uring_setup", entries, ctypes.byref(params))


def enter(fd, to_submit, min_complete=0, flags=0):
    """io_uring_enter(2) without an argument: how many SQEs it took."""
    return syscall("io_uring_enter", fd, to_submit, min_complete, flags, None, 0)


def register(fd, opcode, arg=None, nr_args=0):
    """io_uring_register(2) with a raw argument (ctypes object, pointer or None)."""
    if isinstance(arg, (ctypes.Structure, ctypes.Array)):
        arg = ctypes.byref(arg)
    return syscall("io_uring_register", fd, opcode, arg, nr_args)


def probe(fd):
    """IORING_REGISTER_PROBE: (last_op, [supported opcode numbers])."""
    buf = Probe()
    register(fd, REGISTER_PROBE, buf, len(buf.ops))
    ops = [buf.ops[i].op for i in range(buf.ops_len) if buf.ops[i].flags & IO_URING_OP_SUPPORTED]
    return buf.last_op, ops


def feature_names(mask):
    return [name for bit, name in enumerate(FEATURES) if mask >> bit & 1] + \
        [f"bit{bit}" for bit in range(len(FEATURES), 32) if mask >> bit & 1]
