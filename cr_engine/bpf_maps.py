"""BPF maps: their parameters, BTF, contents, frozen state and pins.

Dump: a map fd is looked at through a copy (pidfd_getfd); BPF_OBJ_GET_INFO_BY_FD gives the
type, sizes, flags, name, map_extra and BTF ids, fdinfo whether it is frozen.  Every file
description of a map names it by its kernel id; the first carries the map, so a map held by
several processes or twice by one stays one map.  Contents are read with
BPF_MAP_LOOKUP_BATCH where the probe ``bpf_map_<type>`` saw it work, else key by key;
per-CPU maps give every possible CPU's value; queues and stacks are popped and pushed back
in the same order (they have no other read; a frozen one by a program, bpf_progs); maps of
maps are read as inner map ids, and inner maps no fd holds are dumped as descriptions of
their own.  Ring buffers carry their unconsumed records, read through a mapping of our own.
Pins of the tree's maps in bpf file systems the dumper sees at the same paths are recorded.

Restore: maps are created once, inner maps first, filled (batch where the probe allows;
ring records at their old offsets, a kernel ring's by a program), then frozen if they were;
every description is a BPF_MAP_GET_FD_BY_ID of the new map with its access mode.  Pins are replaced last, when the tree is restored: pinned under a temporary
name and renamed over the old pin.

Refused with a reason (the tree keeps running): types whose entries are kernel objects the
dump does not carry (programs, sockets, perf events, devices, cgroups...), maps a loaded
program uses, maps user space may not read, and bloom filters (no read at all).
"""

import errno
import functools
import hashlib
import mmap
import os
import struct

from kernel import bpf, fdinfo
from kernel import memory as kmem
from kernel.procfs import mountinfo

from . import bpf_progs
from .errors import RestoreError, Unsupported

KIND = "bpf-map"
TYPE_NAMES = {value: name for name, value in bpf.MAP_TYPES.items()}
KEYED = {"hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash",
         "lpm_trie", "array_of_maps", "hash_of_maps"}
QUEUES = {"queue", "stack"}
RINGS = {"ringbuf", "user_ringbuf"}
PERCPU = {"percpu_hash", "percpu_array", "lru_percpu_hash"}
OF_MAPS = {"array_of_maps", "hash_of_maps"}
ARRAYS = {"array", "percpu_array"}      # every key exists: a zero value is "empty"
# types whose entries are objects the dump does not carry: restorable only when empty
EMPTY_ONLY = {"prog_array": "its entries are BPF programs, which are not dumped"}
WHY_NOT = {
    "perf_event_array": "its entries are perf events",
    "stack_trace": "it is filled by programs (bpf_get_stackid) only",
    "cgroup_array": "its entries are cgroups",
    "devmap": "its entries are network devices", "devmap_hash": "its entries are network devices",
    "sockmap": "its entries are sockets", "sockhash": "its entries are sockets",
    "reuseport_sockarray": "its entries are sockets",
    "cpumap": "its entries are CPU redirect queues", "xskmap": "its entries are AF_XDP sockets",
    "cgroup_storage": "its elements belong to attached programs",
    "percpu_cgroup_storage": "its elements belong to attached programs",
    "sk_storage": "its elements belong to sockets", "inode_storage": "its elements belong to inodes",
    "task_storage": "its elements belong to tasks", "cgrp_storage": "its elements belong to cgroups",
    "struct_ops": "its value is a struct of programs",
    "bloom_filter": "its contents cannot be read back from user space",
    "arena": "its pages are not carried yet",
}
PAGE = mmap.PAGESIZE
_BATCH = 4096                   # elements per BPF_MAP_LOOKUP_BATCH / UPDATE_BATCH


@functools.cache
def _batch_works(type_name):
    """What the probe sees: BPF_MAP_LOOKUP_BATCH on a map of this type, on this kernel."""
    from probes.bpf_maps import batch_lookup_works
    return batch_lookup_works(type_name)


@functools.cache
def _cpus():
    return bpf.num_possible_cpus()


def _value_size(record):
    """Bytes of one lookup's value: per-CPU maps give each possible CPU's, 8-aligned."""
    size = record["value_size"]
    if record["map_type"] in PERCPU:
        return (size + 7) // 8 * 8 * _cpus()
    return size


