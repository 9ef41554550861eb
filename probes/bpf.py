"""BPF interfaces a checkpoint/restore of BPF maps relies on.

To dump a map an engine needs its description (BPF_OBJ_GET_INFO_BY_FD, with
map_extra since 5.16; fdinfo for the frozen state), its BTF when it has one,
its contents (lookup batch, iterators, mmap for mmapable arrays and ring
buffers) and the pinned names in bpf filesystems; to restore it, it creates
the map again, fills it (update batch), pins it and freezes it. Each probe
here uses one of those interfaces for real on small maps of its own.
"""

import errno
import mmap
import os
import struct
import tempfile

from kernel import bpf, btf, mount, process
from kernel.namespaces import CLONE_NEWNS, CLONE_NEWUSER, map_self, setns, unshare

from .common import closing_fds, int_btf_blob, vmlinux_btf
from .registry import Call, absent, attempt, by_errno, errname, present, probe, undecided
from .sandbox import ChildFailed, in_child

ENOTSUPP = bpf.ENOTSUPP
ARRAY, HASH = bpf.MAP_TYPES["array"], bpf.MAP_TYPES["hash"]
PAGE_SIZE = mmap.PAGESIZE
SYSCTL_UNPRIV = "/proc/sys/kernel/unprivileged_bpf_disabled"
NOBODY = 65534



def _steps(seen, step, fn, *args, **kwargs):
    """Run one step of a multi-step exercise: record its errno under ``step``; return its
    value, or None when it failed (later steps check for that)."""
    try:
        value = fn(*args, **kwargs)
    except OSError as e:
        seen[step] = e.errno
        return None
    seen[step] = 0
    return value


def _first_failure(seen, steps):
    """(step, errno) of the first failed step in order, or (None, 0)."""
    for step in steps:
        if seen.get(step):
            return step, seen[step]
    return None, 0


# --- bpf_syscall -----------------------------------------------------------------------------

def _create_array():
    """Create and close a one-entry array (raises OSError when bpf() refuses)."""
    os.close(bpf.map_create(ARRAY, 4, 4, 1))


def _judge_syscall(call):
    seen = f"BPF_MAP_CREATE(ARRAY, key 4, value 4, 1 entry) -> {call.describe()}"
    if call.ok:
        return present(seen)
    if call.errno == errno.ENOSYS:
        return absent(f"{seen}: no bpf() syscall (CONFIG_BPF_SYSCALL off)")
    if call.errno == errno.EINVAL:
        return present(f"{seen}: bpf() exists but knows no array maps (3.18)")
    return undecided(f"unexpected: {seen}")


@probe("bpf_syscall", "bpf", since="3.18", needs="CAP_BPF", judge=_judge_syscall,
       examples=[(Call(0), True), (Call(errno.ENOSYS), False), (Call(errno.EINVAL), True),
                 (Call(errno.EPERM), None)])
def bpf_syscall():
    """bpf(2) BPF_MAP_CREATE of a one-entry array."""
    return attempt(_create_array)


# --- BTF -------------------------------------------------------------------------------------

def _judge_btf_vmlinux(seen):
    if seen["errno"] == errno.ENOENT:
        return absent(f"no {btf.VMLINUX} (CONFIG_DEBUG_INFO_BTF off)")
    if seen["errno"]:
        return undecided(f"reading {btf.VMLINUX} -> {errname(seen['errno'])}")
    if seen["error"]:
        return undecided(f"{btf.VMLINUX} does not parse: {seen['error']}")
    if not seen["task_struct"]:
        return undecided(f"{seen['types']} types but no STRUCT task_struct")
    return present(f"{seen['types']} types")


@probe("btf_vmlinux", "bpf", since="5.4", judge=_judge_btf_vmlinux,
       examples=[({"errno": 0, "error": None, "types": 126565, "task_struct": 114}, True),
                 ({"errno": errno.ENOENT, "error": None, "types": 0, "task_struct": None},
                  False),
                 ({"errno": errno.EACCES, "error": None, "types": 0, "task_struct": None},
                  None),
                 ({"errno": 0, "error": "not BTF: magic 0x0", "types": 0,
                   "task_struct": None}, None),
                 ({"errno": 0, "error": None, "types": 10, "task_struct": None}, None)])
def btf_vmlinux():
    """/sys/kernel/btf/vmlinux: the running kernel's types (names iterators, kfuncs,
    struct_ops value types and map types without headers)."""
    seen = {"errno": 0, "error": None, "types": 0, "task_struct": None}
    try:
        types = vmlinux_btf()
    except OSError as e:
        seen["errno"] = e.errno
        return seen
    except ValueError as e:
        seen["error"] = str(e)
        return seen
    seen["types"] = len(types)
    seen["task_struct"] = types.find("task_struct", btf.KIND_STRUCT)
    return seen


def _load_int_btf():
    os.close(bpf.btf_load(int_btf_blob()))


@probe("btf_load", "bpf", since="4.18", needs="CAP_BPF",
       judge=by_errno("BPF_BTF_LOAD(one int)", present_on=(0,), absent_on=("EINVAL", "ENOSYS")),
       examples=[(Call(0), True), (Call(errno.EINVAL), False), (Call(errno.ENOSYS), False),
                 (Call(errno.EPERM), None)])
def btf_load():
    """BPF_BTF_LOAD of a one-type BTF blob: how a restore recreates a map's BTF.
    (EINVAL: a kernel before 4.18 does not know the command.)"""
    return attempt(_load_int_btf)


