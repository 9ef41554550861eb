"""BPF map types: which can be created, filled, batch-read, iterated and frozen.

One probe per map type (``bpf_map_<type>``). Each creates the smallest valid
map of its type (the rules are each type's ``map_alloc_check``/``map_alloc``
in kernel/bpf/*.c and net/*), puts one element in where user space can,
then tries the three things a checkpoint of that map needs: reading it all
with BPF_MAP_LOOKUP_BATCH, walking it with a BPF iterator (bpf_map_elem,
bpf_sk_storage_map or sockmap), and BPF_MAP_FREEZE, which a restore uses to
bring back a frozen map.

The probes are registered from the static table below, so a kernel without
BTF still gets them; ``bpf_map_types`` (area bpf) reports where the running
kernel's ``enum bpf_map_type`` and this table differ.
"""

import errno
import os
import socket
import struct
from typing import NamedTuple

from kernel import bpf, btf

from .common import closing_fds, int_btf_blob, vmlinux_btf
from .registry import absent, errname, present, probe, undecided

ENOTSUPP = bpf.ENOTSUPP
_UNSUPPORTED = (ENOTSUPP, errno.EOPNOTSUPP, errno.EINVAL)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# struct_ops value types a kernel may carry, most common first (CONFIG_INET has tcp's).
STRUCT_OPS_VALUE_TYPES = ("bpf_struct_ops_tcp_congestion_ops", "bpf_struct_ops_sched_ext_ops",
                          "bpf_struct_ops_bpf_dummy_ops")


class MapType(NamedTuple):
    """How to make the smallest valid map of one type and put one element in."""
    name: str                  # snake_case of BPF_MAP_TYPE_<NAME>
    since: str
    key: int
    value: int
    max_entries: int
    flags: int = 0
    extra: int = 0             # map_extra (bloom filter: number of hash functions)
    needs: str = ""            # "inner_map", "btf" (int key/value), "struct_ops"
    insert: str = "plain"      # how one element goes in (see _ELEMENT), or "" = it cannot
    no_insert: str = ""        # why user space cannot put an element in (or why it fails)
    iterator: str = "bpf_map_elem"
    impl: tuple = ()           # (BTF kind, name) that exists when the type is compiled in
    alt_key: int = 0           # a second key size to try (older kernels)


_S, _F = btf.KIND_STRUCT, btf.KIND_FUNC
_STORAGE = dict(key=4, value=4, max_entries=0, flags=bpf.F_NO_PREALLOC, needs="btf")
# key: u64 cgroup id (8) or struct bpf_cgroup_storage_key {u64 cgroup_inode_id; u32
# attach_type} (16 with padding); an element exists only for an attached program
_CGROUP_STORAGE_NOTE = "elements exist only while a program using the map is attached"

