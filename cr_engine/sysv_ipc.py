"""SysV IPC objects of a tree: shared memory segments (and the tree's attaches of them),
semaphore sets and message queues, restored with their ids.  Image: ipc.json, and one
sysv-shm-ID.img per segment with its stored pages.

Which objects belong to the tree.  The tree runs in the host's IPC namespace, whose objects
outlive processes and may be shared with processes outside the tree.  The kernel records no
owner, only traces of use, and an object is dumped when one of them names a live process of
the tree:
  - shm: a tree process maps it (a /SYSV mapping, whose inode is the shmid), created it
    (cpid) or was the last to attach or detach it (lpid);
  - sem: a tree process made the last operation on one of its semaphores (GETPID: semop,
    SETVAL, SETALL);
  - msg: a tree process was the last to send to it (lspid) or to receive from it (lrpid).
An object the tree only knows the id or key of, without such a trace, is not found: the id
is somewhere in the program's memory, which does not say.  A pid reused since the last
operation by a dead process can make an object of that process look like the tree's.

What is carried: id, key, owner and creator uid/gid, access mode and the content: the pages
of a segment (those in memory, mincore(2); all of it when some are in swap), SHM_LOCKED,
the destruction mark (IPC_RMID while attached), and every attach of a tree process (address,
length, offset, SHM_RDONLY, protections - nattch comes back); semaphore values; messages in
order with their types (read with MSG_COPY, left in place) and a queue's byte limit.  Not carried: times, and
the pids of the last operations; but what a restore writes into an object is written by a
tree process, its "maker" (shm: creator, else last attacher; sem: a last operator; msg: last
sender, else receiver), in its stub before it becomes the dumped process, so that the restored
tree owns the object again - and a segment created by its dumped creator keeps its cpid.
Semaphore undo adjustments (SEM_UNDO) are not carried: no interface reads another process's
semadj values.  kcmp(KCMP_SYSVSEM) only tells whether a process has an undo list, and every
multi-threaded process has one (pthread_create shares it, allocating it empty); having the
process unshare(CLONE_SYSVSEM) would apply them, and the kernel would complete the semops of
waiters, frozen tree processes included.  Killing the dumped tree applies them to the live sets;
the restore puts the dumped values back, so the processes see the values they saw, but hold
no adjustments: what they undo later, or at exit, is off by what they held at the dump.

Restore puts the objects back as the images have them, the state the processes' memory
agrees with:
  - the dumped id still exists as the same object (same boot and IPC namespace, key, creator
    uid/gid and size - a plain dump leaves it so): it is kept, and only what differs from the
    images is written back (after a plain dump: nothing);
  - the id is free: the object is created with it (<kind>_next_id of the namespace, under a
    lock file shared by all engines) by its maker, and filled;
  - the id, or a non-private key, is held by another object: the restore fails, naming it.
Segments marked for destruction are marked again once the tree has attached them.  A failed
restore removes the objects it created.
"""

import contextlib
import ctypes
import errno
import fcntl
import os
import threading

from kernel import ipc
from kernel import memory as kmem
from kernel.libc import syscall

from . import memory, namespaces
from .errors import ImageError, RestoreError, Unsupported

IMAGE = "ipc.json"
NAMES = {"shm": "shared memory segment", "sem": "semaphore set", "msg": "message queue"}
LOCK = "/run/cr_engine-sysv-ipc.lock" if os.path.isdir("/run") else "/tmp/cr_engine-sysv-ipc.lock"
CHUNK = 1 << 20                     # bytes of a segment copied at once
BOOT_ID = "/proc/sys/kernel/random/boot_id"


# dump ----------------------------------------------------------------------------------
def dump(tree, writer, attached):
    """Write ipc.json (and the segments' pages) for the objects the tree uses: of the
    host's IPC namespace, or all of the tree's own (read from inside it).  ``attached``:
    the shmids of the segments the tree's processes map (their VMAs, as collected)."""
    own = "ipc" in getattr(tree, "namespaces", {})
    if own:
        return namespaces.run_in(tree.root, "ipc", _dump, tree, writer, attached, True)
    return _dump(tree, writer, attached, False)