# Dump -----------------------------------------------------------------------------------------
class BpfDump:
    """The maps of one dump: kernel id -> the holder of the map's first description."""

    def __init__(self):
        self.owners = {}            # map id -> (pid, fd) first seen with it
        self.inner = {}             # map id -> an fd of an inner map seen in a map of maps

    def describe(self, table, pid, fd, flags, what):
        dup = table.dup(pid, fd)
        try:
            info = bpf.map_info(dup)
            desc = {"type": "bpf-map", "flags": flags, "map_id": info["id"]}
            if info["id"] in self.owners:
                return desc
            self.owners[info["id"]] = (pid, fd)
            record, payload = self._record(dup, info, _frozen(dup), what)
            desc["map"] = record
            if payload:
                desc["payload"] = payload
            return desc
        finally:
            os.close(dup)

    def _record(self, fd, info, frozen, what):
        """(the map's parameters, its BTF and contents as bytes) - or Unsupported."""
        type_name = TYPE_NAMES.get(info["type"], str(info["type"]))
        what = f"BPF map {info['id']} ({type_name} {info.get('name')!r}; {what})"
        if type_name in WHY_NOT or type_name not in KEYED | QUEUES | RINGS | set(EMPTY_ONLY):
            raise Unsupported(f"unsupported: {what}: "
                              f"{WHY_NOT.get(type_name, 'an unknown map type')}")
        if info.get("ifindex"):
            raise Unsupported(f"unsupported: {what} is offloaded to a device")
        flags = info["map_flags"]
        if flags & bpf.F_WRONLY:
            raise Unsupported(f"unsupported: {what} is write-only to user space "
                              f"(BPF_F_WRONLY): its contents cannot be read")
        record = {"map_type": type_name, "key_size": info["key_size"],
                  "value_size": info["value_size"], "max_entries": info["max_entries"],
                  "map_flags": flags, "name": info.get("name", ""),
                  "map_extra": info.get("map_extra", 0), "frozen": frozen}
        if flags & bpf.F_NUMA_NODE:
            record["numa_node"] = _numa_node(what)
        btf = b""
        if info.get("btf_id"):
            btf_fd = bpf.btf_get_fd_by_id(info["btf_id"])
            try:
                btf = bpf.btf_info(btf_fd)[1]
            finally:
                os.close(btf_fd)
            record.update(btf_size=len(btf), btf_key_type_id=info["btf_key_type_id"],
                          btf_value_type_id=info["btf_value_type_id"])
        if type_name in RINGS:
            return record, btf + _ring_contents(fd, record, what)
        keys, values, count = self._contents(fd, record, frozen, what)
        if count and type_name in EMPTY_ONLY:
            raise Unsupported(f"unsupported: {what} holds {count} entries: "
                              f"{EMPTY_ONLY[type_name]}")
        if count and flags & bpf.F_RDONLY:
            raise Unsupported(f"unsupported: {what} is read-only to user space "
                              f"(BPF_F_RDONLY) and holds data: it could not be filled again")
        record["entries"] = count
        if type_name in OF_MAPS:
            record["inner"] = self._inner_ids(values, what)
            values = b""
        return record, btf + keys + values

    def _contents(self, fd, record, frozen, what):
        """(packed keys, packed values, count); empty array slots are left out."""
        type_name = record["map_type"]
        if type_name in QUEUES:
            return b"", *_pop_all(fd, record, frozen)
        key_size, value_size = record["key_size"], _value_size(record)
        if type_name in OF_MAPS:
            value_size = 4                      # a lookup gives the inner map's id
        if type_name not in OF_MAPS and _batch_works(type_name):
            keys, values, count = _read_batched(fd, key_size, value_size)
        else:
            keys, values, count = _read_by_key(fd, key_size, value_size)
        if type_name in ARRAYS:                 # keep the slots that hold something
            zero, kept = bytes(value_size), []
            for i in range(count):
                value = values[i * value_size:(i + 1) * value_size]
                if value != zero:
                    kept.append((keys[i * key_size:(i + 1) * key_size], value))
            return b"".join(k for k, _ in kept), b"".join(v for _, v in kept), len(kept)
        return keys, values, count

    def _inner_ids(self, values, what):
        """The inner maps' ids of a map of maps; each one's fd kept for finish()."""
        ids = [struct.unpack_from("<I", values, i)[0] for i in range(0, len(values), 4)]
        for map_id in ids:
            if map_id not in self.inner:
                try:
                    self.inner[map_id] = bpf.map_get_fd_by_id(map_id)
                except OSError as e:
                    raise Unsupported(f"unsupported: {what}: inner map {map_id}: "
                                      f"{e.strerror}") from None
        return ids

    def mapping(self, table, pid, vma):
        """The id of a description of the map mapped at ``vma``.  /proc cannot open a
        mapping of an anon inode, so the map is found by the page frame its first page
        is (BPF maps map their pages when mmapped): the tree's maps first, then every map
        of the system; a map no fd holds gets a description of its own."""
        with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
            frame = _frame(kmem.pagemap_entry(f.fileno(), vma.start))
        if frame is None:
            raise Unsupported(f"unsupported: BPF map mapped at {vma.start:#x} of pid {pid} "
                              f"with its first page not present")
        found = self._mapped(table, frame, vma.offset)
        if isinstance(found, str):
            return found
        fd = found
        try:
            info = bpf.map_info(fd)
            self.owners[info["id"]] = (pid, f"mapped at {vma.start:#x}")
            record, payload = self._record(fd, info, _frozen(fd), f"mapped at {vma.start:#x} "
                                           f"in pid {pid}")
        finally:
            os.close(fd)
        return table.add_description({"type": "bpf-map", "flags": os.O_RDWR,
                                      "map_id": info["id"], "map": record, "held": False},
                                     payload)

    def _mapped(self, table, frame, offset):
        """The description id of the tree's map whose page at ``offset`` is ``frame``, or
        an fd of such a map found among all maps, or Unsupported."""
        for file_id, desc in table.files.items():
            if (desc["type"] == "bpf-map" and "map" in desc and
                    _mappable(desc["map"]["map_type"], desc["map"]["map_flags"])):
                pid, fd = self.owners[desc["map_id"]]
                fd = table.dup(pid, fd) if pid != os.getpid() else os.dup(fd)
                try:
                    if _frame_at(fd, offset) == frame:
                        return file_id
                finally:
                    os.close(fd)
        map_id = 0
        while True:
            try:
                map_id = bpf.map_get_next_id(map_id)
                fd = bpf.map_get_fd_by_id(map_id)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise Unsupported(f"unsupported: a BPF map mapping (page frame {frame:#x}) "
                                      f"that matches no map") from None
                continue
            try:
                info = bpf.map_info(fd)
                if (_mappable(TYPE_NAMES.get(info["type"]), info["map_flags"]) and
                        _frame_at(fd, offset) == frame):
                    return fd
            except OSError:
                pass
            os.close(fd)

    @staticmethod
    def describe_btf(table, pid, fd, flags):
        """A BTF object an fd holds: its bytes (loaded again, once per distinct blob)."""
        dup = table.dup(pid, fd)
        try:
            blob = bpf.btf_info(dup)[1]
        finally:
            os.close(dup)
        return {"type": "btf", "flags": flags, "size": len(blob), "payload": blob}

    def finish(self, table):
        """Inner maps no fd holds become descriptions of their own; then refusals that need
        every map: ones a loaded program uses; then pins."""
        for map_id, fd in sorted(self.inner.items()):
            if map_id in self.owners:
                continue
            self.owners[map_id] = (os.getpid(), fd)
            record, payload = self._record(fd, bpf.map_info(fd), _frozen(fd), "inner map")
            table.add_description({"type": "bpf-map", "flags": os.O_RDWR, "map_id": map_id,
                                   "map": record, "held": False}, payload)
        if self.owners:
            _refuse_used_by_programs(self.owners)
            pins = _pins(self.owners)
            for desc in table.files.values():
                if desc["type"] == "bpf-map" and "map" in desc and desc["map_id"] in pins:
                    desc["map"]["pins"] = sorted(pins[desc["map_id"]])

    def close(self, final):
        for fd in self.inner.values():
            os.close(fd)
        self.inner = {}