def _judge_map_btf(seen):
    step, code = _first_failure(seen, ("create", "info", "get_fd", "btf_info"))
    if step == "create" and code in (errno.EINVAL, errno.E2BIG):
        return absent(f"hash map with BTF key/value -> {errname(code)}")
    if step:
        return undecided(f"{step} -> {errname(code)}")
    if not seen["btf_id"]:
        return absent("map info has no btf_id")
    if not seen["same"]:
        return undecided(f"BTF {seen['btf_id']} read back differs ({seen['size']} bytes)")
    return present(f"BTF id {seen['btf_id']} (key/value type {seen['type_ids']}) read back "
                   f"byte-identical ({seen['size']} bytes)")


def _map_btf_seen(**over):
    seen = {"create": 0, "info": 0, "get_fd": 0, "btf_info": 0, "btf_id": 7,
            "type_ids": [1, 1], "size": 40, "same": True}
    seen.update(over)
    return seen


@probe("bpf_map_btf", "bpf", since="4.18", needs="CAP_SYS_ADMIN", judge=_judge_map_btf,
       examples=[(_map_btf_seen(), True), (_map_btf_seen(create=errno.EINVAL), False),
                 (_map_btf_seen(btf_id=0), False), (_map_btf_seen(get_fd=errno.EPERM), None),
                 (_map_btf_seen(same=False), None)])
def bpf_map_btf():
    """A BTF-typed map's types, recovered from the map alone: map info btf_id and type ids,
    BPF_BTF_GET_FD_BY_ID, and the raw BTF from BPF_OBJ_GET_INFO_BY_FD on it."""
    seen = {"create": None, "info": None, "get_fd": None, "btf_info": None, "btf_id": 0,
            "type_ids": None, "size": 0, "same": False}
    blob = int_btf_blob()
    with closing_fds() as fds:
        btf_fd = _steps(seen, "create", bpf.btf_load, blob)
        if btf_fd is None:
            return seen
        fds.append(btf_fd)
        map_fd = _steps(seen, "create", bpf.map_create, HASH, 4, 4, 1, btf_fd=btf_fd,
                        btf_key_type_id=1, btf_value_type_id=1)
        if map_fd is None:
            return seen
        fds.append(map_fd)
        info = _steps(seen, "info", bpf.map_info, map_fd)
        if info is None:
            return seen
        seen["btf_id"] = info.get("btf_id", 0)
        seen["type_ids"] = [info.get("btf_key_type_id"), info.get("btf_value_type_id")]
        if not seen["btf_id"]:
            return seen
        os.close(fds.pop(0))  # the map alone must keep its BTF alive
        again = _steps(seen, "get_fd", bpf.btf_get_fd_by_id, seen["btf_id"])
        if again is None:
            return seen
        fds.append(again)
        got = _steps(seen, "btf_info", bpf.btf_info, again)
        if got is None:
            return seen
        seen["size"] = len(got[1])
        seen["same"] = got[1] == blob
    return seen


# --- map description -------------------------------------------------------------------------

def _judge_info(seen):
    if seen["errno"] in (errno.EINVAL, errno.ENOSYS):
        return absent(f"BPF_OBJ_GET_INFO_BY_FD -> {errname(seen['errno'])}")
    if seen["errno"]:
        return undecided(f"BPF_OBJ_GET_INFO_BY_FD -> {errname(seen['errno'])}")
    wrong = [k for k, v in seen["want"].items() if seen["got"].get(k) != v]
    if wrong:
        return undecided(f"info_len {seen['info_len']}: wrong or missing {', '.join(wrong)}")
    return present(f"info_len {seen['info_len']}: type, key/value size, max_entries, flags, "
                   f"name round-trip")


_INFO_WANT = {"type": HASH, "key_size": 4, "value_size": 8, "max_entries": 3,
              "map_flags": bpf.F_NO_PREALLOC, "name": "probe_info"}


@probe("bpf_obj_get_info_by_fd", "bpf", since="4.13", needs="CAP_BPF", judge=_judge_info,
       examples=[({"errno": 0, "info_len": 104, "want": _INFO_WANT, "got": _INFO_WANT}, True),
                 ({"errno": 0, "info_len": 40, "want": _INFO_WANT,
                   "got": dict(_INFO_WANT, name=None)}, None),
                 ({"errno": errno.EINVAL, "info_len": 0, "want": _INFO_WANT, "got": {}}, False),
                 ({"errno": errno.EPERM, "info_len": 0, "want": _INFO_WANT, "got": {}}, None)])
def bpf_obj_get_info_by_fd():
    """BPF_OBJ_GET_INFO_BY_FD on a map: the description a dump records (4.13; name 4.15)."""
    want = dict(_INFO_WANT)
    seen = {"errno": 0, "info_len": 0, "want": want, "got": {}}
    with closing_fds() as fds:
        try:
            fds.append(bpf.map_create(HASH, 4, 8, 3, bpf.F_NO_PREALLOC, name=b"probe_info"))
            info = bpf.map_info(fds[0], 256)
        except OSError as e:
            seen["errno"] = e.errno
            return seen
    seen["info_len"] = info["info_len"]
    seen["got"] = {k: info.get(k) for k in want}
    return seen