def _dump(tree, writer, attached, own):
    pids = {pid for pid, p in tree.processes.items() if not p.zombie}
    # in a namespace of its own, every object is the tree's
    shm = [row for row in ipc.table("shm").values() if own or
           row["id"] in attached or row["cpid"] in pids or row["lpid"] in pids]
    sem = [row for row in _with_operators(ipc.table("sem").values())
           if own or pids.intersection(row["pids"])]
    msg = [row for row in ipc.table("msg").values()
           if own or row["lspid"] in pids or row["lrpid"] in pids]
    writer.json(IMAGE, {
        "boot_id": _boot_id(), "ns": os.readlink("/proc/self/task/%d/ns/ipc" % _gettid()),
        "own_ns": own,
        "shm": [_dump_shm(row, writer) for row in shm],
        "sem": [_dump_sem(row) for row in sem],
        "msg": [_dump_msg(row) for row in msg]})


def _gettid():
    return threading.get_native_id()


def _with_operators(rows):
    """Semaphore set rows with the last operator of each semaphore; sets removed meanwhile
    (by processes outside the tree) left out."""
    for row in rows:
        try:
            yield dict(row, pids=ipc.sem_pids(row["id"], row["nsems"]))
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EIDRM):
                raise


def _common(row):
    return {"id": row["id"], "key": row["key"], "mode": row["perms"] & 0o777,
            **{k: row[k] for k in ("uid", "gid", "cuid", "cgid")}}


def _dump_shm(row, writer):
    entry = dict(_common(row), size=row["size"], cpid=row["cpid"], lpid=row["lpid"],
                 nattch=row["nattch"], dest=bool(row["perms"] & ipc.SHM_DEST),
                 locked=bool(row["perms"] & ipc.SHM_LOCKED))
    name = f"sysv-shm-{row['id']}.img"
    out = writer.raw(name)
    try:
        addr = ipc.shmat(row["id"], ipc.SHM_RDONLY)
        try:
            # pages in swap are not in memory: then read it all (faulting in its holes)
            ranges = [[0, row["size"]]] if row.get("swap", 1) else _resident(addr, row["size"])
            for offset, length in ranges:
                for at in range(offset, offset + length, CHUNK):
                    out.write(ctypes.string_at(addr + at, min(CHUNK, offset + length - at)))
        finally:
            ipc.shmdt(addr)
    finally:
        writer.close_raw(name, out)
    entry["pages"] = {"image": name, "ranges": ranges}
    return entry


def _resident(addr, size):
    """[[offset, length]] of the segment attached at ``addr`` that are in memory."""
    ranges = []
    for page, state in enumerate(kmem.mincore(addr, size)):
        offset = page * kmem.PAGE_SIZE
        if not state & 1:
            continue
        length = min(kmem.PAGE_SIZE, size - offset)
        if ranges and sum(ranges[-1]) == offset:
            ranges[-1][1] += length
        else:
            ranges.append([offset, length])
    return ranges


def _dump_sem(row):
    return dict(_common(row), values=ipc.sem_values(row["id"], row["nsems"]), pids=row["pids"])


def _dump_msg(row):
    st = ipc.stat("msg", row["id"])
    try:
        messages = [ipc.msg_copy(row["id"], i, st.cbytes) for i in range(st.qnum)]
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
        raise Unsupported(f"unsupported: message queue {row['id']}: reading it needs MSG_COPY "
                          f"(a kernel with CONFIG_CHECKPOINT_RESTORE)") from None
    return dict(_common(row), qbytes=st.qbytes, lspid=row["lspid"], lrpid=row["lrpid"],
                messages=[[mtype, text.hex()] for mtype, text in messages])


def _boot_id():
    with open(BOOT_ID) as f:
        return f.read().strip()