def _mappable(type_name, flags):
    return type_name in RINGS or bool(flags & bpf.F_MMAPABLE)


def _frame(entry):
    """The page frame number of a present page's pagemap entry (root sees them)."""
    return entry & ((1 << 55) - 1) if entry >> 63 & 1 else None


def _frame_at(fd, offset):
    """The page frame of the page at ``offset`` of a map, mapped here for a moment."""
    try:
        addr = kmem.mmap(PAGE, kmem.PROT_READ, kmem.MAP_SHARED, fd, offset)
    except OSError:
        return None
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as f:
            return _frame(kmem.pagemap_entry(f.fileno(), addr))
    finally:
        kmem.munmap(addr, PAGE)


def _frozen(fd):
    return fdinfo.read(fd).get("frozen") == "1"


def _numa_node(what):
    """A map made with BPF_F_NUMA_NODE: the kernel does not say which node; with one online
    node only it can be that one."""
    try:
        with open("/sys/devices/system/node/online") as f:
            online = f.read().strip()
    except OSError:
        online = "0"
    if online != "0":
        raise Unsupported(f"unsupported: {what} was made for a NUMA node that the kernel does "
                          f"not show, and this machine has nodes {online}")
    return 0


def _read_batched(fd, key_size, value_size):
    keys, values, at, ended = [], [], None, False
    while not ended:
        done, k, v, at, ended = bpf.map_lookup_batch_from(fd, key_size, value_size, _BATCH, at)
        keys.append(k)
        values.append(v)
    joined = b"".join(keys)
    return joined, b"".join(values), len(joined) // key_size


