"""epoll instances: their items (target file, the fd number it was added under, events, data)
and which edge-triggered items still sit on the ready list.

Dump: an epoll of many items (WALK_FROM) has each item's target file, the fd number it was
added under (which may have been closed, moved or reused since), mask and data read from the
kernel: its red-black tree of epitems walked with kernel/kread.py at the running kernel's BTF
offsets, the target known by its struct file address among the tree's descriptions
(collect.FdCollector's records).  Smaller epolls, and where the walk cannot be had (no BTF or
BPF iterator, a field missing, an fd read from /proc as with CR_ENGINE_COLLECT=proc, a
target without a known address: one in flight in a unix socket), use the epoll's fdinfo: it
lists each item's number, mask, data and the target's inode, and the target is found by
kcmp(KCMP_EPOLL_TFD), a binary search in the kcmp-ordered descriptions on that inode.  Both
give the same image.  A target open nowhere in the tree (held by a process
outside it) fails the dump.  The ready list is not in fdinfo: an
epoll_wait through a copy of the epoll fd shows which items are on it; that takes the
edge-triggered and one-shot ones off, so they are put back at once (deleted and added again:
an item added while its file is ready goes on the list), and the tree finds them as it left
them (the order of the list may change).

Restore: epolls are made before the tree is forked, like every file; items are added inside
out (an epoll watched by another gets its items first), each under its own fd number: a
forked helper puts each target at that number and calls epoll_ctl there, since a later
EPOLL_CTL_MOD/DEL by the process names the item by (file, number).  An edge-triggered item
that had been reported (off the list) while its file stayed ready is added first and taken
off the list by one epoll_wait before the others are added.

Limit: when several edge-triggered items share one data word and only some were on the
list, all of them come back on it (a spurious event rather than a lost one).
"""

import fcntl
import os

from kernel import btf, fdinfo, kread
from kernel.fds import (EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_PRIVATE_BITS, EPOLLET,
                        EPOLLONESHOT, epoll_create1, epoll_ctl, epoll_wait)
from kernel.process import kcmp_epoll_tfd

from . import fd_layout
from .errors import RestoreError, Unsupported

KIND = "eventpoll"
# a signalfd is polled on the sighand of the process that adds it to an epoll: such items
# are added by the restored process itself (stub.py), the others by the restorer
BY_OWNER = ("signalfd",)
ALL_EVENTS = 0x3FFF                     # EPOLLIN ... EPOLLRDHUP
# kcmp(KCMP_EPOLL_TFD) orders the candidate against the target: swapped, the order of the
# target against the candidate
_TARGET_ORDER = {0: 0, 1: 2, 2: 1, 3: 3}
DRAIN = "drain"
# an epoll of this many items or more is walked: below, its kcmp searches (each walks the
# items, ~n² in all) cost less than loading the kernel reader (~10 ms in the frozen window)
WALK_FROM = 1000


def describe(table, pid, r, flags):
    """The image of the epoll of FdRecord ``r``; its targets are found once every fd of the
    tree is seen."""
    dump = table.kinds.setdefault("epoll", EpollDump())
    with open(f"/proc/{pid}/fdinfo/{r.fd}") as f:
        text = f.read()
    items = None
    if r.description is not None and text.count("tfd:") >= WALK_FROM:
        walker = dump.walker()
        items = walker.items(r.description) if walker else None
    if items is None:
        items = _fdinfo_items(fdinfo.parse(text))
    desc = {"type": "epoll", "flags": flags, "items": items}
    dump.epolls.append((pid, r.fd, desc))
    return desc