def _judge_map_extra(seen):
    if seen["create"] in (errno.E2BIG, errno.EINVAL):
        return absent(f"BPF_MAP_CREATE with map_extra -> {errname(seen['create'])}")
    if seen["create"] or seen["info"]:
        step = "create" if seen["create"] else "info"
        return undecided(f"{step} -> {errname(seen[step])}")
    if seen["info_len"] < 88:
        return absent(f"info_len {seen['info_len']}: map_extra (offset 80) not reported")
    if seen["map_extra"] != 3:
        return undecided(f"info_len {seen['info_len']} but map_extra {seen['map_extra']}, "
                         f"not 3")
    return present(f"info_len {seen['info_len']}, map_extra 3 read back")


@probe("bpf_map_extra", "bpf", since="5.16", needs="CAP_BPF", judge=_judge_map_extra,
       examples=[({"create": 0, "info": 0, "info_len": 104, "map_extra": 3}, True),
                 ({"create": 0, "info": 0, "info_len": 80, "map_extra": None}, False),
                 ({"create": errno.E2BIG, "info": None, "info_len": 0, "map_extra": None},
                  False),
                 ({"create": errno.EINVAL, "info": None, "info_len": 0, "map_extra": None},
                  False),
                 ({"create": 0, "info": 0, "info_len": 104, "map_extra": 0}, None),
                 ({"create": errno.EPERM, "info": None, "info_len": 0, "map_extra": None},
                  None)])
def bpf_map_extra():
    """map_extra (bloom filter hash count, arena address) set at BPF_MAP_CREATE and read back
    from BPF_OBJ_GET_INFO_BY_FD (offset 80 of struct bpf_map_info)."""
    seen = {"create": None, "info": None, "info_len": 0, "map_extra": None}
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, bpf.MAP_TYPES["bloom_filter"], 0, 4, 1,
                    map_extra=3)
        if fd is None:
            return seen
        fds.append(fd)
        info = _steps(seen, "info", bpf.map_info, fd, 256)
        if info is not None:
            seen["info_len"] = info["info_len"]
            seen["map_extra"] = info.get("map_extra")
    return seen


def _fdinfo(fd):
    fields = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _judge_freeze(seen):
    if seen["freeze"] in (errno.EINVAL, ENOTSUPP):
        return absent(f"BPF_MAP_FREEZE -> {errname(seen['freeze'])}")
    step, code = _first_failure(seen, ("create", "freeze"))
    if step:
        return undecided(f"{step} -> {errname(code)}")
    notes = []
    if seen["fdinfo_frozen"] != "1":
        notes.append(f"fdinfo frozen: {seen['fdinfo_frozen']} (a dump cannot see it)")
    if seen["update_after"] != errno.EPERM:
        notes.append(f"update after freeze -> {errname(seen['update_after'])}, not EPERM")
    if notes:
        return undecided("frozen, but " + "; ".join(notes))
    return present("frozen; fdinfo shows frozen: 1; updates -> EPERM")


def _freeze_seen(**over):
    seen = {"create": 0, "freeze": 0, "fdinfo_frozen": "1", "update_after": errno.EPERM}
    seen.update(over)
    return seen


@probe("bpf_map_freeze", "bpf", since="5.2", needs="CAP_BPF", judge=_judge_freeze,
       examples=[(_freeze_seen(), True), (_freeze_seen(freeze=errno.EINVAL), False),
                 (_freeze_seen(freeze=errno.EPERM), None),
                 (_freeze_seen(fdinfo_frozen=None), None),
                 (_freeze_seen(update_after=0), None)])
def bpf_map_freeze():
    """BPF_MAP_FREEZE, the frozen state in /proc/PID/fdinfo (the only place a dump can read
    it), and the EPERM that syscall writes get afterwards."""
    seen = {"create": None, "freeze": None, "fdinfo_frozen": None, "update_after": None}
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, ARRAY, 4, 4, 1)
        if fd is None:
            return seen
        fds.append(fd)
        if _steps(seen, "freeze", bpf.map_freeze, fd) is None:
            return seen
        seen["fdinfo_frozen"] = _fdinfo(fd).get("frozen")
        seen["update_after"] = attempt(bpf.map_update, fd, b"\0" * 4, b"\1" * 4).errno
    return seen


def _judge_batch(seen):
    step, code = _first_failure(seen, ("create", "update_batch", "lookup_batch"))
    if step in ("update_batch", "lookup_batch") and code in (errno.EINVAL, ENOTSUPP):
        return absent(f"BPF_MAP_{step.upper()} -> {errname(code)}")
    if step:
        return undecided(f"{step} -> {errname(code)}")
    if seen["read"] != seen["wrote"]:
        return undecided(f"wrote {seen['wrote']}, lookup batch gave back {seen['read']}")
    return present(f"{seen['wrote'][0]} entries in by update batch, all back by lookup batch")


def _batch_seen(**over):
    seen = {"create": 0, "update_batch": 0, "lookup_batch": 0, "wrote": [3, "x"],
            "read": [3, "x"]}
    seen.update(over)
    return seen


@probe("bpf_map_batch_ops", "bpf", since="5.6", needs="CAP_BPF", judge=_judge_batch,
       examples=[(_batch_seen(), True), (_batch_seen(update_batch=errno.EINVAL), False),
                 (_batch_seen(update_batch=0, lookup_batch=ENOTSUPP), False),
                 (_batch_seen(lookup_batch=errno.EFAULT), None),
                 (_batch_seen(read=[2, "y"]), None)])