# restore -------------------------------------------------------------------------------
class Objects:
    """The objects of an image directory, put back around the restore's stages: prepare()
    (check, make the restorer's share), make(pid) in each stub, attach() in each process,
    finish() before resume, undo() after a failure."""

    def __init__(self, reader, mms, root):
        """``mms``: pid -> mm image of every live process of the tree; ``root``: its root,
        the maker of objects no other process made, when the tree has its own namespace
        (a new one at restore, where the restorer cannot reach)."""
        self.reader, self.root = reader, root
        self.userns = None              # the tree's user namespace image: ids set as it sees them
        image = reader.json(IMAGE) if reader.has(IMAGE) else {}
        self.own = image.get("own_ns", False)
        self.same_namespace = (image.get("boot_id"), image.get("ns")) == (
            _boot_id(), os.readlink("/proc/self/ns/ipc"))
        self.objects = [(kind, entry) for kind in ipc.KINDS for entry in image.get(kind, ())]
        self.makers = {(kind, e["id"]): _maker(kind, e, mms) for kind, e in self.objects}
        if self.own:
            self.makers = {key: maker or root for key, maker in self.makers.items()}
        self.sizes = {e["id"]: e["size"] for kind, e in self.objects if kind == "shm"}
        self.creating = set()           # (kind, id) of the objects to create
        for pid, mm in mms.items():
            for v in mm["vmas"]:
                if v["kind"] == "sysv" and v["shmid"] not in self.sizes:
                    raise ImageError(f"SysV shared memory {v['shmid']} mapped at "
                                     f"{v['start']:#x} by pid {pid} is not in {IMAGE}")

    def prepare(self):
        """Check every dumped id against the namespace; make the objects no tree process
        makes.  RestoreError when an id or key is held by another object."""
        if not self.objects:
            return
        self.reader.verify([e["pages"]["image"] for kind, e in self.objects if kind == "shm"])
        if self.own:                    # a new namespace: every id is free
            self.creating = {(kind, e["id"]) for kind, e in self.objects}
            return
        tables = {kind: ipc.table(kind) for kind in ipc.KINDS}
        for kind, entry in self.objects:
            live = tables[kind].get(entry["id"])
            if live is None:
                _check_key(kind, entry, tables[kind])
                self.creating.add((kind, entry["id"]))
            elif not self.same_namespace or not _same(kind, entry, live):
                raise RestoreError(self._taken(kind, entry, live))
        self.make(None)

    def _taken(self, kind, entry, live):
        elsewhere = "" if self.same_namespace else \
            "; the images are of another boot or IPC namespace"
        return (f"SysV {NAMES[kind]} id {entry['id']} is taken by another object "
                f"({_describe(kind, live)}; dumped: {_describe(kind, entry)}{elsewhere})")

    def make(self, pid):
        """Create and fill the objects whose maker is ``pid`` (None: the restorer)."""
        for kind, entry in self.objects:
            if self.makers[(kind, entry["id"])] != pid:
                continue
            if self.userns:             # the dumped ids are ours
                entry = dict(entry, **{
                    key: namespaces.inside(self.userns[which], entry[key])
                    for key, which in (("uid", "uid_map"), ("cuid", "uid_map"),
                                       ("gid", "gid_map"), ("cgid", "gid_map"))})
            created = (kind, entry["id"]) in self.creating
            if created:
                _create(kind, entry, shared=not self.own)
            getattr(self, f"_fill_{kind}")(entry, created)
            _set_perm(kind, entry)

    def attach(self, rem, pid, vmas):
        """Attach the segments at the dumped /SYSV mappings of ``pid`` (a stub whose memory
        is being restored, ``rem`` its Remote): each is attached where the kernel likes,
        the dumped part moved into place, the rest dropped.  Placeholders keep the kernel's
        choice off the places still to fill."""
        mine = [v for v in vmas if v["kind"] == "sysv"]
        for v in mine:
            _remote(rem, pid, v, "mmap", v["start"], v["end"] - v["start"], kmem.PROT_NONE,
                    kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS | kmem.MAP_FIXED, -1, 0)
        for v in mine:
            size = _pages(self.sizes[v["shmid"]])
            flags = (0 if "mw" in v["flags"] else ipc.SHM_RDONLY) | \
                (ipc.SHM_EXEC if v["perms"][2] == "x" else 0)
            length = v["end"] - v["start"]
            at = _remote(rem, pid, v, "shmat", v["shmid"], 0, flags)
            _remote(rem, pid, v, "mremap", at + v["pgoff"], length, length,
                    kmem.MREMAP_MAYMOVE | kmem.MREMAP_FIXED, v["start"])
            _remote(rem, pid, v, "munmap", at, size)
            _remote(rem, pid, v, "mprotect", v["start"], length, memory.prot_of(v["perms"]))

    def finish(self, root):
        """Mark again the segments that were marked for destruction (now attached);
        ``root``: the restored root, as we number it."""
        if self.own:
            namespaces.run_in(root, "ipc", self._mark)
        else:
            self._mark()

    def _mark(self):
        for kind, entry in self.objects:
            if kind == "shm" and entry["dest"] and \
                    not ipc.stat("shm", entry["id"]).perm.mode & ipc.SHM_DEST:
                ipc.remove("shm", entry["id"])

    def undo(self):
        """Remove what this restore created (the failed restore's tasks are gone; a
        namespace of the tree's own went with them)."""
        if self.own:
            return
        for kind, entry in self.objects:
            if (kind, entry["id"]) not in self.creating:
                continue
            try:
                live = ipc.table(kind).get(entry["id"])
                if live is not None and _same(kind, entry, live):
                    ipc.remove(kind, entry["id"])
            except OSError:
                pass

    # content ---------------------------------------------------------------------------
    def _fill_shm(self, entry, created):
        """Write the stored pages (of a kept segment: where they differ, and zero the pages
        in memory that were not stored); lock or unlock it."""
        size = entry["size"]
        addr = ipc.shmat(entry["id"])
        try:
            with open(self.reader.path(entry["pages"]["image"]), "rb") as src:
                for offset, length in entry["pages"]["ranges"]:
                    for at in range(offset, offset + length, CHUNK):
                        data = src.read(min(CHUNK, offset + length - at))
                        if created or ctypes.string_at(addr + at, len(data)) != data:
                            ctypes.memmove(addr + at, data, len(data))
            if not created:
                _zero_unstored(addr, size, entry["pages"]["ranges"])
        finally:
            ipc.shmdt(addr)
        if bool(ipc.stat("shm", entry["id"]).perm.mode & ipc.SHM_LOCKED) != entry["locked"]:
            ipc.ctl("shm", entry["id"], ipc.SHM_LOCK if entry["locked"] else ipc.SHM_UNLOCK)

    def _fill_sem(self, entry, created):
        values = entry["values"]
        if created or ipc.sem_values(entry["id"], len(values)) != values:
            ipc.sem_set_values(entry["id"], values)     # also makes us the last operator

    def _fill_msg(self, entry, created):
        ident = entry["id"]
        want = [(mtype, bytes.fromhex(text)) for mtype, text in entry["messages"]]
        st = ipc.stat("msg", ident)
        if st.qbytes != entry["qbytes"]:          # first: a raised limit makes room
            ipc.set_perm("msg", ident, st.perm.uid, st.perm.gid, st.perm.mode, entry["qbytes"])
        if not created:
            if [ipc.msg_copy(ident, i, st.cbytes) for i in range(st.qnum)] == want:
                return
            for _ in range(st.qnum):
                ipc.msg_receive(ident, st.cbytes)
        for mtype, text in want:
            ipc.msg_send(ident, mtype, text)
        if created and not want:        # an empty new queue: leave the maker's trace in it
            ipc.msg_send(ident, 1, b"")
            ipc.msg_receive(ident, 0)


