"""bpf(2): commands, attribute layouts, and helpers that return fds.

Attributes are packed with ``struct`` at exactly the size each command
needs: the kernel rejects an attr whose bytes beyond its own bpf_attr are
not zero, so passing only what we fill keeps old kernels happy.
"""

import ctypes
import os
import resource
import struct

from .libc import syscall

# enum bpf_cmd
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_LOAD = 5
OBJ_PIN = 6
OBJ_GET = 7
PROG_TEST_RUN = 10
PROG_GET_NEXT_ID = 11
MAP_GET_NEXT_ID = 12
PROG_GET_FD_BY_ID = 13
MAP_GET_FD_BY_ID = 14
OBJ_GET_INFO_BY_FD = 15
BTF_LOAD = 18
BTF_GET_FD_BY_ID = 19
MAP_LOOKUP_AND_DELETE_ELEM = 21
MAP_FREEZE = 22
BTF_GET_NEXT_ID = 23
MAP_LOOKUP_BATCH = 24
MAP_UPDATE_BATCH = 26
LINK_CREATE = 28
ITER_CREATE = 33
TOKEN_CREATE = 36

# enum bpf_map_type (include/uapi/linux/bpf.h), by the snake_case name of BPF_MAP_TYPE_<NAME>
MAP_TYPES = {
    "hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4, "percpu_hash": 5,
    "percpu_array": 6, "stack_trace": 7, "cgroup_array": 8, "lru_hash": 9,
    "lru_percpu_hash": 10, "lpm_trie": 11, "array_of_maps": 12, "hash_of_maps": 13,
    "devmap": 14, "sockmap": 15, "cpumap": 16, "xskmap": 17, "sockhash": 18,
    "cgroup_storage": 19, "reuseport_sockarray": 20, "percpu_cgroup_storage": 21,
    "queue": 22, "stack": 23, "sk_storage": 24, "devmap_hash": 25, "struct_ops": 26,
    "ringbuf": 27, "inode_storage": 28, "task_storage": 29, "bloom_filter": 30,
    "user_ringbuf": 31, "cgrp_storage": 32, "arena": 33, "insn_array": 34,
}

# enum bpf_prog_type / bpf_attach_type values used here
PROG_TYPE_SOCKET_FILTER = 1
PROG_TYPE_TRACING = 26
TRACE_ITER = 28

# map_flags
F_NO_PREALLOC = 1 << 0
F_NUMA_NODE = 1 << 2
F_RDONLY = 1 << 3
F_WRONLY = 1 << 4
F_RDONLY_PROG = 1 << 7
F_MMAPABLE = 1 << 10
F_TOKEN_FD = 1 << 16       # map_token_fd / prog_token_fd / btf_token_fd is set (6.9)

# BPF_MAP_UPDATE_ELEM flags
ANY, NOEXIST, EXIST = 0, 1, 2

# insn encoding pieces for hand-assembled programs
PSEUDO_MAP_FD, PSEUDO_KFUNC_CALL = 1, 2
# helper ids (enum bpf_func_id)
FUNC_MAP_LOOKUP_ELEM, FUNC_MAP_PUSH_ELEM, FUNC_MAP_POP_ELEM = 1, 87, 88
FUNC_RINGBUF_OUTPUT = 130

# The kernel-internal "not supported" errno that bpf() leaks to user space.
ENOTSUPP = 524

# `r0 = 0; exit`: the smallest valid program (BPF_ALU64|BPF_MOV|BPF_K, BPF_JMP|BPF_EXIT).
RETURN_ZERO = bytes.fromhex("b700000000000000" "9500000000000000")

_MAP_CREATE = struct.Struct("<7I16s5IQii")  # to map_token_fd (6.9)
_ELEM = struct.Struct("<IIQQQ")
_BATCH = struct.Struct("<QQQQIIQQ")
_PROG_LOAD = struct.Struct("<IIQQIIQII16sIIIIQIIQIII")
_LINK_CREATE = struct.Struct("<IIIIQI")
_INFO_BY_FD = struct.Struct("<IIQ")
_BTF_LOAD = struct.Struct("<QQIII")