def bpf_map_batch_ops():
    """BPF_MAP_UPDATE_BATCH then BPF_MAP_LOOKUP_BATCH on a hash: restore and dump of a map's
    contents in one call each."""
    entries = [[3, 3000], [5, 5000], [7, 7000]]
    seen = {"create": None, "update_batch": None, "lookup_batch": None,
            "wrote": [len(entries), entries], "read": None}
    keys = b"".join(struct.pack("<I", k) for k, _ in entries)
    values = b"".join(struct.pack("<Q", v) for _, v in entries)
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, HASH, 4, 8, 8)
        if fd is None:
            return seen
        fds.append(fd)
        if _steps(seen, "update_batch", bpf.map_update_batch, fd, keys, values,
                  len(entries)) is None:
            return seen
        got = _steps(seen, "lookup_batch", bpf.map_lookup_batch, fd, 4, 8, 16)
        if got is None:
            return seen
    count, raw_keys, raw_values = got
    pairs = sorted(zip(struct.unpack(f"<{count}I", raw_keys),
                       struct.unpack(f"<{count}Q", raw_values)))
    seen["read"] = [count, [list(p) for p in pairs]]
    return seen


def _judge_ids(seen):
    step, code = _first_failure(seen, ("create", "info", "next_id", "get_fd", "info_again"))
    if step in ("next_id", "get_fd") and code == errno.EINVAL:
        return absent(f"BPF_MAP_{'GET_NEXT_ID' if step == 'next_id' else 'GET_FD_BY_ID'} -> "
                      f"EINVAL")
    if step:
        return undecided(f"{step} -> {errname(code)}")
    if seen["next_id_value"] != seen["id"] or seen["id_again"] != seen["id"]:
        return undecided(f"map id {seen['id']}: next id {seen['next_id_value']}, fd by id gave "
                         f"{seen['id_again']}")
    return present(f"map id {seen['id']} found by GET_NEXT_ID and reopened by GET_FD_BY_ID")


def _ids_seen(**over):
    seen = {"create": 0, "info": 0, "next_id": 0, "get_fd": 0, "info_again": 0, "id": 12,
            "next_id_value": 12, "id_again": 12}
    seen.update(over)
    return seen


@probe("bpf_map_get_fd_by_id", "bpf", since="4.13", needs="CAP_SYS_ADMIN", judge=_judge_ids,
       examples=[(_ids_seen(), True), (_ids_seen(get_fd=errno.EINVAL), False),
                 (_ids_seen(next_id=errno.EINVAL), False),
                 (_ids_seen(get_fd=errno.EPERM), None), (_ids_seen(id_again=13), None)])
def bpf_map_get_fd_by_id():
    """BPF_MAP_GET_NEXT_ID and BPF_MAP_GET_FD_BY_ID: reach maps that no fd of the dumped
    tasks holds (held by programs, links or other maps: inner maps come back as ids)."""
    seen = {"create": None, "info": None, "next_id": None, "get_fd": None, "info_again": None,
            "id": None, "next_id_value": None, "id_again": None}
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, ARRAY, 4, 4, 1)
        if fd is None:
            return seen
        fds.append(fd)
        info = _steps(seen, "info", bpf.map_info, fd)
        if info is None:
            return seen
        seen["id"] = info["id"]
        next_id = _steps(seen, "next_id", bpf.map_get_next_id, info["id"] - 1)
        if next_id is None:
            return seen
        seen["next_id_value"] = next_id
        again = _steps(seen, "get_fd", bpf.map_get_fd_by_id, info["id"])
        if again is None:
            return seen
        fds.append(again)
        info_again = _steps(seen, "info_again", bpf.map_info, again)
        if info_again is not None:
            seen["id_again"] = info_again["id"]
    return seen


# --- contents through mmap -------------------------------------------------------------------

def _judge_map_mmap(seen):
    step, code = _first_failure(seen, ("create", "mmap", "lookup"))
    if step == "create" and code == errno.EINVAL:
        return absent("BPF_MAP_CREATE(ARRAY, BPF_F_MMAPABLE) -> EINVAL")
    if step == "mmap" and code in (errno.ENODEV, errno.EINVAL, ENOTSUPP):
        return absent(f"mmap of the map fd -> {errname(code)}")
    if step:
        return undecided(f"{step} -> {errname(code)}")
    if seen["value"] != seen["wrote"]:
        return undecided(f"wrote {seen['wrote']:#x} through mmap, lookup saw {seen['value']:#x}")
    return present("a value written through mmap is seen by BPF_MAP_LOOKUP_ELEM")


@probe("bpf_map_mmap", "bpf", since="5.5", needs="CAP_BPF", judge=_judge_map_mmap,
       examples=[({"create": 0, "mmap": 0, "lookup": 0, "wrote": 7, "value": 7}, True),
                 ({"create": errno.EINVAL, "mmap": None, "lookup": None, "wrote": 7,
                   "value": None}, False),
                 ({"create": 0, "mmap": errno.ENODEV, "lookup": None, "wrote": 7,
                   "value": None}, False),
                 ({"create": 0, "mmap": errno.EPERM, "lookup": None, "wrote": 7,
                   "value": None}, None),
                 ({"create": 0, "mmap": 0, "lookup": 0, "wrote": 7, "value": 0}, None)])