def _maker(kind, entry, alive):
    """The tree process that makes the object at restore, or None (the restorer)."""
    traces = {"shm": ("cpid", "lpid"), "msg": ("lspid", "lrpid")}
    pids = entry["pids"] if kind == "sem" else [entry[k] for k in traces[kind]]
    return next((pid for pid in pids if pid in alive), None)


def _same(kind, entry, live):
    """Whether a live object (a /proc/sysvipc row) is the dumped one (same boot assumed)."""
    if kind == "shm" and live["perms"] & ipc.SHM_DEST and not entry["dest"]:
        return False                    # removed since the dump, still attached elsewhere
    size = {"shm": "size", "sem": "nsems"}.get(kind)
    return all(live[k] == entry[k] for k in ("key", "cuid", "cgid")) and \
        (size is None or live[size] == _size(kind, entry))


def _size(kind, entry):
    """Bytes of a segment, semaphores of a set (a queue has no size)."""
    if kind == "shm":
        return entry["size"]
    return len(entry["values"]) if kind == "sem" else 0


def _check_key(kind, entry, table):
    if entry["key"] == ipc.IPC_PRIVATE:
        return
    for live in table.values():
        if live["key"] == entry["key"]:
            raise RestoreError(f"SysV {NAMES[kind]} key {entry['key'] & 0xFFFFFFFF:#010x} "
                               f"(dumped id {entry['id']}) is taken by id {live['id']} "
                               f"({_describe(kind, live)})")


def _describe(kind, obj):
    what = f"key {obj['key'] & 0xFFFFFFFF:#010x}, creator {obj['cuid']}:{obj['cgid']}"
    if kind == "shm":
        removed = obj["dest"] if "dest" in obj else obj["perms"] & ipc.SHM_DEST
        return f"{what}, {obj['size']} bytes{', removed' if removed else ''}"
    if kind == "sem":
        return f"{what}, {obj.get('nsems', len(obj.get('values', ())))} semaphores"
    return what