def memlock_unlimited():
    """Before 5.11 maps and programs count against their creator's RLIMIT_MEMLOCK, shared
    with everything else its user locked (io_uring buffers...): lifted as far as we may, as
    libbpf does (later kernels ignore it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    for limit in (resource.RLIM_INFINITY, hard):
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
            return
        except (OSError, ValueError):
            continue


def bpf(cmd, attr: bytes):
    """Issue one bpf() command with a packed attribute; return its result."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    return syscall("bpf", cmd, buf, len(attr))


def _addr(buf):
    return ctypes.addressof(buf) if buf is not None else 0


def map_create(map_type, key_size, value_size, max_entries, flags=0, *, name=b"",
               inner_map_fd=0, numa_node=0, btf_fd=0, btf_key_type_id=0,
               btf_value_type_id=0, btf_vmlinux_value_type_id=0, map_extra=0,
               value_type_btf_obj_fd=0, map_token_fd=0):
    """BPF_MAP_CREATE; the attr is cut after the last field used, for older kernels.
    (map_token_fd needs F_TOKEN_FD in flags; value_type_btf_obj_fd F_VTYPE_BTF_OBJ_FD.)"""
    attr = _MAP_CREATE.pack(map_type, key_size, value_size, max_entries, flags,
                            inner_map_fd, numa_node, name, 0, btf_fd, btf_key_type_id,
                            btf_value_type_id, btf_vmlinux_value_type_id, map_extra,
                            value_type_btf_obj_fd, map_token_fd)
    if not (value_type_btf_obj_fd or map_token_fd):
        attr = attr[:72] if map_extra else attr[:64]  # 5.16 added map_extra, 6.9 the fds
    return bpf(MAP_CREATE, attr)


def map_update(map_fd, key: bytes, value: bytes, flags=0):
    k = ctypes.create_string_buffer(key, len(key)) if key else None
    v = ctypes.create_string_buffer(value, len(value))
    return bpf(MAP_UPDATE_ELEM, _ELEM.pack(map_fd, 0, _addr(k), _addr(v), flags))


def map_lookup(map_fd, key: bytes, value_size, flags=0):
    """BPF_MAP_LOOKUP_ELEM; return the value bytes (value_size: per-cpu maps need all cpus)."""
    k = ctypes.create_string_buffer(key, len(key)) if key else None
    v = ctypes.create_string_buffer(max(value_size, 1))
    bpf(MAP_LOOKUP_ELEM, _ELEM.pack(map_fd, 0, _addr(k), _addr(v), flags))
    return v.raw[:value_size]