def _read_by_key(fd, key_size, value_size):
    keys, values, key = [], [], None
    while True:
        try:
            key = bpf.map_get_next_key(fd, key, key_size)
        except OSError as e:
            if e.errno == errno.ENOENT:
                break
            raise
        try:
            value = bpf.map_lookup(fd, key, value_size)
        except OSError as e:
            if e.errno == errno.ENOENT:         # deleted meanwhile, or an empty map slot
                continue
            raise
        keys.append(key)
        values.append(value)
    return b"".join(keys), b"".join(values), len(keys)


def _pop_all(fd, record, frozen):
    """A queue's or stack's values, oldest first, popped and pushed back as they were (a
    frozen one by a program: freezing stops writes through the syscall only)."""
    size = record["value_size"]
    ops = bpf_progs.FrozenQueue(fd, size) if frozen else _SyscallQueue(fd, size)
    popped = []
    try:
        while (value := ops.pop()) is not None:
            popped.append(value)
    finally:                                        # also when a pop failed half way
        oldest_first = popped if record["map_type"] == "queue" else popped[::-1]
        try:
            for value in oldest_first:
                ops.push(value)
        finally:
            ops.close()
    return b"".join(oldest_first), len(oldest_first)


class _SyscallQueue:
    """pop() and push() of a queue or stack that is not frozen."""

    def __init__(self, fd, size):
        self.fd, self.size = fd, size

    def pop(self):
        try:
            return bpf.map_lookup_and_delete(self.fd, self.size)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise

    def push(self, value):
        bpf.map_update(self.fd, b"", value)

    def close(self):
        pass


# Ring buffers: a consumer page (the consumer position), then a producer page (the producer
# position) and the data area, mapped twice in a row so that a record never wraps.  Records:
# an 8-byte header (u32 length with the busy and discard bits, u32 page offset), the bytes,
# padding to 8.
RING_BUSY, RING_DISCARD, RING_HEADER = 1 << 31, 1 << 30, 8


def _ring_contents(fd, record, what):
    """The bytes between the consumer and producer positions, read through a mapping of
    our own (nothing is consumed); their offset in the data area goes in ``record``."""
    size = record["max_entries"]
    consumer = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
    producer = mmap.mmap(fd, PAGE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE)
    try:
        begin = struct.unpack_from("<Q", consumer, 0)[0]
        pending = struct.unpack_from("<Q", producer, 0)[0] - begin
        at = PAGE + begin % size
        data = producer[at:at + pending]
    finally:
        consumer.close()
        producer.close()
    if record["map_type"] == "ringbuf":
        for word, _ in _ring_records(data):
            if word & RING_BUSY:
                raise Unsupported(f"unsupported: {what} holds a record a program reserved "
                                  f"and has not submitted")
            if word & RING_DISCARD:
                raise Unsupported(f"unsupported: {what} holds a record a program discarded "
                                  f"that the consumer has not passed yet")
    record["ring"] = {"offset": begin % size, "length": pending}
    return data


def _ring_records(data):
    """(header length word with its bits, offset of the bytes) of each record in ``data``."""
    at = 0
    while at < len(data):
        word = struct.unpack_from("<I", data, at)[0]
        yield word, at + RING_HEADER
        at += (RING_HEADER + (word & ~(RING_BUSY | RING_DISCARD)) + 7) // 8 * 8