def bpf_map_mmap():
    """mmap(2) of a BPF_F_MMAPABLE array: its contents as plain memory, read and written
    without syscalls (a dump copies it, a restore writes it back)."""
    seen = {"create": None, "mmap": None, "lookup": None, "wrote": 0x1122334455667788,
            "value": None}
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, ARRAY, 4, 8, 1, bpf.F_MMAPABLE)
        if fd is None:
            return seen
        fds.append(fd)
        area = _steps(seen, "mmap", mmap.mmap, fd, PAGE_SIZE, mmap.MAP_SHARED,
                      mmap.PROT_READ | mmap.PROT_WRITE)
        if area is None:
            return seen
        try:
            area[0:8] = struct.pack("<Q", seen["wrote"])
        finally:
            area.close()
        value = _steps(seen, "lookup", bpf.map_lookup, fd, b"\0" * 4, 8)
        if value is not None:
            seen["value"] = struct.unpack("<Q", value)[0]
    return seen


def _judge_ringbuf_mmap(seen):
    step, code = _first_failure(seen, ("create", "consumer", "producer"))
    if step == "create" and code == errno.EINVAL:
        return absent("BPF_MAP_CREATE(RINGBUF) -> EINVAL")
    if step:
        return undecided(f"mmap of the {step} side -> {errname(code)}" if step != "create"
                         else f"create -> {errname(code)}")
    note = ("" if seen["producer_rw"] == errno.EPERM else
            f"; writable producer mapping -> {errname(seen['producer_rw'])}, not EPERM")
    return present(f"consumer_pos {seen['positions'][0]}, producer_pos {seen['positions'][1]} "
                   f"readable through mmap{note}")


def _ringbuf_seen(**over):
    seen = {"create": 0, "consumer": 0, "producer": 0, "producer_rw": errno.EPERM,
            "positions": [0, 0]}
    seen.update(over)
    return seen


@probe("bpf_ringbuf_mmap", "bpf", since="5.8", needs="CAP_BPF", judge=_judge_ringbuf_mmap,
       examples=[(_ringbuf_seen(), True), (_ringbuf_seen(producer_rw=0), True),
                 (_ringbuf_seen(create=errno.EINVAL), False),
                 (_ringbuf_seen(consumer=errno.EPERM), None),
                 (_ringbuf_seen(create=errno.ENOMEM), None)])
def bpf_ringbuf_mmap():
    """A BPF ring buffer's positions and pending records through mmap: the consumer page
    read-write, producer page and data read-only (a writable one must be refused)."""
    seen = {"create": None, "consumer": None, "producer": None, "producer_rw": None,
            "positions": None}
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, bpf.MAP_TYPES["ringbuf"], 0, 0, PAGE_SIZE)
        if fd is None:
            return seen
        fds.append(fd)
        consumer = _steps(seen, "consumer", mmap.mmap, fd, PAGE_SIZE, mmap.MAP_SHARED,
                          mmap.PROT_READ | mmap.PROT_WRITE)
        if consumer is None:
            return seen
        try:
            # producer page plus the data pages, which the kernel maps twice in a row
            producer = _steps(seen, "producer", mmap.mmap, fd, PAGE_SIZE + 2 * PAGE_SIZE,
                              mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE_SIZE)
            if producer is None:
                return seen
            try:
                seen["positions"] = [struct.unpack_from("<Q", consumer, 0)[0],
                                     struct.unpack_from("<Q", producer, 0)[0]]
            finally:
                producer.close()
            seen["producer_rw"] = attempt(
                lambda: mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=PAGE_SIZE).close()
            ).errno
        finally:
            consumer.close()
    return seen


# --- bpffs -----------------------------------------------------------------------------------

def _bpffs_child():
    """In a private mount namespace: mount a bpffs over the temp dir, pin, get back."""
    seen = {"private": None, "mount": None, "create": None, "pin": None, "get": None,
            "get_rdonly": None, "update_rdonly": None, "listed": None, "same_map": None}
    if _steps(seen, "private", mount.mount, None, "/", None, mount.MS_REC | mount.MS_PRIVATE) \
            is None:
        return seen
    target = tempfile.gettempdir()
    if _steps(seen, "mount", mount.mount, "bpf", target, "bpf") is None:
        return seen
    with closing_fds() as fds:
        fd = _steps(seen, "create", bpf.map_create, ARRAY, 4, 4, 1, name=b"probe_pinned")
        if fd is None:
            return seen
        fds.append(fd)
        path = os.path.join(target, "probe_map")
        if _steps(seen, "pin", bpf.obj_pin, fd, path) is None:
            return seen
        seen["listed"] = os.listdir(target)
        again = _steps(seen, "get", bpf.obj_get, path)
        if again is None:
            return seen
        fds.append(again)
        seen["same_map"] = bpf.map_info(again)["id"] == bpf.map_info(fd)["id"]
        rdonly = _steps(seen, "get_rdonly", bpf.obj_get, path, bpf.F_RDONLY)
        if rdonly is not None:
            fds.append(rdonly)
            seen["update_rdonly"] = attempt(bpf.map_update, rdonly, b"\0" * 4,
                                            b"\1" * 4).errno
    return seen