def _fdinfo_items(info):
    """The items of an epoll as its fdinfo lists them (the tree's order), each with what
    the kcmp search needs: "toff", "dev", "inode"."""
    seen = {}
    items = []
    for entry in fdinfo.entries(info, "tfd"):
        tfd = int(entry["tfd"])
        sdev = int(entry["sdev"], 16)               # the kernel's dev_t: major << 20 | minor
        items.append({"tfd": tfd, "events": int(entry["events"], 16),
                      "data": int(entry["data"], 16), "toff": seen.get(tfd, 0),
                      "dev": os.makedev(sdev >> 20, sdev & 0xFFFFF),
                      "inode": int(entry["ino"], 16)})
        seen[tfd] = seen.get(tfd, 0) + 1            # the nth item under one number: its toff
    return items


class _TreeWalker:
    """Reads an epoll's items from kernel memory: struct eventpoll's red-black tree (rbr) of
    struct epitem, each with its target (ffd.file, ffd.fd) and event (events, data).  A
    KeyError (a field this kernel's BTF lacks) or kread.Unavailable when it cannot."""

    def __init__(self):
        types = btf.BTF.vmlinux()
        field = types.field
        self.private_data = field("file", "private_data").offset
        self.root = field("eventpoll", "rbr.rb_root.rb_node").offset
        self.rbn = field("epitem", "rbn").offset       # the tree's nodes point at rbn
        # an item's fields, and its node's children, from the start of the epitem
        self.fields = [field("epitem", path) for path in ("ffd.file", "ffd.fd",
                                                          "event.events", "event.data")]
        self.children = [field("epitem", f"rbn.{side}") for side in ("rb_left", "rb_right")]
        self.span = max(f.offset + f.size for f in self.fields + self.children)
        self.reader = kread.KernelReader(types)

    def items(self, file):
        """The items of the epoll whose struct file is at ``file``, in the tree's order
        (fdinfo's): [{"file": target's struct file, "tfd", "events", "data"}], or None when
        the memory could not be read."""
        ep = self._pointer(file + self.private_data)
        node = self._pointer(ep + self.root) if ep else None
        if node is None:
            return None
        found, level, seen = [], [node] if node else [], set()     # 0: an empty tree
        while level:                        # a level of the tree per pass of the reader
            blobs = self.reader.read([(n - self.rbn, self.span) for n in level])
            if None in blobs or seen.intersection(level):
                return None                 # unreadable, or not a tree (changed meanwhile)
            seen.update(level)
            found += [[f.value(b) for f in self.fields] for b in blobs]
            level = [child for b in blobs for child in (c.value(b) for c in self.children)
                     if child]
        # the tree is ordered by (file address, fd number), as fdinfo lists it
        found.sort(key=lambda item: (item[0], item[1]))
        return [{"file": target, "tfd": tfd, "events": events, "data": data}
                for target, tfd, events, data in found]

    def _pointer(self, addr):
        blob = self.reader.read_one(addr, 8)
        return int.from_bytes(blob, "little") if blob is not None else None

    def close(self):
        self.reader.close()


def _fired(item):
    """A one-shot item that fired: only the private bits are left of its mask."""
    return item["events"] & EPOLLONESHOT and not item["events"] & ~EPOLL_PRIVATE_BITS


def _edge(item):
    """An armed edge-triggered or one-shot item: the ones epoll_wait takes off the list."""
    return item["events"] & (EPOLLET | EPOLLONESHOT) and item["events"] & ~EPOLL_PRIVATE_BITS