TABLE = (
    MapType("hash", "3.19", 4, 4, 1, impl=(_S, "bpf_htab")),
    MapType("array", "3.19", 4, 4, 1, impl=(_S, "bpf_array")),
    MapType("prog_array", "4.2", 4, 4, 1, insert="prog", impl=(_S, "bpf_array")),
    MapType("perf_event_array", "4.3", 4, 4, 1, insert="perf_event", impl=(_S, "bpf_array")),
    MapType("percpu_hash", "4.6", 4, 4, 1, insert="percpu", impl=(_S, "bpf_htab")),
    MapType("percpu_array", "4.6", 4, 4, 1, insert="percpu", impl=(_S, "bpf_array")),
    MapType("stack_trace", "4.6", 4, 8, 1, insert="",
            no_insert="filled by bpf_get_stackid() only", impl=(_S, "bpf_stack_map")),
    MapType("cgroup_array", "4.8", 4, 4, 1, insert="cgroup", impl=(_S, "bpf_array")),
    MapType("lru_hash", "4.10", 4, 4, 1, impl=(_S, "bpf_htab")),
    MapType("lru_percpu_hash", "4.10", 4, 4, 1, insert="percpu", impl=(_S, "bpf_htab")),
    MapType("lpm_trie", "4.11", 5, 1, 1, bpf.F_NO_PREALLOC, insert="lpm",
            impl=(_S, "lpm_trie")),
    MapType("array_of_maps", "4.12", 4, 4, 1, needs="inner_map", insert="inner_map",
            impl=(_S, "bpf_array")),
    MapType("hash_of_maps", "4.12", 4, 4, 1, needs="inner_map", insert="inner_map",
            impl=(_S, "bpf_htab")),
    MapType("devmap", "4.14", 4, 4, 1, insert="ifindex", impl=(_S, "bpf_dtab")),
    MapType("sockmap", "4.14", 4, 4, 1, insert="socket", iterator="sockmap",
            impl=(_S, "bpf_stab")),
    MapType("cpumap", "4.15", 4, 4, 1, insert="cpu", impl=(_S, "bpf_cpu_map")),
    MapType("xskmap", "4.18", 4, 4, 1, insert="",
            no_insert="needs an AF_XDP socket bound to a device queue", impl=(_S, "xsk_map")),
    MapType("sockhash", "4.18", 4, 4, 1, insert="socket", iterator="sockmap",
            impl=(_S, "bpf_shtab")),
    MapType("cgroup_storage", "4.19", 8, 4, 0, insert="cgroup_storage", alt_key=16,
            no_insert=_CGROUP_STORAGE_NOTE, impl=(_S, "bpf_cgroup_storage_map")),
    MapType("reuseport_sockarray", "4.19", 4, 4, 1, insert="reuseport",
            impl=(_S, "reuseport_array")),
    MapType("percpu_cgroup_storage", "4.20", 8, 4, 0, insert="cgroup_storage", alt_key=16,
            no_insert=_CGROUP_STORAGE_NOTE, impl=(_S, "bpf_cgroup_storage_map")),
    MapType("queue", "4.20", 0, 4, 1, insert="keyless", impl=(_S, "bpf_queue_stack")),
    MapType("stack", "4.20", 0, 4, 1, insert="keyless", impl=(_S, "bpf_queue_stack")),
    MapType("sk_storage", "5.2", **_STORAGE, insert="socket_key",
            iterator="bpf_sk_storage_map", impl=(_F, "bpf_sk_storage_map_alloc")),
    MapType("devmap_hash", "5.4", 4, 4, 1, insert="ifindex", impl=(_S, "bpf_dtab")),
    MapType("struct_ops", "5.6", 4, 0, 1, needs="struct_ops", insert="",
            no_insert="its value is a struct of struct_ops program fds",
            impl=(_S, "bpf_struct_ops_map")),
    MapType("ringbuf", "5.8", 0, 0, PAGE_SIZE, insert="",
            no_insert="written by BPF programs only", impl=(_S, "bpf_ringbuf_map")),
    MapType("inode_storage", "5.10", **_STORAGE, insert="file_key",
            impl=(_F, "inode_storage_map_alloc")),
    MapType("task_storage", "5.11", **_STORAGE, insert="pidfd_key",
            impl=(_F, "task_storage_map_alloc")),
    MapType("bloom_filter", "5.16", 0, 4, 1, extra=1, insert="keyless",
            impl=(_S, "bpf_bloom_filter")),
    MapType("user_ringbuf", "6.1", 0, 0, PAGE_SIZE, insert="",
            no_insert="user space writes it through mmap only", impl=(_S, "bpf_ringbuf_map")),
    MapType("cgrp_storage", "6.2", **_STORAGE, insert="cgroup_key",
            impl=(_S, "bpf_local_storage_map")),
    MapType("arena", "6.9", 0, 0, 1, bpf.F_MMAPABLE, insert="",
            no_insert="its pages are filled through mmap or kfuncs", impl=(_S, "bpf_arena")),
    MapType("insn_array", "6.19", 4, 8, 1, impl=(_S, "bpf_insn_array")),
)
BY_NAME = {t.name: t for t in TABLE}
assert set(BY_NAME) == set(bpf.MAP_TYPES), "kernel/bpf.py MAP_TYPES and TABLE disagree"



def enum_name(enumerator):
    """'BPF_MAP_TYPE_LRU_HASH' -> 'lru_hash'; None for UNSPEC, __MAX and *_DEPRECATED."""
    prefix = "BPF_MAP_TYPE_"
    if not enumerator.startswith(prefix) or enumerator.endswith("_DEPRECATED"):
        return None
    name = enumerator[len(prefix):].lower()
    return None if name == "unspec" else name