def map_lookup_and_delete(map_fd, value_size, key: bytes = b""):
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM: pop a queue's or stack's next value (no key)."""
    k = ctypes.create_string_buffer(key, len(key)) if key else None
    v = ctypes.create_string_buffer(max(value_size, 1))
    bpf(MAP_LOOKUP_AND_DELETE_ELEM, _ELEM.pack(map_fd, 0, _addr(k), _addr(v), 0))
    return v.raw[:value_size]


def map_get_next_key(map_fd, key, key_size):
    """BPF_MAP_GET_NEXT_KEY after ``key`` (None: the first key); ENOENT at the end."""
    k = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    nxt = ctypes.create_string_buffer(max(key_size, 1))
    bpf(MAP_GET_NEXT_KEY, _ELEM.pack(map_fd, 0, _addr(k), _addr(nxt), 0))
    return nxt.raw[:key_size]


def map_update_batch(map_fd, keys: bytes, values: bytes, count, elem_flags=0):
    """BPF_MAP_UPDATE_BATCH of ``count`` packed keys and values; return how many went in."""
    k = ctypes.create_string_buffer(keys, len(keys))
    v = ctypes.create_string_buffer(values, len(values))
    attr = _BATCH.pack(0, 0, _addr(k), _addr(v), count, map_fd, elem_flags, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    syscall("bpf", MAP_UPDATE_BATCH, buf, len(attr))
    return struct.unpack_from("<I", buf, 32)[0]


def map_lookup_batch(map_fd, key_size, value_size, count, in_batch=None):
    """One BPF_MAP_LOOKUP_BATCH; return (count read, keys, values).  ``in_batch``: where
    the previous call stopped (its ``out_batch`` bytes); None: from the start.

    ENOENT with a count means the map ended inside this batch, so it is
    returned as a result, not raised.
    """
    return map_lookup_batch_from(map_fd, key_size, value_size, count, in_batch)[:3]


def map_lookup_batch_from(map_fd, key_size, value_size, count, in_batch=None):
    """map_lookup_batch, plus (out_batch, whether the map ended) to go on from."""
    keys = ctypes.create_string_buffer(max(key_size, 1) * count)
    values = ctypes.create_string_buffer(max(value_size, 1) * count)
    token = max(key_size, 8)                    # a bucket index (hash) or a key (array)
    out_batch = ctypes.create_string_buffer(token)
    start = ctypes.create_string_buffer(in_batch, token) if in_batch is not None else None
    attr = _BATCH.pack(_addr(start), _addr(out_batch), _addr(keys), _addr(values), count,
                       map_fd, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ended = False
    try:
        syscall("bpf", MAP_LOOKUP_BATCH, buf, len(attr))
    except OSError as e:
        if e.errno != 2:  # ENOENT: end of map reached
            raise
        ended = True
    done = struct.unpack_from("<I", buf, 32)[0]
    return done, keys.raw[:done * key_size], values.raw[:done * value_size], out_batch.raw, ended


def map_freeze(map_fd):
    return bpf(MAP_FREEZE, struct.pack("<I", map_fd))


def map_get_next_id(start_id=0):
    """BPF_MAP_GET_NEXT_ID: the id of the next map after ``start_id``; ENOENT past the last."""
    return _next_id(MAP_GET_NEXT_ID, start_id)


def prog_get_next_id(start_id=0):
    return _next_id(PROG_GET_NEXT_ID, start_id)


def _next_id(cmd, start_id):
    attr = struct.pack("<III", start_id, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    syscall("bpf", cmd, buf, len(attr))
    return struct.unpack_from("<I", buf, 4)[0]


def map_get_fd_by_id(map_id, open_flags=0):
    return bpf(MAP_GET_FD_BY_ID, struct.pack("<III", map_id, 0, open_flags))


def prog_get_fd_by_id(prog_id):
    return bpf(PROG_GET_FD_BY_ID, struct.pack("<III", prog_id, 0, 0))


# struct bpf_prog_info: nr_map_ids at 52, map_ids (a user pointer) at 56, name at 64
_PROG_INFO_SIZE = 80


def prog_map_ids(prog_fd):
    """(name, [ids of the maps a loaded program uses])."""
    first = obj_get_info_by_fd(prog_fd, _PROG_INFO_SIZE)
    count = struct.unpack_from("<I", first, 52)[0]
    ids = (ctypes.c_uint32 * max(count, 1))()
    init = bytearray(_PROG_INFO_SIZE)
    struct.pack_into("<IQ", init, 52, count, ctypes.addressof(ids))
    info = obj_get_info_by_fd(prog_fd, _PROG_INFO_SIZE, bytes(init))
    name = struct.unpack_from("16s", info, 64)[0].rstrip(b"\0").decode(errors="replace")
    return name, list(ids)[:min(count, struct.unpack_from("<I", info, 52)[0])]


def btf_get_fd_by_id(btf_id):
    return bpf(BTF_GET_FD_BY_ID, struct.pack("<III", btf_id, 0, 0))


def obj_pin(fd, path):
    """BPF_OBJ_PIN: give the object ``fd`` a name in a bpf filesystem."""
    name = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(OBJ_PIN, struct.pack("<QII", _addr(name), fd, 0))


def obj_get(path, file_flags=0):
    """BPF_OBJ_GET: a new fd for the object pinned at ``path`` (file_flags: F_RDONLY...)."""
    name = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(OBJ_GET, struct.pack("<QII", _addr(name), 0, file_flags))


def token_create(bpffs_fd, flags=0):
    """BPF_TOKEN_CREATE (6.9) from an fd of a bpf filesystem's root."""
    return bpf(TOKEN_CREATE, struct.pack("<II", flags, bpffs_fd & 0xFFFFFFFF))