def _fill_ring(fd, record, data):
    """Put a ring's records back at their offsets in the data area (pointers the process
    keeps into it stay right): what lies before them is taken by a record already consumed
    (a kernel ring: a program produces it, then the consumer position is moved past it) or
    discarded (a user ring: the kernel skips it)."""
    offset, size = record["ring"]["offset"], record["max_entries"]
    if record["map_type"] == "user_ringbuf":        # user space produces: written as it was
        area = mmap.mmap(fd, PAGE + 2 * size, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE, offset=PAGE)
        try:
            if offset:
                struct.pack_into("<II", area, PAGE, (offset - RING_HEADER) | RING_DISCARD, 0)
            area[PAGE + offset:PAGE + offset + len(data)] = data
            struct.pack_into("<Q", area, 0, offset + len(data))
        finally:
            area.close()
        return
    if offset:
        bpf_progs.ring_output(fd, [bytes(offset - RING_HEADER)])
        consumer = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            struct.pack_into("<Q", consumer, 0, offset)
        finally:
            consumer.close()
    bpf_progs.ring_output(fd, [data[at:at + word] for word, at in _ring_records(data)])


def _refuse_used_by_programs(owners):
    prog_id = 0
    while True:
        try:
            prog_id = bpf.prog_get_next_id(prog_id)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return
            raise
        try:
            prog = bpf.prog_get_fd_by_id(prog_id)
        except OSError:
            continue                            # unloaded meanwhile
        try:
            name, used = bpf.prog_map_ids(prog)
        finally:
            os.close(prog)
        for map_id in set(used) & set(owners):
            pid, fd = owners[map_id]
            raise Unsupported(f"unsupported: BPF map {map_id} (fd {fd} of pid {pid}) is used "
                              f"by loaded BPF program {prog_id} ({name!r}): the program would "
                              f"keep the old map")


def _pins(owners):
    """map id -> {path} of the pins of these maps in the bpf file systems their holders see,
    kept only where the dumper sees the same file at the same path."""
    from .files import same_file             # files imports this module
    out, namespaces = {}, set()
    for pid, _ in owners.values():
        pid = pid if pid != os.getpid() else "self"
        namespace = os.stat(f"/proc/{pid}/ns/mnt").st_ino
        if namespace in namespaces:
            continue
        namespaces.add(namespace)
        for mount in mountinfo(f"/proc/{pid}/mountinfo"):
            if mount["fstype"] != "bpf":
                continue
            theirs = f"/proc/{pid}/root{mount['mount_point']}"
            for directory, _, names in os.walk(theirs):
                for name in names:
                    path = os.path.join(directory, name)
                    map_id = _pinned_map_id(path)
                    if map_id in owners:
                        ours = path[len(f"/proc/{pid}/root"):] or "/"
                        if not same_file(ours, os.stat(path)):
                            raise Unsupported(f"unsupported: BPF map {map_id} pinned at "
                                              f"{ours} of pid {pid}, which is another file "
                                              f"for the dumper")
                        out.setdefault(map_id, set()).add(ours)
    return out


def _pinned_map_id(path):
    try:
        fd = bpf.obj_get(path, bpf.F_RDONLY)
    except OSError:
        return None
    try:
        return bpf.map_info(fd)["id"]
    except OSError:
        return None                             # a program or a link
    finally:
        os.close(fd)


# Restore --------------------------------------------------------------------------------------
_OPEN_FLAGS = {os.O_RDONLY: bpf.F_RDONLY, os.O_WRONLY: bpf.F_WRONLY, os.O_RDWR: 0}