def kernel_map_types():
    """{name: value} of the running kernel's enum bpf_map_type; OSError without BTF."""
    types = vmlinux_btf()
    enum_id = types.find("bpf_map_type", btf.KIND_ENUM)
    if enum_id is None:
        return {}
    values = {}
    for enumerator, value in types.enum_values(enum_id).items():
        name = enum_name(enumerator)
        if name:
            values[name] = value
    return values


# --- the steps -----------------------------------------------------------------------------

def _cgroup2_root():
    """The first cgroup2 mount point of this mount namespace, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def _open_cgroup(fds):
    root = _cgroup2_root()
    if root is None:
        raise OSError(errno.ENOENT, "no cgroup2 mount")
    fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    return fds[-1]


def _udp_socket(fds, reuseport=False):
    """A UDP socket bound to 127.0.0.1 on a kernel-chosen port (AF_INET is never a module)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
    except OSError:
        s.close()
        raise
    fds.append(s.detach())
    return fds[-1]


def _u32(value):
    return struct.pack("<I", value)


def _create(mt, type_value, fds, key_size, helpers):
    """Create the map; return its fd (appended to fds). helpers gets the inner map's fd."""
    kwargs = {"map_extra": mt.extra}
    value_size = mt.value
    if mt.needs == "inner_map":
        fds.append(bpf.map_create(bpf.MAP_TYPES["array"], 4, 4, 1))
        kwargs["inner_map_fd"] = helpers["inner_map"] = fds[-1]
    elif mt.needs == "btf":
        fds.append(bpf.btf_load(int_btf_blob()))
        kwargs.update(btf_fd=fds[-1], btf_key_type_id=1, btf_value_type_id=1)
    elif mt.needs == "struct_ops":
        # map_create wants a BTF fd even though the value type is vmlinux's: any BTF will do
        fds.append(bpf.btf_load(int_btf_blob()))
        kwargs["btf_fd"] = fds[-1]
        types = vmlinux_btf()
        for candidate in STRUCT_OPS_VALUE_TYPES:
            type_id = types.find(candidate, btf.KIND_STRUCT)
            if type_id:
                break
        else:
            raise OSError(errno.ENOENT, "no bpf_struct_ops_* value type in kernel BTF")
        kwargs["btf_vmlinux_value_type_id"] = type_id
        value_size = types.size(type_id)
    fds.append(bpf.map_create(type_value, key_size, value_size, mt.max_entries, mt.flags,
                              name=b"probe_" + mt.name.encode()[:9], **kwargs))
    return fds[-1]