def prog_load(prog_type, insns: bytes, *, license=b"GPL", expected_attach_type=0,
              attach_btf_id=0, name=b"", log_size=0):
    """Load a program; on failure with log_size, the verifier log is in the OSError."""
    ins = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license)
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = _PROG_LOAD.pack(prog_type, len(insns) // 8, _addr(ins), _addr(lic),
                           1 if log else 0, log_size, _addr(log), 0, 0, name, 0,
                           expected_attach_type, 0, 0, 0, 0, 0, 0, 0, attach_btf_id, 0)
    try:
        return bpf(PROG_LOAD, attr)
    except OSError as e:
        if log is not None and log.value:
            e.strerror = f"{e.strerror}: {log.value.decode(errors='replace').strip()}"
        raise


def link_create(prog_fd, attach_type, *, target_fd=0, iter_info: bytes = b""):
    info = ctypes.create_string_buffer(iter_info, len(iter_info)) if iter_info else None
    attr = _LINK_CREATE.pack(prog_fd, target_fd, attach_type, 0, _addr(info), len(iter_info))
    return bpf(LINK_CREATE, attr)


def iter_link_info_map(map_fd):
    """union bpf_iter_link_info for map iterators."""
    return struct.pack("<I12x", map_fd)


def iter_link_info_cgroup(cgroup_fd=0, order=0, cgroup_id=0):
    return struct.pack("<IIQ", order, cgroup_fd, cgroup_id)


def iter_create(link_fd):
    return bpf(ITER_CREATE, struct.pack("<II", link_fd, 0))


def obj_get_info_by_fd(fd, size, init: bytes = b""):
    """Return the info struct bytes the kernel filled (length = what it knows).

    ``init`` pre-fills the struct, for infos that carry user pointers (BTF, programs).
    """
    info = ctypes.create_string_buffer(init.ljust(size, b"\0"), size)
    attr = _INFO_BY_FD.pack(fd, size, _addr(info))
    buf = ctypes.create_string_buffer(attr, len(attr))
    syscall("bpf", OBJ_GET_INFO_BY_FD, buf, len(attr))
    filled = struct.unpack_from("<I", buf, 4)[0]
    return info.raw[:filled]


# struct bpf_map_info: (name, struct format, offset), in the order fields were added
_MAP_INFO_FIELDS = (
    ("type", "I", 0), ("id", "I", 4), ("key_size", "I", 8), ("value_size", "I", 12),
    ("max_entries", "I", 16), ("map_flags", "I", 20), ("name", "16s", 24),
    ("ifindex", "I", 40), ("btf_vmlinux_value_type_id", "I", 44), ("netns_dev", "Q", 48),
    ("netns_ino", "Q", 56), ("btf_id", "I", 64), ("btf_key_type_id", "I", 68),
    ("btf_value_type_id", "I", 72), ("btf_vmlinux_id", "I", 76), ("map_extra", "Q", 80),
)
MAP_INFO_SIZE = 88


def map_info(map_fd, size=MAP_INFO_SIZE):
    """BPF_OBJ_GET_INFO_BY_FD on a map, decoded: {field: value} for the fields the kernel
    filled, plus "info_len" (older kernels fill less)."""
    raw = obj_get_info_by_fd(map_fd, size)
    info = {"info_len": len(raw)}
    for name, fmt, off in _MAP_INFO_FIELDS:
        if off + struct.calcsize("<" + fmt) <= len(raw):
            value = struct.unpack_from("<" + fmt, raw, off)[0]
            info[name] = value.rstrip(b"\0").decode(errors="replace") if fmt == "16s" else value
    return info


# struct bpf_btf_info: u64 btf; u32 btf_size; u32 id; u64 name; u32 name_len; u32 kernel_btf
_BTF_INFO = struct.Struct("<QIIQII")