class Maps:
    """The maps of an image, created in the restorer: dumped map id -> fd of the new map."""

    def __init__(self, files, payload):
        self.files, self.payload = files, payload
        self.records = {d["map_id"]: (file_id, d["map"]) for file_id, d in files.items()
                        if d["type"] == "bpf-map" and "map" in d}
        self.fds, self.btf = {}, {}
        if self.records:
            bpf.memlock_unlimited()

    def open(self, desc):
        """A new description of the map of ``desc`` with its access mode."""
        new_id = bpf.map_info(self._map(desc["map_id"]))["id"]
        return bpf.map_get_fd_by_id(new_id, _OPEN_FLAGS[desc["flags"] & os.O_ACCMODE])

    def _map(self, map_id):
        if map_id in self.fds:
            return self.fds[map_id]
        if map_id not in self.records:
            raise RestoreError(f"BPF map {map_id} is not in the images", "files")
        file_id, record = self.records[map_id]
        blob = self.payload(file_id)
        btf, blob = blob[:record.get("btf_size", 0)], blob[record.get("btf_size", 0):]
        inner = [self._map(i) for i in record.get("inner", ())]
        try:
            fd = self._create(record, btf, inner[0] if inner else 0)
        except OSError as e:
            raise RestoreError(f"cannot create BPF map {record['name']!r} "
                               f"({record['map_type']}): {e.strerror}", "files") from None
        self.fds[map_id] = fd
        try:
            self._fill(fd, record, blob, inner)
            if record["frozen"]:
                bpf.map_freeze(fd)
        except OSError as e:
            raise RestoreError(f"cannot fill BPF map {record['name']!r} "
                               f"({record['map_type']}): {e.strerror}", "files") from None
        return fd

    def _create(self, record, btf, inner_fd):
        btf_fd = self._btf(btf) if btf else 0
        if record["map_type"] in OF_MAPS and not inner_fd:
            raise RestoreError(f"BPF map {record['name']!r}: an empty map of maps does not "
                               f"show the inner map it was made for", "files")
        return bpf.map_create(
            bpf.MAP_TYPES[record["map_type"]], record["key_size"], record["value_size"],
            record["max_entries"], record["map_flags"], name=record["name"].encode(),
            inner_map_fd=inner_fd, numa_node=record.get("numa_node", 0), btf_fd=btf_fd,
            btf_key_type_id=record.get("btf_key_type_id", 0),
            btf_value_type_id=record.get("btf_value_type_id", 0),
            map_extra=record["map_extra"])

    def open_btf(self, blob):
        """A new description of the BTF object loaded from ``blob`` (maps with the same
        BTF share it)."""
        return bpf.btf_get_fd_by_id(bpf.btf_info(self._btf(blob))[0])

    def _btf(self, blob):
        """One BTF object per distinct blob (the maps of one program share theirs)."""
        digest = hashlib.sha256(blob).digest()
        if digest not in self.btf:
            self.btf[digest] = bpf.btf_load(blob)
        return self.btf[digest]

    @staticmethod
    def _fill(fd, record, blob, inner):
        count, type_name = record.get("entries", 0), record["map_type"]
        if type_name in RINGS:
            _fill_ring(fd, record, blob)
            return
        if not count:
            return
        if type_name in QUEUES:
            size = record["value_size"]
            for i in range(count):
                bpf.map_update(fd, b"", blob[i * size:(i + 1) * size])
            return
        key_size = record["key_size"]
        keys, values = blob[:count * key_size], blob[count * key_size:]
        if type_name in OF_MAPS:
            values = b"".join(struct.pack("<I", f) for f in inner)
        value_size = len(values) // count
        if type_name not in OF_MAPS and _batch_works(type_name):
            for at in range(0, count, _BATCH):
                n = min(_BATCH, count - at)
                bpf.map_update_batch(fd, keys[at * key_size:(at + n) * key_size],
                                     values[at * value_size:(at + n) * value_size], n)
        else:
            for i in range(count):
                bpf.map_update(fd, keys[i * key_size:(i + 1) * key_size],
                               values[i * value_size:(i + 1) * value_size])

    def check_pins(self):
        """Before anything is created: each pin's directory is in a bpf file system."""
        bpffs = {m["dev"] for m in mountinfo() if m["fstype"] == "bpf"}
        for _, record in self.records.values():
            for path in record.get("pins", ()):
                directory = os.path.dirname(path)
                try:
                    st = os.stat(directory)
                except OSError as e:
                    raise RestoreError(f"BPF map pin {path}: {e.strerror}", "files") from None
                if f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}" not in bpffs:
                    raise RestoreError(f"BPF map pin {path}: {directory} is not in a bpf "
                                       f"file system", "files")

    def pin_all(self):
        """Put every pin on the new map: pinned beside, then renamed over the old pin."""
        for map_id, (_, record) in self.records.items():
            for path in record.get("pins", ()):
                temporary = f"{path}-cr_engine-{os.getpid()}"      # bpffs refuses dots
                bpf.obj_pin(self.fds[map_id], temporary)
                os.rename(temporary, path)

    def close(self):
        for fd in list(self.fds.values()) + list(self.btf.values()):
            os.close(fd)
        self.fds, self.btf = {}, {}