class EpollDump:
    """The epolls of a dump, resolved when the file table is complete."""

    def __init__(self):
        self.epolls = []            # (pid, fd, description)
        self._walker = None         # the _TreeWalker, loaded on first use
        self.no_walker = None       # or why there is none
        self.holders = None         # description id -> a (pid, fd) holding it

    def walker(self):
        """The _TreeWalker of this dump, or None."""
        if self._walker is None and self.no_walker is None:
            try:
                self._walker = _TreeWalker()
            except (KeyError, OSError) as e:        # kread.Unavailable is an OSError
                self.no_walker = str(e)
        return self._walker

    def finish(self, table):
        for pid, fd, desc in self.epolls:
            targets = self._by_address(table, desc["items"])
            if targets is None:         # a target the walk cannot name: fdinfo and kcmp
                desc["items"] = _fdinfo_items(fdinfo.read(fd, pid))
                targets = [self._target(table, pid, fd, item) for item in desc["items"]]
            if any(_edge(item) for item in desc["items"]):
                self._ready_list(table, pid, fd, desc["items"], targets)
            for item, (_, _, file_id) in zip(desc["items"], targets):
                item["target"] = file_id
                for key in ("file", "toff", "dev", "inode"):
                    item.pop(key, None)

    def _by_address(self, table, items):
        """(pid, fd, id) of the target of each walked item, or None when one is not known
        by its address (or the items came from fdinfo)."""
        ids = [table.by_address.get(item.get("file")) for item in items]
        if None in ids:
            return None
        if self.holders is None:
            self.holders = {file_id: at for at, file_id in table.fd_files.items()}
        return [(*self.holders[file_id], file_id) for file_id in ids]

    @staticmethod
    def _target(table, pid, fd, item):
        def order_of(other_pid, other_fd):
            return _TARGET_ORDER[kcmp_epoll_tfd(other_pid, pid, other_fd, fd, item["tfd"],
                                                item["toff"])]
        # the usual case first: the file is still open in the epoll's process at the number
        # it was added under (each kcmp walks the epoll's items: a search costs ~log n)
        held = table.fd_files.get((pid, item["tfd"]))
        if held is not None and order_of(pid, item["tfd"]) == 0:
            return pid, item["tfd"], held
        found = table.find(item["dev"], item["inode"], order_of)
        if found is None:
            raise Unsupported(f"unsupported: epoll fd {fd} of pid {pid} watches a file "
                              f"(fd number {item['tfd']}, inode {item['inode']}) that no "
                              f"process of the tree holds")
        return found

    @staticmethod
    def _ready_list(table, pid, fd, items, targets):
        """Mark the edge-triggered items on the ready list ("ready") and put back those the
        look took off."""
        dup = table.dup(pid, fd)
        try:
            returned = {}
            for _, data in epoll_wait(dup, len(items)):
                returned[data] = returned.get(data, 0) + 1
            taken = []
            for item, (target_pid, target_fd, _) in zip(items, targets):
                if _edge(item) and returned.get(item["data"]):
                    item["ready"] = True
                    taken.append((item, table.dup(target_pid, target_fd)))
            try:
                run_at_numbers(dup, [(EPOLL_CTL_DEL, fd_, item) for item, fd_ in taken] +
                               [(EPOLL_CTL_ADD, fd_, item) for item, fd_ in taken])
            finally:
                for _, target in taken:
                    os.close(target)
        finally:
            os.close(dup)

    def close(self, final):
        self.epolls = []
        if self._walker is not None:
            self._walker.close()
            self._walker = None


def create(desc):
    """A new epoll, close-on-exec (the fd table sets its own flags); items come later."""
    fd = epoll_create1(os.O_CLOEXEC)
    fcntl.fcntl(fd, fcntl.F_SETFL, desc["flags"] & os.O_NONBLOCK)
    return fd


def restore_items(files, fds):
    """Add every epoll's items, inner epolls first (see the module's docstring)."""
    done = set()

    def restore(file_id):
        if file_id in done:
            return
        done.add(file_id)
        items = [i for i in files[file_id]["items"] if files[i["target"]]["type"] not in
                 BY_OWNER]
        for item in items:
            if files[item["target"]]["type"] == "epoll":
                restore(item["target"])
        # reported edge-triggered items whose file is ready, and fired one-shot items (an
        # add arms every item for EPOLLERR|EPOLLHUP at least: armed for every event, they
        # fire at once where their file is ready for any): added, then one epoll_wait
        quiet = [i for i in items if (_edge(i) and i["events"] & EPOLLET and
                                      not i.get("ready")) or _fired(i)]
        rest = [i for i in items if i not in quiet]
        ops = [(EPOLL_CTL_ADD, fds[i["target"]],
                dict(i, events=i["events"] | ALL_EVENTS) if _fired(i) else i) for i in quiet]
        if quiet:
            ops.append((DRAIN, len(quiet), None))
        ops += [(EPOLL_CTL_ADD, fds[i["target"]], i) for i in rest]
        try:
            run_at_numbers(fds[file_id], ops)
        except OSError as e:
            raise RestoreError(f"epoll {file_id}: {e}", "files") from None

    for file_id, desc in files.items():
        if desc["type"] == "epoll":
            restore(file_id)