def _judge_bpffs(seen):
    step, code = _first_failure(seen, ("private", "mount", "create", "pin", "get"))
    if step == "mount" and code == errno.ENODEV:
        return absent("mount -t bpf -> ENODEV: no bpf filesystem")
    if step:
        return undecided(f"{step} -> {errname(code)}")
    if not seen["same_map"] or "probe_map" not in seen["listed"]:
        return undecided(f"pinned, but BPF_OBJ_GET gave another map or the directory shows "
                         f"{seen['listed']}")
    notes = ""
    if seen["get_rdonly"]:
        notes = f"; BPF_OBJ_GET(BPF_F_RDONLY) -> {errname(seen['get_rdonly'])}"
    elif seen["update_rdonly"] != errno.EPERM:
        notes = f"; a read-only fd could update ({errname(seen['update_rdonly'])})"
    preloaded = sorted(set(seen["listed"]) - {"probe_map"})
    if preloaded:   # CONFIG_BPF_PRELOAD puts maps.debug and progs.debug in every instance
        notes += f"; the new instance also holds {', '.join(preloaded)}"
    return present(f"mounted, pinned a map, BPF_OBJ_GET returned it{notes}")


def _bpffs_seen(**over):
    seen = {"private": 0, "mount": 0, "create": 0, "pin": 0, "get": 0, "get_rdonly": 0,
            "update_rdonly": errno.EPERM, "listed": ["probe_map"], "same_map": True}
    seen.update(over)
    return seen


@probe("bpffs", "bpf", since="4.4", needs="CAP_SYS_ADMIN", judge=_judge_bpffs,
       examples=[(_bpffs_seen(), True), (_bpffs_seen(get_rdonly=errno.EINVAL), True),
                 (_bpffs_seen(listed=["maps.debug", "probe_map", "progs.debug"]), True),
                 (_bpffs_seen(listed=["maps.debug"]), None),
                 (_bpffs_seen(update_rdonly=0), True),
                 (_bpffs_seen(mount=errno.ENODEV), False),
                 (_bpffs_seen(mount=errno.EPERM), None), (_bpffs_seen(same_map=False), None)])
def bpffs():
    """The bpf filesystem: mount one (in a child's private mount namespace), BPF_OBJ_PIN a
    map there, find the pin by name and BPF_OBJ_GET it back (also read-only, 4.15)."""
    return in_child(_bpffs_child, unshare_flags=CLONE_NEWNS)


# --- programs a dump uses --------------------------------------------------------------------

def _load_iter_prog():
    func = vmlinux_btf().find("bpf_iter_bpf_map", btf.KIND_FUNC)
    if not func:
        raise OSError(errno.ENOENT, "no FUNC bpf_iter_bpf_map in kernel BTF")
    os.close(bpf.prog_load(bpf.PROG_TYPE_TRACING, bpf.RETURN_ZERO,
                           expected_attach_type=bpf.TRACE_ITER, attach_btf_id=func))


@probe("bpf_iter_prog_load", "bpf", since="5.8", needs="CAP_BPF",
       judge=by_errno("BPF_PROG_LOAD(TRACING, BPF_TRACE_ITER, bpf_iter_bpf_map)",
                      present_on=(0,), absent_on=("EINVAL", "ENOENT")),
       examples=[(Call(0), True), (Call(errno.EINVAL), False), (Call(errno.ENOENT), False),
                 (Call(errno.EPERM), None)])
def bpf_iter_prog_load():
    """An iterator program loads: the base of every BPF iterator (map elements, tasks, files);
    ENOENT: no kernel BTF to attach it by."""
    return attempt(_load_iter_prog)


# bpf_get_current_task_btf(): helper 158 (5.11); returns a trusted task_struct pointer
_GET_CURRENT_TASK_BTF = 158
_ITER_SLOT = -8   # struct bpf_iter_task_vma is 8 bytes, on the stack


def _task_vma_prog(new, nxt, destroy):
    """Walk the first VMA of the current task with the open-coded task_vma iterator."""
    mov_x, add_k, mov_k, call, exit_ = 0xbf, 0x07, 0xb7, 0x85, 0x95
    stack_slot = bpf.insn(mov_x, dst=1, src=10) + bpf.insn(add_k, dst=1, imm=_ITER_SLOT)
    kfunc = lambda btf_id: bpf.insn(call, src=bpf.PSEUDO_KFUNC_CALL, imm=btf_id)  # noqa: E731
    return b"".join((
        bpf.insn(call, imm=_GET_CURRENT_TASK_BTF),
        bpf.insn(mov_x, dst=2, src=0),               # r2 = task
        stack_slot, bpf.insn(mov_k, dst=3, imm=0),    # r1 = &it, r3 = addr 0
        kfunc(new),
        stack_slot, kfunc(nxt),
        stack_slot, kfunc(destroy),
        bpf.insn(mov_k, dst=0, imm=0), bpf.insn(exit_),
    ))


def _kfunc_exercise():
    seen = {"btf": True, "kfuncs": None, "attach": None, "load": None, "link": None,
            "read": None, "log": ""}
    try:
        types = vmlinux_btf()
    except OSError:
        seen["btf"] = False
        return seen
    names = ("bpf_iter_task_vma_new", "bpf_iter_task_vma_next", "bpf_iter_task_vma_destroy")
    ids = [types.find(n, btf.KIND_FUNC) for n in names]
    seen["kfuncs"] = ids
    seen["attach"] = types.find("bpf_iter_task", btf.KIND_FUNC)
    if not all(ids) or not seen["attach"]:
        return seen
    with closing_fds() as fds:
        try:
            fds.append(bpf.prog_load(bpf.PROG_TYPE_TRACING, _task_vma_prog(*ids),
                                     expected_attach_type=bpf.TRACE_ITER,
                                     attach_btf_id=seen["attach"], log_size=4096))
            seen["load"] = 0
        except OSError as e:
            seen["load"] = e.errno
            seen["log"] = (e.strerror or "")[-200:]
            return seen
        # run it: a task iterator calls it once per task
        link = _steps(seen, "link", bpf.link_create, fds[0], bpf.TRACE_ITER)
        if link is None:
            return seen
        fds.append(link)
        it = _steps(seen, "read", bpf.iter_create, link)
        if it is not None:
            fds.append(it)
            _steps(seen, "read", bpf.read_all, it)
    return seen


