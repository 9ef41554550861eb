"""bpf(2): commands, attribute layouts, and helpers that return fds.

Attributes are packed with ``struct`` at exactly the size each command
needs: the kernel rejects an attr whose bytes beyond its own bpf_attr are
not zero, so passing only what we fill keeps old kernels happy.
"""

import ctypes
import os
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
OBJ_GET_INFO_BY_FD = 15
BTF_LOAD = 18
MAP_FREEZE = 22
MAP_LOOKUP_BATCH = 24
MAP_UPDATE_BATCH = 26
LINK_CREATE = 28
ITER_CREATE = 33

# enum bpf_prog_type / bpf_attach_type values used here
PROG_TYPE_TRACING = 26
TRACE_ITER = 28

# map_flags
F_NO_PREALLOC = 1 << 0
F_RDONLY_PROG = 1 << 7
F_MMAPABLE = 1 << 10

# The kernel-internal "not supported" errno that bpf() leaks to user space.
ENOTSUPP = 524

# `r0 = 0; exit`: the smallest valid program (BPF_ALU64|BPF_MOV|BPF_K, BPF_JMP|BPF_EXIT).
RETURN_ZERO = bytes.fromhex("b700000000000000" "9500000000000000")

_MAP_CREATE = struct.Struct("<7I16s5IQ")  # up to map_extra (5.16)
_ELEM = struct.Struct("<IIQQQ")
_BATCH = struct.Struct("<QQQQIIQQ")
_PROG_LOAD = struct.Struct("<IIQQIIQII16sIIIIQIIQIII")
_LINK_CREATE = struct.Struct("<IIIIQI")
_INFO_BY_FD = struct.Struct("<IIQ")
_BTF_LOAD = struct.Struct("<QQIII")


def bpf(cmd, attr: bytes):
    """Issue one bpf() command with a packed attribute; return its result."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    return syscall("bpf", cmd, buf, len(attr))


def _addr(buf):
    return ctypes.addressof(buf) if buf is not None else 0


def map_create(map_type, key_size, value_size, max_entries, flags=0, *, name=b"",
               inner_map_fd=0, numa_node=0, btf_fd=0, btf_key_type_id=0,
               btf_value_type_id=0, btf_vmlinux_value_type_id=0, map_extra=0):
    attr = _MAP_CREATE.pack(map_type, key_size, value_size, max_entries, flags,
                            inner_map_fd, numa_node, name, 0, btf_fd, btf_key_type_id,
                            btf_value_type_id, btf_vmlinux_value_type_id, map_extra)
    if not map_extra:
        attr = attr[:64]  # kernels before 5.16 know no map_extra
    return bpf(MAP_CREATE, attr)


def map_update(map_fd, key: bytes, value: bytes, flags=0):
    k = ctypes.create_string_buffer(key, len(key)) if key else None
    v = ctypes.create_string_buffer(value, len(value))
    return bpf(MAP_UPDATE_ELEM, _ELEM.pack(map_fd, 0, _addr(k), _addr(v), flags))


def map_lookup_batch(map_fd, key_size, value_size, count):
    """One BPF_MAP_LOOKUP_BATCH from the start; return (count read, keys, values).

    ENOENT with a count means the map ended inside this batch, so it is
    returned as a result, not raised.
    """
    keys = ctypes.create_string_buffer(max(key_size, 1) * count)
    values = ctypes.create_string_buffer(max(value_size, 1) * count)
    out_batch = ctypes.create_string_buffer(max(key_size, 8))
    attr = _BATCH.pack(0, _addr(out_batch), _addr(keys), _addr(values), count, map_fd, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    try:
        syscall("bpf", MAP_LOOKUP_BATCH, buf, len(attr))
    except OSError as e:
        if e.errno != 2:  # ENOENT: end of map reached
            raise
    done = struct.unpack_from("<I", buf, 32)[0]
    return done, keys.raw[:done * key_size], values.raw[:done * value_size]


def map_freeze(map_fd):
    return bpf(MAP_FREEZE, struct.pack("<I", map_fd))


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


def obj_get_info_by_fd(fd, size):
    """Return the info struct bytes the kernel filled (length = what it knows)."""
    info = ctypes.create_string_buffer(size)
    attr = _INFO_BY_FD.pack(fd, size, _addr(info))
    buf = ctypes.create_string_buffer(attr, len(attr))
    syscall("bpf", OBJ_GET_INFO_BY_FD, buf, len(attr))
    filled = struct.unpack_from("<I", buf, 4)[0]
    return info.raw[:filled]


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