def owned_items(files, cores, order):
    """pid -> [(epoll id, item)] of the items the restored process adds itself (BY_OWNER):
    in the first process holding the epoll."""
    def wanted(desc):
        return desc["type"] == "epoll" and any(files[i["target"]]["type"] in BY_OWNER
                                               for i in desc["items"])
    from .files import OpenFiles
    out = {}
    for file_id, (pid, _) in OpenFiles.first_fds(files, cores, order, wanted).items():
        out.setdefault(pid, []).extend(
            (file_id, i) for i in files[file_id]["items"]
            if files[i["target"]]["type"] in BY_OWNER)
    return out


def add_here(items, fd_of):
    """In a restored process, before its fd table is laid out: add ``items`` [(epoll id,
    item)] to their epolls, each target put at its item's number for the call and whatever
    was there put back (``fd_of``: description id -> fd here)."""
    for epoll_id, item in items:
        epfd, target, tfd = fd_of[epoll_id], fd_of[item["target"]], item["tfd"]
        high = max(epfd, target, tfd) + 1
        epfd = fcntl.fcntl(epfd, fcntl.F_DUPFD_CLOEXEC, high)
        try:
            inheritable = os.get_inheritable(tfd)
            saved = fcntl.fcntl(tfd, fcntl.F_DUPFD_CLOEXEC, high)
        except OSError:
            saved = None                        # nothing at that number
        try:
            if target != tfd:
                os.dup2(target, tfd, inheritable=False)
            epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, item["events"], item["data"])
        finally:
            if saved is None:
                os.close(tfd)
            else:
                os.dup2(saved, tfd, inheritable=inheritable)
                os.close(saved)
            os.close(epfd)


def run_at_numbers(epfd, ops):
    """Run epoll_ctl ``ops`` [(op, target fd, item)] on ``epfd`` in a forked child in which
    each target is first put at its item's fd number; (DRAIN, n, None) is an epoll_wait of
    up to n events.  OSError (with the child's message) when one fails."""
    if not ops:
        return
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                                        # the child: syscalls only, then _exit
        status = 0
        try:
            os.close(r)
            w = _ctl_at_numbers(epfd, ops, w)
        except OSError as e:
            os.write(w, f"{e.strerror} (errno {e.errno})".encode())
            status = 1
        except BaseException as e:                      # noqa: BLE001 - reported, then _exit
            os.write(w, repr(e).encode())
            status = 1
        os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status:
        raise OSError(f"epoll_ctl: {message or f'helper ended with status {status:#x}'}")


def _ctl_at_numbers(epfd, ops, report):
    """The child's work: each target placed at its item's number for the call, then that
    number closed again (an item outlives the number it was added under).  Returns where
    ``report`` ended up."""
    wanted = {fd for op, fd, _ in ops if op != DRAIN} | {epfd, report}
    layout = fd_layout.Layout(wanted, max(wanted | {item["tfd"] for _, _, item in ops
                                                    if item}) + 1)
    at = layout.at
    for op, fd, item in ops:
        if op == DRAIN:
            epoll_wait(at[epfd], fd)
            continue
        tfd = item["tfd"]
        placed = at[fd] != tfd
        if placed:
            layout.place(fd, tfd)
        epoll_ctl(at[epfd], op, tfd, item["events"] if op != EPOLL_CTL_DEL else 0,
                  item["data"])
        if placed:
            os.close(tfd)
    return at[report]