def _judge_kfunc(seen):
    if not seen["btf"]:
        return undecided("no kernel BTF: kfuncs cannot be named")
    if not seen["kfuncs"] or not all(seen["kfuncs"]):
        return absent("no FUNC bpf_iter_task_vma_{new,next,destroy} in kernel BTF")
    if not seen["attach"]:
        return undecided("no FUNC bpf_iter_task to attach the test program to")
    step, code = _first_failure(seen, ("load", "link", "read"))
    if step == "load" and code in (errno.EINVAL, errno.EACCES):
        return absent(f"a program calling them does not load ({errname(code)}): "
                      f"{seen['log']}".rstrip(": "))
    if step:
        return undecided(f"{step} -> {errname(code)}")
    return present("a program walking the current task's VMAs with them loads and runs")


def _kfunc_seen(**over):
    seen = {"btf": True, "kfuncs": [1, 2, 3], "attach": 4, "load": 0, "link": 0, "read": 0,
            "log": ""}
    seen.update(over)
    return seen


@probe("bpf_kfunc_iter_task_vma", "bpf", since="6.7", needs="CAP_BPF", judge=_judge_kfunc,
       examples=[(_kfunc_seen(), True), (_kfunc_seen(kfuncs=[None, None, None]), False),
                 (_kfunc_seen(load=errno.EACCES, log="calling kernel function is not "
                                                     "allowed"), False),
                 (_kfunc_seen(load=errno.EPERM), None), (_kfunc_seen(btf=False), None),
                 (_kfunc_seen(attach=None), None), (_kfunc_seen(read=errno.EINTR), None)])
def bpf_kfunc_iter_task_vma():
    """Open-coded iterator kfuncs bpf_iter_task_vma_{new,next,destroy}: a program (here a
    task iterator) walks a task's VMAs itself - in-kernel dumping of memory maps."""
    return _kfunc_exercise()


# --- privilege -------------------------------------------------------------------------------