def _element(mt, fds, key_size, helpers):
    """(key, value) of one element for this type; helper objects go to fds."""
    key = (b"\x01" + b"\0" * (key_size - 1)) if key_size else b""
    if mt.insert == "plain":
        return _u32(0) if mt.name.endswith("array") else key, b"\x2a".ljust(mt.value, b"\0")
    if mt.insert == "percpu":
        return (_u32(0) if mt.name.endswith("array") else key,
                b"\x2a".ljust(-(-mt.value // 8) * 8, b"\0") * bpf.num_possible_cpus())
    if mt.insert == "keyless":
        return b"", b"\x2a".ljust(mt.value, b"\0")
    if mt.insert == "lpm":  # struct bpf_lpm_trie_key_u8: prefixlen, then data
        return struct.pack("<IB", 8, 10), b"\x2a"
    if mt.insert == "prog":
        fds.append(bpf.prog_load(bpf.PROG_TYPE_SOCKET_FILTER, bpf.RETURN_ZERO))
        return _u32(0), _u32(fds[-1])
    if mt.insert == "perf_event":
        # one cpu, every task: a per-task event would switch on scheduler hooks (~10 ms)
        fds.append(bpf.perf_event_open_bpf_output(min(os.sched_getaffinity(0))))
        return _u32(0), _u32(fds[-1])
    if mt.insert == "cgroup":
        return _u32(0), _u32(_open_cgroup(fds))
    if mt.insert == "ifindex":
        return _u32(0), _u32(socket.if_nametoindex("lo"))
    if mt.insert == "cpu":  # struct bpf_cpumap_val.qsize: queue of 1 on cpu 0
        return _u32(0), _u32(1)
    if mt.insert == "socket":
        return _u32(0), _u32(_udp_socket(fds))
    if mt.insert == "reuseport":
        return _u32(0), _u32(_udp_socket(fds, reuseport=True))
    if mt.insert == "inner_map":
        return _u32(0), _u32(helpers["inner_map"])  # the template is a valid inner map
    if mt.insert == "cgroup_storage":  # storage exists only for an attached program
        return b"\0" * key_size, _u32(42)
    if mt.insert == "socket_key":
        return _u32(_udp_socket(fds)), _u32(42)
    if mt.insert == "file_key":
        read_end, write_end = os.pipe()
        fds.extend((read_end, write_end))
        return _u32(read_end), _u32(42)
    if mt.insert == "pidfd_key":
        fds.append(os.pidfd_open(os.getpid()))
        return _u32(fds[-1]), _u32(42)
    if mt.insert == "cgroup_key":
        return _u32(_open_cgroup(fds)), _u32(42)
    raise ValueError(f"unknown insert kind {mt.insert!r}")


def _batch_value_size(mt):
    """Bytes per value in a syscall: per-cpu maps hand over one 8-aligned slot per cpu."""
    if mt.insert == "percpu":
        return -(-mt.value // 8) * 8 * bpf.num_possible_cpus()
    return mt.value


def _iterate(target, map_fd):
    """Link a `target` iterator to the map and read it: [step that failed or "read", errno,
    bytes read]."""
    try:
        func = vmlinux_btf().find(f"bpf_iter_{target}", btf.KIND_FUNC)
    except OSError:
        return ["btf", errno.ENOENT, 0]
    if not func:
        return ["btf", errno.ENOENT, 0]
    with closing_fds() as fds:
        step = "load"
        try:
            fds.append(bpf.prog_load(bpf.PROG_TYPE_TRACING, bpf.RETURN_ZERO,
                                     expected_attach_type=bpf.TRACE_ITER, attach_btf_id=func))
            step = "link"
            fds.append(bpf.link_create(fds[0], bpf.TRACE_ITER,
                                       iter_info=bpf.iter_link_info_map(map_fd)))
            step = "iter"
            fds.append(bpf.iter_create(fds[1]))
            step = "read"
            return [step, 0, len(bpf.read_all(fds[2]))]
        except OSError as e:
            return [step, e.errno, 0]


def _impl_compiled_in(mt):
    """Does kernel BTF show the type's implementation? None when BTF cannot tell."""
    try:
        return vmlinux_btf().find(mt.impl[1], mt.impl[0]) is not None
    except OSError:
        return None


def exercise_map(name):
    """Observation: errno of each step (0 ok, None not tried), and what the steps saw."""
    mt = BY_NAME[name]
    seen = {"type": name, "in_btf": None, "impl": None, "key_size": mt.key, "create": None,
            "insert": None, "entries": None, "batch": None, "iterate": None, "freeze": None}
    type_value = bpf.MAP_TYPES[name]
    try:
        kernel_types = kernel_map_types()
        seen["in_btf"] = name in kernel_types
        type_value = kernel_types.get(name, type_value)
    except OSError:
        pass
    with closing_fds() as fds:
        map_fd, helpers = None, {}
        for key_size in (mt.key, mt.alt_key) if mt.alt_key else (mt.key,):
            try:
                map_fd = _create(mt, type_value, fds, key_size, helpers)
                seen.update(create=0, key_size=key_size)
                break
            except OSError as e:
                seen["create"] = e.errno
        if map_fd is None:
            seen["impl"] = _impl_compiled_in(mt)
            return seen
        if mt.insert:
            try:
                key, value = _element(mt, fds, seen["key_size"], helpers)
                bpf.map_update(map_fd, key, value)
                seen["insert"] = 0
            except OSError as e:
                seen["insert"] = e.errno
        seen["batch"], seen["entries"] = _lookup_batch(mt, map_fd, seen["key_size"])
        seen["iterate"] = [mt.iterator] + _iterate(mt.iterator, map_fd)
        try:
            bpf.map_freeze(map_fd)
            seen["freeze"] = 0
        except OSError as e:
            seen["freeze"] = e.errno
    return seen


def _lookup_batch(mt, map_fd, key_size):
    """(errno of one BPF_MAP_LOOKUP_BATCH, 0 when it worked; entries it read or None)."""
    try:
        done, _, _ = bpf.map_lookup_batch(map_fd, key_size, _batch_value_size(mt), 8)
        return 0, done
    except OSError as e:
        return e.errno, None


def batch_lookup_works(name):
    """Whether BPF_MAP_LOOKUP_BATCH reads a map of this type here: exercise_map's batch step
    alone, on an empty map (no BTF parse, no iterator): what the engine asks of a frozen
    tree's maps."""
    mt = BY_NAME[name]
    with closing_fds() as fds:
        try:
            map_fd = _create(mt, bpf.MAP_TYPES[name], fds, mt.key, {})
        except OSError:
            return False
        return _lookup_batch(mt, map_fd, mt.key)[0] == 0


# --- the judge -----------------------------------------------------------------------------

def _no_insert_reason(name):
    mt = BY_NAME.get(name)
    return mt.no_insert if mt else ""


def judge_map(seen):
    create = seen["create"]
    if create:
        what = f"create -> {errname(create)}"
        data = {"create": False, "batch_lookup": None, "iterate": None, "freeze": None}
        if seen["in_btf"] is False:
            return absent(f"{what}; not in this kernel's enum bpf_map_type", **data)
        if create == errno.EINVAL and seen["impl"] is False:
            return absent(f"{what}: not built into this kernel (its implementation is not "
                          f"in kernel BTF)", **data)
        if create in (ENOTSUPP, errno.EOPNOTSUPP):
            return absent(f"{what}: this kernel cannot provide it", **data)
        if create == errno.ENOENT and seen["type"] == "struct_ops":
            return absent(f"{what}: no struct_ops value type in kernel BTF", **data)
        if create == errno.EPERM and seen["type"] == "arena":
            # with CAP_SYS_ADMIN and CAP_BPF (what the probe needs): 6.18.44-fc builds
            # from v1147 refuse arenas to every process, a new pid namespace's init too
            return absent(f"{what}: this kernel refuses arena maps to a process with "
                          f"CAP_SYS_ADMIN and CAP_BPF", **data)
        return undecided(f"unexpected: {what}", **data)
    if create is None:
        return undecided("map creation was not attempted", create=False, batch_lookup=None,
                         iterate=None, freeze=None)

    notes = []
    insert = seen["insert"]
    if insert is None:
        reason = _no_insert_reason(seen["type"])
        notes.append(f"no insert ({reason})" if reason else "no insert")
    elif insert:
        reason = _no_insert_reason(seen["type"])
        notes.append(f"insert {errname(insert)}" + (f" ({reason})" if reason else ""))
    else:
        notes.append("1 element in")

    batch = seen["batch"]
    if batch == 0:
        batch_ok = True
        notes.append(f"batch read {seen['entries']}")
    else:
        batch_ok = False if batch in _UNSUPPORTED else None
        notes.append(f"batch {errname(batch)}")

    target, step, code, _nbytes = seen["iterate"]
    if code == 0:
        iterate = target
    else:
        iterate = False
        notes.append(f"{target} iterator: {step} {errname(code)}")

    freeze = seen["freeze"]
    if freeze == 0:
        freeze_ok = True
    else:
        freeze_ok = False if freeze in _UNSUPPORTED else None
        notes.append(f"freeze {errname(freeze)}")

    mt = BY_NAME.get(seen["type"])
    key = f"key size {seen['key_size']}; " if mt and seen["key_size"] != mt.key else ""
    return present(f"created; {key}{', '.join(notes)}", create=True, batch_lookup=batch_ok,
                   iterate=iterate, freeze=freeze_ok)


def _seen(**over):
    seen = {"type": "hash", "in_btf": True, "impl": None, "key_size": 4, "create": 0,
            "insert": 0, "entries": 1, "batch": 0, "iterate": ["bpf_map_elem", "read", 0, 0],
            "freeze": 0}
    seen.update(over)
    return seen


_NOT_CREATED = dict(insert=None, entries=None, batch=None, iterate=None, freeze=None)

EXAMPLES = (
    (_seen(), True),
    (_seen(type="queue", insert=0, entries=None, batch=ENOTSUPP,
           iterate=["bpf_map_elem", "link", errno.EINVAL, 0]), True),
    (_seen(type="ringbuf", key_size=0, insert=None, entries=None, batch=errno.EINVAL,
           iterate=["bpf_map_elem", "link", errno.EINVAL, 0], freeze=0), True),
    (_seen(type="struct_ops", insert=None, freeze=ENOTSUPP, batch=errno.EOPNOTSUPP,
           entries=None), True),
    (_seen(type="cgroup_storage", key_size=16, insert=errno.ENOENT, entries=0), True),
    (_seen(batch=errno.EFAULT, freeze=errno.EBUSY), True),
    (_seen(type="arena", in_btf=False, create=errno.EINVAL, **_NOT_CREATED), False),
    (_seen(type="xskmap", impl=False, create=errno.EINVAL, **_NOT_CREATED), False),
    (_seen(type="arena", create=errno.EOPNOTSUPP, **_NOT_CREATED), False),
    (_seen(type="arena", create=ENOTSUPP, **_NOT_CREATED), False),
    (_seen(type="arena", create=errno.EPERM, **_NOT_CREATED), False),
    (_seen(type="struct_ops", create=errno.ENOENT, **_NOT_CREATED), False),
    (_seen(type="xskmap", impl=True, create=errno.EINVAL, **_NOT_CREATED), None),
    (_seen(create=errno.EPERM, **_NOT_CREATED), None),
    (_seen(create=None, **_NOT_CREATED), None),
)


# --- the table against the kernel (area bpf) ----------------------------------------

def _judge_map_types(seen):
    if seen["kernel"] is None:
        return undecided("no kernel BTF: the enum cannot be read")
    kernel, table = seen["kernel"], seen["table"]
    if not kernel:
        return undecided("kernel BTF has no enum bpf_map_type")
    unknown = sorted(set(kernel) - set(table), key=kernel.get)
    missing = sorted(set(table) - set(kernel), key=table.get)
    moved = sorted(n for n in set(kernel) & set(table) if kernel[n] != table[n])
    parts = [f"{len(kernel)} map types in kernel BTF"]
    if unknown:
        parts.append("not probed (new to this prober): " +
                     ", ".join(f"{n}={kernel[n]}" for n in unknown))
    if missing:
        parts.append("probed but not in this kernel: " + ", ".join(missing))
    if moved:
        parts.append("values differ: " + ", ".join(f"{n} {table[n]}->{kernel[n]}" for n in moved))
    if not (unknown or missing or moved):
        parts.append("all probed")
    return present("; ".join(parts), unknown=unknown, missing=missing)


_TABLE = {mt.name: bpf.MAP_TYPES[mt.name] for mt in TABLE}


@probe("bpf_map_types", "bpf", since="5.4", judge=_judge_map_types,
       examples=[({"kernel": dict(_TABLE), "table": _TABLE}, True),
                 ({"kernel": {"hash": 1, "rhash": 35}, "table": {"hash": 1, "arena": 33}},
                  True),
                 ({"kernel": {"hash": 2}, "table": {"hash": 1}}, True),
                 ({"kernel": None, "table": _TABLE}, None),
                 ({"kernel": {}, "table": _TABLE}, None)])
def bpf_map_types():
    """The running kernel's enum bpf_map_type (from BTF) against the map types probed here
    (bpf_map_<type>): which types this kernel has that are not probed, and vice versa."""
    try:
        kernel = kernel_map_types()
    except OSError:
        kernel = None
    return {"kernel": kernel, "table": dict(_TABLE)}


# --- registration ---------------------------------------------------------------------------

def _exercise_for(mt):
    def exercise():
        return exercise_map(mt.name)
    exercise.__doc__ = (f"BPF_MAP_TYPE_{mt.name.upper()}: create (key {mt.key}, value "
                        f"{mt.value}, max_entries {mt.max_entries}), insert, lookup batch, "
                        f"{mt.iterator} iterator, freeze.")
    return exercise


for _mt in TABLE:
    probe(f"bpf_map_{_mt.name}", "bpf_maps", judge=judge_map, examples=EXAMPLES,
          since=_mt.since, needs="CAP_BPF")(_exercise_for(_mt))