def btf_info(btf_fd):
    """BPF_OBJ_GET_INFO_BY_FD on a BTF object: (id, raw BTF bytes) - what a dump saves."""
    first = obj_get_info_by_fd(btf_fd, _BTF_INFO.size)
    _, size, btf_id, _, _, _ = _BTF_INFO.unpack(first.ljust(_BTF_INFO.size, b"\0"))
    data = ctypes.create_string_buffer(max(size, 1))
    obj_get_info_by_fd(btf_fd, _BTF_INFO.size, _BTF_INFO.pack(_addr(data), size, 0, 0, 0, 0))
    return btf_id, data.raw[:size]


def btf_load(blob: bytes, log_size=0):
    data = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = _BTF_LOAD.pack(_addr(data), _addr(log), len(blob), log_size, 1 if log else 0)
    return bpf(BTF_LOAD, attr)


def read_all(fd, chunk=65536):
    """Read an iterator fd to its end; return the bytes."""
    parts = []
    while True:
        part = os.read(fd, chunk)
        if not part:
            return b"".join(parts)
        parts.append(part)


def insn(code, dst=0, src=0, off=0, imm=0):
    """One struct bpf_insn (8 bytes)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ld_map_fd(dst, map_fd):
    """``dst = map`` (BPF_LD | BPF_IMM | BPF_DW with BPF_PSEUDO_MAP_FD): two insns."""
    return insn(0x18, dst, PSEUDO_MAP_FD, 0, map_fd) + insn(0)


# BPF_PROG_TEST_RUN's attr up to duration: prog_fd, retval, data_size_in/out, data_in/out
_TEST_RUN = struct.Struct("<IIIIQQII")


def prog_test_run(prog_fd, data=bytes(14)):
    """Run a loaded program once on ``data`` (a socket filter needs an Ethernet header's
    worth); return its return value."""
    buf_in = ctypes.create_string_buffer(data, len(data))
    attr = ctypes.create_string_buffer(
        _TEST_RUN.pack(prog_fd, 0, len(data), 0, _addr(buf_in), 0, 1, 0), _TEST_RUN.size)
    syscall("bpf", PROG_TEST_RUN, attr, _TEST_RUN.size)
    return struct.unpack_from("<I", attr, 4)[0]


def num_possible_cpus(path="/sys/devices/system/cpu/possible"):
    """How many value slots a per-cpu map has (the kernel's num_possible_cpus())."""
    with open(path) as f:
        ranges = f.read().strip()
    count = 0
    for part in ranges.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


# perf_event_open(2) for the one event BPF needs: a PERF_COUNT_SW_BPF_OUTPUT software event,
# the kind of fd a BPF_MAP_TYPE_PERF_EVENT_ARRAY holds.
_PERF_TYPE_SOFTWARE, _PERF_COUNT_SW_BPF_OUTPUT, _PERF_SAMPLE_RAW = 1, 10, 1 << 10
# type, size, config, sample_period, sample_type, read_format, flag bits (PERF_ATTR_SIZE_VER0)
_PERF_ATTR = struct.Struct("<IIQQQQQ")
_PERF_ATTR_DISABLED = 1 << 0
_PERF_FLAG_FD_CLOEXEC = 1 << 3


def perf_event_open_bpf_output(cpu, pid=-1, disabled=True):
    """A BPF output event on ``cpu`` (pid -1: every task there). A per-task event (pid >= 0)
    costs ~10 ms the first time: it switches on the scheduler's perf hooks."""
    attr = _PERF_ATTR.pack(_PERF_TYPE_SOFTWARE, 64, _PERF_COUNT_SW_BPF_OUTPUT, 1,
                           _PERF_SAMPLE_RAW, 0, _PERF_ATTR_DISABLED if disabled else 0)
    buf = ctypes.create_string_buffer(attr.ljust(64, b"\0"), 64)
    return syscall("perf_event_open", buf, pid, cpu, -1, _PERF_FLAG_FD_CLOEXEC)