def _unprivileged_child():
    """Drop to nobody (all capabilities go) and try BPF_MAP_CREATE of an array."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    return attempt(_create_array).errno


def _read_sysctl():
    try:
        with open(SYSCTL_UNPRIV) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


_UNPRIV_MEANING = {0: "allowed", 1: "disabled, locked until reboot",
                   2: "disabled, root may re-enable"}


def _judge_unpriv(seen):
    sysctl = seen["sysctl"]
    setting = ("no kernel.unprivileged_bpf_disabled" if sysctl is None else
               f"kernel.unprivileged_bpf_disabled={sysctl} "
               f"({_UNPRIV_MEANING.get(sysctl, 'unknown value')})")
    code = seen["create"]
    if code == 0:
        return present(f"an unprivileged BPF_MAP_CREATE works; {setting}", sysctl=sysctl)
    if code == errno.EPERM:
        return absent(f"unprivileged BPF_MAP_CREATE -> EPERM; {setting}", sysctl=sysctl)
    if code == errno.ENOSYS:
        return absent("no bpf() syscall", sysctl=sysctl)
    return undecided(f"unexpected: unprivileged BPF_MAP_CREATE -> {errname(code)}; {setting}",
                     sysctl=sysctl)


@probe("unprivileged_bpf", "bpf", since="4.4", judge=_judge_unpriv,
       examples=[({"sysctl": 0, "create": 0}, True), ({"sysctl": 2, "create": errno.EPERM},
                                                       False),
                 ({"sysctl": 1, "create": errno.EPERM}, False),
                 ({"sysctl": None, "create": errno.ENOSYS}, False),
                 ({"sysctl": 0, "create": errno.ENOMEM}, None)])
def unprivileged_bpf():
    """Can a task without capabilities use bpf()? (restoring BPF maps of unprivileged tasks
    as themselves). Tried for real as nobody in a child; the sysctl is the detail."""
    return {"sysctl": _read_sysctl(), "create": in_child(_unprivileged_child)}


# One process cannot do it alone: the bpffs must be opened (fsopen) inside the user namespace
# the token is for, while its delegate_* options and its creation need CAP_SYS_ADMIN in the
# initial one - the split a container manager and its container make.
_TOKEN_STEPS = ("userns", "fsopen", "getfd", "delegate", "create_fs", "fsmount", "setns",
                "token", "map_with_token")


def _token_container(to_parent, from_parent):
    """Child B: a new user+mount namespace that opens a bpffs context and waits."""
    try:
        step = "userns"
        uid, gid = os.geteuid(), os.getegid()
        unshare(CLONE_NEWUSER | CLONE_NEWNS)
        map_self(uid, gid)
        step = "fsopen"
        fs_fd = mount.fsopen("bpf")
        os.write(to_parent, f"ok {fs_fd}".encode())
    except OSError as e:
        os.write(to_parent, f"{step} {e.errno}".encode())
    os.read(from_parent, 1)   # keep the namespace and the fd alive until the parent is done


def _token_delegated():
    """Child A (initial user namespace, privileged): delegate a bpffs opened by B, join B's
    user namespace, create a token from that bpffs and a map with the token."""
    seen = dict.fromkeys(_TOKEN_STEPS)
    seen.update(map_without_token=None, allowed_cmds=None)
    to_a_r, to_a_w = os.pipe()
    to_b_r, to_b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_a_r)
            os.close(to_b_w)
            _token_container(to_a_w, to_b_r)
        finally:
            os._exit(0)
    os.close(to_a_w)
    os.close(to_b_r)
    with closing_fds() as fds:
        try:
            fds += [to_a_r, to_b_w]
            word, value = os.read(to_a_r, 64).decode().split()
            if word != "ok":
                seen[word] = int(value)
                return seen
            seen["userns"] = seen["fsopen"] = 0
            pidfd = os.pidfd_open(pid)
            fds.append(pidfd)
            fs_fd = _steps(seen, "getfd", process.pidfd_getfd, pidfd, int(value))
            if fs_fd is None:
                return seen
            fds.append(fs_fd)
            for key in ("delegate_cmds", "delegate_maps"):
                if _steps(seen, "delegate", mount.fsconfig, fs_fd, mount.FSCONFIG_SET_STRING,
                          key, "any") is None:
                    return seen
            if _steps(seen, "create_fs", mount.fsconfig, fs_fd,
                      mount.FSCONFIG_CMD_CREATE) is None:
                return seen
            mnt_fd = _steps(seen, "fsmount", mount.fsmount, fs_fd)
            if mnt_fd is None:
                return seen
            fds.append(mnt_fd)
            # the mount fd is O_PATH, which bpf() does not take: open its root for real
            root = _steps(seen, "fsmount", os.open, ".", os.O_RDONLY | os.O_DIRECTORY |
                          os.O_CLOEXEC, dir_fd=mnt_fd)
            if root is None:
                return seen
            fds.append(root)
            userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(userns)
            if _steps(seen, "setns", setns, userns, CLONE_NEWUSER) is None:
                return seen
            token = _steps(seen, "token", bpf.token_create, root)
            if token is None:
                return seen
            fds.append(token)
            seen["allowed_cmds"] = _fdinfo(token).get("allowed_cmds")
            seen["map_without_token"] = attempt(_create_array).errno
            with_token = _steps(seen, "map_with_token", bpf.map_create, ARRAY, 4, 4, 1,
                                bpf.F_TOKEN_FD, map_token_fd=token)
            if with_token is not None:
                fds.append(with_token)
        finally:
            os.write(to_b_w, b"x")
            os.waitpid(pid, 0)
    return seen


def _judge_token(seen):
    code = seen["bad_fd"]
    if code == errno.EINVAL:
        return absent("BPF_TOKEN_CREATE(bpffs_fd -1) -> EINVAL: unknown bpf command")
    if code != errno.EBADF:
        return undecided(f"unexpected: BPF_TOKEN_CREATE(bpffs_fd -1) -> {errname(code)}")
    exists = "BPF_TOKEN_CREATE(bpffs_fd -1) -> EBADF: the command exists"
    delegated = seen["delegated"]
    if delegated is None:
        return present(f"{exists}; delegation not tried ({seen['delegation_error']})")
    step, err = _first_failure(delegated, _TOKEN_STEPS)
    if step:
        return present(f"{exists}; delegation failed at {step} -> {errname(err)}")
    without = delegated["map_without_token"]
    return present(f"{exists}; a token from a bpffs delegated to a user namespace (allowed_cmds "
                   f"{delegated['allowed_cmds']}) created a map there (without it: "
                   f"{errname(without) if without else 'also allowed'})")


def _token_seen(bad_fd=errno.EBADF, **steps):
    delegated = dict.fromkeys(_TOKEN_STEPS, 0)
    delegated.update(map_without_token=errno.EPERM, allowed_cmds="any")
    delegated.update(steps)
    return {"bad_fd": bad_fd, "delegated": delegated, "delegation_error": None}


@probe("bpf_token", "bpf", since="6.9", judge=_judge_token,
       examples=[(_token_seen(), True), (_token_seen(map_without_token=0), True),
                 (_token_seen(create_fs=errno.EPERM, fsmount=None, setns=None, token=None,
                              map_with_token=None), True),
                 ({"bad_fd": errno.EBADF, "delegated": None,
                   "delegation_error": "probe child timed out"}, True),
                 (_token_seen(bad_fd=errno.EINVAL), False),
                 (_token_seen(bad_fd=errno.EPERM), None)])
def bpf_token():
    """BPF_TOKEN_CREATE (cmd 36): BPF rights delegated to a user namespace through a bpffs
    instance with delegate_* options. A kernel without it rejects cmd 36 as unknown
    (EINVAL) before reading the attribute; one with it looks at bpffs_fd first, so fd -1
    gives EBADF. Then the whole delegation is done for real, in children."""
    seen = {"bad_fd": attempt(bpf.token_create, -1).errno, "delegated": None,
            "delegation_error": None}
    if seen["bad_fd"] == errno.EBADF:
        try:
            seen["delegated"] = in_child(_token_delegated)
        except OSError as e:
            seen["delegation_error"] = errname(e.errno)
        except ChildFailed as e:
            seen["delegation_error"] = str(e)
    return seen