def _create(kind, entry, shared):
    """Create the object with its dumped id, as its creator uid/gid; ``shared``: in a
    namespace others create in too (ours; a tree's own, made for it, is not, and its files
    may not hold our lock's)."""
    ident, what = entry["id"], f"SysV {NAMES[kind]} id {entry['id']}"
    try:
        with id_lock() if shared else contextlib.nullcontext():
            ipc.set_next_id(kind, ident)
            try:
                with _creator(entry["cuid"], entry["cgid"]):
                    got = _get(kind, entry["key"], _size(kind, entry),
                               ipc.IPC_CREAT | ipc.IPC_EXCL | entry["mode"])
            finally:
                _spend_next_id(kind)
    except OSError as e:
        raise RestoreError(f"cannot create {what}: {e.strerror or e}") from None
    if got != ident:                    # another process's creation came between
        ipc.remove(kind, got)
        raise RestoreError(f"cannot create {what}: it got id {got} (the id was taken "
                           f"meanwhile)")


def _get(kind, key, size, flags):
    if kind == "shm":
        return ipc.shmget(key, size, flags)
    if kind == "sem":
        return ipc.semget(key, size, flags)
    return ipc.msgget(key, flags)


def _spend_next_id(kind):
    """A creation that failed before taking the id leaves next_id set, and the sysctl takes
    no -1: a throwaway object takes it (best effort: the failure may hit it too)."""
    if ipc.next_id(kind) < 0:
        return
    try:
        ipc.remove(kind, _get(kind, ipc.IPC_PRIVATE, 1, ipc.IPC_CREAT | 0o600))
    except OSError:
        pass


@contextlib.contextmanager
def id_lock():
    """Held while setting next_id and creating: serializes the engines (and tools) that
    choose ids, the sysctl being global to the namespace; processes creating objects the
    usual way are not held off."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _creator(uid, gid):
    """Run as effective ``uid``/``gid``: the creator ids of a new object are its creator's.
    Raw system calls change the calling thread only (glibc's would change every thread)."""
    euid, egid = os.geteuid(), os.getegid()
    if (uid, gid) == (euid, egid):
        yield
        return
    syscall("setresgid", -1, gid, -1)
    syscall("setresuid", -1, uid, -1)
    try:
        yield
    finally:
        syscall("setresuid", -1, euid, -1)
        syscall("setresgid", -1, egid, -1)


def _set_perm(kind, entry):
    perm = ipc.stat(kind, entry["id"]).perm
    if (perm.uid, perm.gid, perm.mode & 0o777) != (entry["uid"], entry["gid"], entry["mode"]):
        ipc.set_perm(kind, entry["id"], entry["uid"], entry["gid"], entry["mode"])


def _zero_unstored(addr, size, ranges):
    """Zero the pages in memory that the dump did not store (it stored every page there)."""
    stored = {offset // kmem.PAGE_SIZE + i for offset, length in ranges
              for i in range(_pages(length) // kmem.PAGE_SIZE)}
    for page, state in enumerate(kmem.mincore(addr, size)):
        offset = page * kmem.PAGE_SIZE
        length = min(kmem.PAGE_SIZE, size - offset)
        if state & 1 and page not in stored and ctypes.string_at(addr + offset, length).strip(
                b"\0"):
            ctypes.memset(addr + offset, 0, length)


def _pages(size):
    return (size + kmem.PAGE_SIZE - 1) & ~(kmem.PAGE_SIZE - 1)


def _remote(rem, pid, vma, name, *args):
    got = rem.call(name, *args, check=False)
    if -4095 <= got < 0:
        raise RestoreError(f"{name} for the SysV shared memory {vma['shmid']} attach at "
                           f"{vma['start']:#x} in pid {pid} failed ({os.strerror(-got)})",
                           "memory")
    return got


# show ----------------------------------------------------------------------------------
def describe(image):
    """Lines for `show`: one per object."""
    if not image or not any(image.get(kind) for kind in ipc.KINDS):
        return []
    lines = ["", "SysV IPC:"]
    for kind in ipc.KINDS:
        for e in image.get(kind, ()):
            head = (f"  {kind} {e['id']:<10} key {e['key'] & 0xFFFFFFFF:#010x} mode "
                    f"{e['mode']:03o} owner {e['uid']}:{e['gid']} creator {e['cuid']}:{e['cgid']}")
            if kind == "shm":
                stored = sum(length for _, length in e["pages"]["ranges"])
                lines.append(f"{head}  {e['size']} bytes, {stored} stored, attaches "
                             f"{e['nattch']}{', locked' if e['locked'] else ''}"
                             f"{', removed (IPC_RMID)' if e['dest'] else ''}")
            elif kind == "sem":
                lines.append(f"{head}  values {' '.join(map(str, e['values']))}")
            else:
                size = sum(len(text) // 2 for _, text in e["messages"])
                lines.append(f"{head}  {len(e['messages'])} messages, {size} bytes, limit "
                             f"{e['qbytes']}")
    return lines
