"""Restore: recreate a dumped tree with its pids and tids, memory, threads, signals, timers
and files, then let it run.

Stages: verify (every image file against the inventory), prepare (open the file
descriptions, fill shared memory), fork (stubs with the dumped pids), seize, memory, state,
resume.  Until resume nothing of the tree runs; a failure at any stage kills every task
created so far (they are also PTRACE_O_EXITKILL-bound to the restorer) and leaves the images
as they were.
"""

import ctypes
import functools
import json
import resource
import os
import select
import signal
import struct
import threading
import time

from kernel import fds as kfds
from kernel import memory as kmem
from kernel import ptrace
from kernel.namespaces import CLONE_NEWPID, CLONE_NEWUSER, setns
from kernel.procfs import status as proc_status
from kernel.process import CLONE_PARENT, PR_SET_CHILD_SUBREAPER, CloneArgs, PrctlMmMap, fork3

from . import (context, creds, epoll, faults, files, io_uring_restore, locks, memory,
               mnt_build, mnt_model, namespaces, pidns, proc, pstree, ptys, release, seccomp,
               signals, stub, sysv_ipc, timers, tracking)
from .errors import CRError, ImageError, RestoreError
from .images import FD_DATA, ImageReader
from .regs import (SYSCALL_INSN, UserRegs, get_regs, interrupted_syscall, restart_in_new_task,
                   set_regs, set_xstate)
from .remote import (Remote, Scratch, TraceeGone, read_memory,
                     set_sigmask, wait_stop, write_memory)
from .stats import Stats
from .syscall_batch import CODE as BATCH_CODE
from .syscall_batch import Call, SyscallBatch

REGION = 256 << 10                   # gadget page + scratch, placed where nothing else is
TASK_SIZE = 0x7FFFFFFFF000
MMAP_MIN = 0x10000
GADGET = SYSCALL_INSN + b"\xcc"      # syscall; int3
BATCH_AT = 16                        # syscall_batch's loop, after the gadget on its page
ALL_SIGNALS = (1 << 64) - 1
NOT_IN_SYSCALL = (1 << 64) - 1          # orig_rax of a task stopped outside any system call
READY_TIMEOUT = 30.0
LOADERS = 4                          # threads loading pages at once, at most
PARALLEL_MIN = 32 << 20              # smaller images load on the main thread alone
# processes x the restorer's resident bytes from which the root stub is relaunched: a fork
# and a teardown cost some 0.1 ms per resident MiB, a relaunch some 40 ms
RELAUNCH_AT = 400 << 20
WALL = 0x40000000
ZOMBIE_WAIT = 10.0
CLONE_THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000
PR_SET_NAME = 15
RESTORE_OPTIONS = ptrace.O_TRACESYSGOOD | ptrace.O_TRACECLONE | ptrace.O_EXITKILL


class RestoreResult:
    def __init__(self, root_pid, pids, stats):
        self.root_pid, self.pids, self.stats = root_pid, pids, stats


class _Image:
    """Everything read (and checked) from an image directory before anything is created."""

    def __init__(self, directory, shell_job):
        self.reader = r = ImageReader(directory)
        # metadata is checked as it is read; the raw files (pages, ...) on a thread while
        # the tree is built, and the restore waits for that check before anything resumes
        # (sizes of all at once, so a truncated file fails before anything is made)
        raw = [name for name in r.inventory["files"] if not name.endswith(".json")]
        r.check_sizes()
        self.verified = r.verify_in_background(raw)
        self.pstree = r.json("pstree.json")
        try:
            self.procs = {p["pid"]: p for p in self.pstree["processes"]}
            self.steps = pstree.plan(self.pstree)
            self.order = pstree.order(self.pstree)
            listing = r.json("files.json")
            self.files, self.data = listing["files"], listing["data"]
            alive = [pid for pid in self.order if not self.procs[pid]["zombie"]]
            self.cores = {pid: r.json(f"core-{pid}.json") for pid in alive}
            self.mms = {pid: r.json(f"mm-{pid}.json") for pid in alive}
            self.ipc = sysv_ipc.Objects(r, self.mms, self.pstree["root"])
            self.mnt = r.json(mnt_model.MNT_IMAGE) if r.has(mnt_model.MNT_IMAGE) else None
            self._check_parents()
        except (KeyError, TypeError, ValueError) as e:
            raise ImageError(f"{r.dir}: damaged metadata ({type(e).__name__}: {e})") from None
        except CRError as e:
            raise ImageError(f"{r.dir}: {e}") from None
        if self.pstree.get("external") and not shell_job:
            raise RestoreError("the images are of a shell job: restore with --shell-job",
                               "verify")

    def _check_parents(self):
        """Every image an inherited page comes from is whole (sizes and CRCs), before
        anything is created."""
        wanted = {}
        for pid, mm in self.mms.items():
            for _, _, directory, _ in mm.get("inherited", ()):
                wanted.setdefault(directory, set()).add(f"pages-{pid}.img")
        for directory, names in wanted.items():
            ImageReader(os.path.join(self.reader.dir, directory)).verify(names)

    def payload(self, file_id):
        """The bytes a description held at dump (queued data, file content)."""
        if file_id not in self.data:
            return b""
        offset, size = self.data[file_id]
        with open(self.reader.path(FD_DATA), "rb") as f:
            f.seek(offset)
            return f.read(size)


class _Restorer:
    def __init__(self, image, stats, external):
        self.image = image
        self.external = external
        self.stats = stats
        self.opened = files.OpenFiles()
        self.own_fds = []
        self.joined = {}            # namespace kind -> fd of one made for the tree
        self.userns = None          # the image of the tree's user namespace, if it has one
        self.live = {}              # dumped pid or tid -> the one it has now, if not the same
        self.mounts = None          # mnt_build.Mounts: the tree's mount namespaces
        self.service = {}           # pid -> {name: fd in the restorer}
        self.foregrounds = []       # ptys.foreground(): who sets a terminal's foreground
        self.created = []           # pids forked so far (for cleanup)
        self.tracees = {}           # tid -> True while we hold it
        self.low = None             # space below vm.mmap_min_addr the stubs inherit (io_uring)
        self.root = image.pstree["root"]
        self.fault = None
        self.own_creds = creds.own()
        # file id -> (pid, fd) whose process takes the description's flock / OFD locks
        self.lock_fds = files.OpenFiles.first_fds(image.files, image.cores, image.order,
                                                  lambda d: d.get("locks"))

    # prepare -------------------------------------------------------------------------------
    def prepare(self):
        img = self.image
        for pid in img.order:
            for tid in img.procs[pid]["threads"]:
                _wait_pid_free(tid)
        self._check_vdso()
        self.image.ipc.prepare()
        # the tree's namespaces: made now, with what is in them (the network namespace's
        # sockets), joined by the stubs
        ns_image = img.cores[self.root].get("namespaces", {}) if self.root in img.cores else {}
        self.joined = namespaces.make(ns_image)
        self.own_fds += self.joined.values()
        self.userns = img.ipc.userns = ns_image.get("user")
        if img.mnt:
            with self.stats.stage("mounts"):
                self.mounts = self.opened.mounts = mnt_build.Mounts(
                    img.mnt, img.reader, self.joined, self.userns, self.external)
        if "net" in ns_image:
            namespaces.set_up_net(ns_image["net"], self.joined["net"])
        self.opened.open_all(img.files, img.payload, netns=self.joined.get("net"))
        self.rings = io_uring_restore.RingRestore(img.files, img.payload, self.opened,
                                                  self.own_creds)
        shmem_fds = self._shmem_objects()
        map_fds = {}
        for pid, mm in img.mms.items():
            svc = self.service[pid] = {}
            # read by the stub (and its loader threads) straight into place
            svc["pages"] = self._own(os.open(img.reader.path(f"pages-{pid}.img"),
                                             os.O_RDONLY | os.O_CLOEXEC))
            if img.cores[pid].get("cwd_at"):
                svc["cwd"] = self._own(self.mounts.open(img.cores[pid]["cwd_at"],
                                                        os.O_PATH | os.O_DIRECTORY))
            svc["exe"] = self._open_checked(dict(mm.get("exe_at") or {}, path=mm["exe"]),
                                            os.O_RDONLY, mm["exe_id"]["inode"])
            for vma in mm["vmas"]:
                if vma["kind"] == "file":
                    key = _map_key(vma)
                    if key not in map_fds:
                        mode = os.O_RDWR if _writable_shared(vma) else os.O_RDONLY
                        map_fds[key] = self._open_checked(vma, mode, vma["inode"])
                    svc[key] = map_fds[key]
                elif vma["kind"] == "shmem":
                    svc[f"shmem:{vma['shmem']}"] = shmem_fds[str(vma["shmem"])]
                elif vma["kind"] in ("carried", "bpf-map"):
                    svc[f"carried:{vma['file']}"] = self.opened.fds[vma["file"]]
        self._ctty()

    def _ctty(self):
        """Controlling terminals (ptys): each session leader's stub takes its own after
        setsid(); the process of the session restored last sets the foreground group
        through a service fd of the pty."""
        img = self.image
        for leader, slave in ptys.ctty_of(img.files).items():
            if leader not in img.cores or not img.steps[leader]["setsid"]:
                raise RestoreError(f"pid {leader} leads the session of a pty but is not "
                                   f"restored as a session leader", "prepare")
            img.cores[leader]["ctty_file"] = slave
        self.foregrounds = ptys.foreground(img.files, img.procs, img.order)
        for pid, slave, _ in self.foregrounds:
            self.service[pid]["ctty"] = self.opened.fds[slave]

    def _own(self, fd):
        self.own_fds.append(fd)
        return fd

    def _open_checked(self, desc, mode, inode):
        """An fd of the file ``desc`` names (path, or mount and path there), checked to be
        the dumped inode where the file system is the dumper's."""
        path = desc["path"]
        try:
            fd = self.opened.open_path(desc, mode)
        except OSError as e:
            raise RestoreError(f"cannot open {path}: {e.strerror}", "prepare") from None
        self._own(fd)
        if self.opened.same_inodes(desc) and os.fstat(fd).st_ino != inode:
            raise RestoreError(f"{path} is not the file that was dumped", "prepare")
        return fd

    def _check_vdso(self):
        here = [(v.name, v.length) for v in proc.maps("self") if v.name in memory.VDSO_NAMES]
        for pid, mm in self.image.mms.items():
            there = [(v["name"], v["end"] - v["start"]) for v in mm["vmas"]
                     if v["kind"] == "vdso"]
            if there and sorted(there) != sorted(here):
                raise RestoreError(f"the vdso of pid {pid} {there} differs from this kernel's "
                                   f"{here}: images from another kernel", "prepare")

    def _shmem_objects(self):
        """Shared anonymous memory: a shmem file per dumped object, filled here."""
        out = {}
        for mm in self.image.mms.values():
            for inode, obj in mm.get("shmem", {}).items():
                size = max(obj["size"], kmem.PAGE_SIZE)
                addr = kmem.mmap(size, flags=kmem.MAP_SHARED | kmem.MAP_ANONYMOUS)
                try:
                    fd = self._own(os.open(f"/proc/self/map_files/{addr:x}-{addr + size:x}",
                                           os.O_RDWR | os.O_CLOEXEC))
                finally:
                    kmem.munmap(addr, size)
                with open(self.image.reader.path(obj["image"]), "rb") as src:
                    for offset, length in obj["ranges"]:
                        data = src.read(length)
                        os.pwrite(fd, data, offset)
                out[inode] = fd
        for mm in self.image.mms.values():
            for vma in mm["vmas"]:
                if vma["kind"] == "shmem" and str(vma["shmem"]) not in out:
                    raise ImageError(f"shared memory {vma['shmem']} has no image")
        return out

    # fork ----------------------------------------------------------------------------------
    def fork_tree(self):
        img = self.image
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        self.own_fds += [ready_r, ready_w, go_r, go_w]
        async_fds = files.OpenFiles.first_fds(img.files, img.cores, img.order,
                                              lambda d: d["flags"] & os.O_ASYNC)
        transit = {pid: os.pipe2(os.O_CLOEXEC) for pid, steps in img.steps.items()
                   if steps.get("rejoin")}
        self.own_fds += [fd for pair in transit.values() for fd in pair]
        ipc = img.ipc if img.ipc.objects else None     # a relaunched root imports less
        ctx = stub.StubContext(img.procs, img.steps, img.cores, self.opened.fds, async_fds,
                               self.service, ready_w, go_r, ipc, self.joined,
                               self.mounts.stub_view(img.cores) if self.mounts else None,
                               epoll.owned_items(img.files, img.cores, img.order),
                               transit)
        # a pid namespace tree: the root is the init of a new one
        new_pid = CLONE_NEWPID if img.pstree.get("pidns") else 0
        user = "user" in self.joined
        root_tids = pstree.set_tid(img.procs[self.root], own_only=user)
        self.low = self.rings.reserve_low()
        context_fd = None
        if self._relaunch(len(img.order), user):
            context_fd = self._own(stub.context_file(ctx))
        if _single_threaded() and not user:
            pid, _ = fork3(flags=new_pid, set_tid=root_tids)
            if pid == 0:
                stub.start(ctx, self.root, context_fd)
        else:
            # fork from a multi-threaded process only through a normal os.fork(), and into
            # the tree's user namespace (which then owns its pid namespace) only from a
            # process that joined it: a single-threaded helper forks the root as our child
            helper = os.fork()
            if helper == 0:
                try:
                    if user:
                        setns(self.joined["user"], CLONE_NEWUSER)
                    pid, _ = fork3(flags=CLONE_PARENT | new_pid, exit_signal=0,
                                   set_tid=root_tids)
                    if pid == 0:
                        stub.start(ctx, self.root, context_fd)
                    if user:        # its pid in ours is new
                        os.write(ready_w, (json.dumps({"pid": self.root, "now": pid}) +
                                           "\n").encode())
                    os._exit(0)
                except BaseException as e:      # noqa: BLE001
                    os.write(ready_w, (json.dumps({"pid": self.root, "error": str(e)}) +
                                       "\n").encode())
                    os._exit(1)
            os.waitpid(helper, 0)
        if self.low:
            kmem.munmap(self.low[0], self.low[1] - self.low[0])
        self.created = list(img.order) if not user else []
        os.close(ready_w)
        self.own_fds.remove(ready_w)
        alive = [pid for pid in img.order if not img.procs[pid]["zombie"]]
        self.stub_service = self._wait_ready(ready_r, alive)
        if user:
            self._find_live()

    def _relaunch(self, processes, user):
        """Whether the root stub starts over as a fresh interpreter (stub.relaunch): when
        forking and tearing down ``processes`` copies of the restorer's resident memory
        costs more than the new interpreter's start (CR_ENGINE_STUBS=fork|relaunch forces
        a way).  Not into a user namespace of the tree's nor with the low reservation
        (mappings do not survive an exec), nor where an exec would change the credentials
        the stubs start with (they are the restorer's)."""
        forced = os.environ.get("CR_ENGINE_STUBS")
        if forced not in (None, "", "fork", "relaunch"):
            raise RestoreError(f"CR_ENGINE_STUBS={forced}: fork or relaunch", "fork")
        wanted = forced == "relaunch" or (
            not forced and processes * _resident_bytes() >= RELAUNCH_AT)
        way = "relaunch" if wanted and not user and not self.low and \
            _exec_keeps_creds(self.own_creds) else "fork"
        self.stats.ways["stubs"] = way
        return way == "relaunch"

    def _find_live(self):
        """Where the tree got new pids in ours: which is which, by the pids of its own pid
        namespace (the root's we were told), read from the tree itself (the nsfs
        translation, 6.10, only knows a namespace's own processes, not deeper ones)."""
        img, root = self.image, self.live[self.root]
        level = len(pstree.levels(img.procs[self.root])["pid"]) - 1     # the root's
        ours, todo = {}, [root]
        while todo:
            pid = todo.pop()
            ours[int(proc_status(pid)["NSpid"].split()[level])] = pid
            todo += proc.children(pid)
        for pid in img.order:
            number = pstree.levels(img.procs[pid])["pid"][level]
            if number not in ours:
                raise RestoreError(f"no process {number} in the pid namespace of pid {root}",
                                   "fork")
            self.live[pid] = ours[number]
        self.created = [self.live[pid] for pid in img.order]

    def _wait_ready(self, ready_r, alive):
        pending, got, buf = set(alive), {}, b""
        deadline = time.monotonic() + READY_TIMEOUT
        poller = select.poll()              # not select(): fd numbers may pass FD_SETSIZE
        poller.register(ready_r, select.POLLIN)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                raise RestoreError(f"stubs {sorted(pending)} did not get ready", "fork")
            chunk = os.read(ready_r, 65536)
            if not chunk:
                raise RestoreError(f"stubs {sorted(pending)} died before getting ready",
                                   "fork")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if "error" in msg:
                    raise RestoreError(f"pid {msg['pid']}: {msg['error']}", "fork")
                if "now" in msg:                # the root's pid in ours, a new one
                    self.live[msg["pid"]] = msg["now"]
                    self.created = [msg["now"]]     # killing it ends its pid namespace
                    continue
                got[msg["pid"]] = msg["service"]
                pending.discard(msg["pid"])
        return got

    # seize and swap ---------------------------------------------------------------------------
    def seize_all(self):
        pids = [self.live.get(pid, pid) for pid in self.image.cores]
        for pid in pids:
            ptrace.seize(pid, RESTORE_OPTIONS)
            self.tracees[pid] = True
        self._stop_in_syscall(pids)

    def _stop_in_syscall(self, pids, timeout=5.0):
        """Stop the stubs in the read they wait in: each says it is ready just before that
        read, so an interrupt can catch it on its way there, outside any system call (no
        syscall instruction to inject through); then it runs on a little and is stopped
        again.  All are interrupted at once: they stop side by side."""
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                ptrace.interrupt(pid)
            for pid in pids:
                while wait_stop(pid).event != ptrace.EVENT_STOP:
                    ptrace.cont(pid)
            pids = [pid for pid in pids if get_regs(pid).orig_rax == NOT_IN_SYSCALL]
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                ptrace.cont(pid)
            time.sleep(0.001)

    def restore_process(self, pid):
        img = self.image
        core, mm = img.cores[pid], img.mms[pid]
        svc = self.stub_service[pid]
        live = self.live.get(pid, pid)      # ``pid`` names its images
        regs = get_regs(live)
        ip = regs.rip - len(SYSCALL_INSN)
        if read_memory(live, ip, 2) != SYSCALL_INSN:
            raise RestoreError(f"stub {pid} is not stopped in a system call", "memory")
        rem = Remote(live, ip)
        set_sigmask(live, ALL_SIGNALS)
        stub_vmas = proc.maps(live)
        region = _free_gap([(v.start, v.end) for v in stub_vmas] +
                           [(v["start"], v["end"]) for v in mm["vmas"]], REGION)
        got = rem.call("mmap", region, REGION, kmem.PROT_READ | kmem.PROT_WRITE,
                       kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS | kmem.MAP_FIXED_NOREPLACE, -1, 0)
        if got != region:
            raise RestoreError(f"cannot map the work area in {pid}", "memory")
        write_memory(live, region, GADGET.ljust(BATCH_AT, b"\xcc") + BATCH_CODE)
        rem.call("mprotect", region, kmem.PAGE_SIZE, kmem.PROT_READ | kmem.PROT_EXEC)
        rem.syscall_ip = region
        scratch = Scratch(live, region + kmem.PAGE_SIZE, REGION - kmem.PAGE_SIZE)
        batch = SyscallBatch(rem, scratch, code_at=region + BATCH_AT)
        _unregister_rseq(rem, live)
        with self.stats.stage("memory"):
            # everything of the stub goes but the work area and its vdso, moved into place
            vdso = [(v.start, v.end, v.name) for v in stub_vmas
                    if v.name in memory.VDSO_NAMES]
            # and the low reservation until the rings are mapped
            # (io_uring_restore.RingRestore.reserve_low)
            low = [self.low] if self.low and all(v["start"] >= self.low[1]
                                                 for v in mm["vmas"]) else []
            keep = sorted([(region, region + REGION)] + [(a, b) for a, b, _ in vdso] + low)
            at, unmaps = 0, []
            for start, end in keep:
                if start > at:
                    unmaps.append(Call("munmap", (at, start - at)))
                at = max(at, end)
            batch.run(unmaps + [Call("munmap", (at, TASK_SIZE - at))])
            memory.move_vdso(rem, mm["vmas"], pid, vdso)
            memory.restore_vmas(batch, scratch, pid, mm["vmas"], lambda v: _fd_for(svc, v))
            img.ipc.attach(rem, pid, mm["vmas"])
            loaders = self._loaders(rem, scratch, live, mm["pagemap"])
            try:
                pages = memory.load_pages(loaders, scratch, mm["pagemap"], svc["pages"])
            finally:
                self._end_threads(loaders[1:])
            scratch.reset()
            if mm.get("inherited"):     # pages a parent image (a pre-dump) holds
                pages += tracking.write_inherited(pid, mm["inherited"], img.reader.dir, live)
            if mm.get("guards"):
                memory.install_guards(batch, pid, mm["guards"])
            memory.finish_vmas(batch, pid, mm["vmas"])
            self.stats.add("pages_restored", pages)
            faults.hit(self.fault, "restore:memory")
        with self.stats.stage("state"):
            self._mm_map(rem, scratch, mm, svc["exe"], live)
            rem.call("personality", core["personality"])
            signals.drain(rem, scratch)
            signals.restore_actions(rem, scratch, core["sigactions"])
            timers.restore_itimers(rem, scratch, core["itimers"])
            if img.steps[pid]["pgid"] == "late":       # from inside: its namespace's id
                entry = img.procs[pid]
                rem.call("setpgid", 0, pstree.own_id(entry, "pgid"))
            for last, _, member in self.foregrounds:    # its session all in place now
                if last == pid:
                    at = scratch.put(struct.pack("i", pstree.own_id(img.procs[member],
                                                                    "pgid")))
                    rem.call("ioctl", svc["ctty"], kfds.TIOCSPGRP, at)
            remotes = self._threads(rem, scratch, pid, core)
            for thread in core["threads"]:
                here = remotes[thread["tid"]]
                self._thread_state(SyscallBatch(here, scratch, batch.code_at), scratch, thread)
                context.restore_thread(here, here.tid, thread["context"], pid == self.root)
            # rings: with the threads there (a submitter, an SQ thread), before the
            # credentials change
            self.rings.restore(rem, remotes, scratch, pid, live, core, mm["vmas"],
                               _ThreadsFor(self, rem, scratch, live))
            for start, end in low:
                rem.call("munmap", start, end - start)
            context.restore_process(rem, core["context"])
            if img.steps[pid].get("route_target") and \
                    not core["context"].get("child_subreaper"):     # flagged for the fork
                rem.call("prctl", PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
            timers.restore_posix(rem, scratch, core["posix_timers"], live,  # may name a thread
                                 self.live)
            # only a thread itself may queue signals that look sent by the kernel or kill()
            signals.queue_pending(rem, scratch, live, live, core["pending"], shared=True)
            for thread in core["threads"]:
                here = remotes[thread["tid"]]
                signals.queue_pending(here, scratch, live, here.tid, thread["pending"],
                                      shared=False)
            batch.run([Call("close", (fd,)) for fd in sorted(set(svc.values()))])
            self._locks(rem, scratch, pid, core)
            self._rlimits(live, core)        # before the uids change: other users' need more
            # while the threads have CAP_SYS_ADMIN; later calls run with seccomp suspended
            seccomp.restore(remotes, scratch, core, RESTORE_OPTIONS)
            for thread in core["threads"]:
                if thread["creds"] != self.own_creds:
                    creds.restore(remotes[thread["tid"]], scratch, thread["tid"],
                                  thread["creds"], self.own_creds, self.userns)
            context.restore_last(remotes, core["context"],
                                 {t["tid"]: t["context"] for t in core["threads"]})
            faults.hit(self.fault, "restore:state")
            rem.call("munmap", region, REGION)
        return remotes

    def _mm_map(self, rem, scratch, mm, exe_fd, pid):
        # the kernel refuses to replace an exe that is still mapped: when the stub's own exe
        # (the restorer's interpreter) is the dumped one, it is already right - keep it
        st = os.stat(f"/proc/{pid}/exe")
        if [os.major(st.st_dev), os.minor(st.st_dev)] == mm["exe_id"]["dev"] and \
                st.st_ino == mm["exe_id"]["inode"]:
            exe_fd = 0xFFFFFFFF
        auxv = bytes.fromhex(mm["auxv"])
        auxv_at = scratch.put(auxv)
        m = PrctlMmMap(start_code=mm["start_code"], end_code=mm["end_code"],
                       start_data=mm["start_data"], end_data=mm["end_data"],
                       start_brk=mm["start_brk"], brk=mm["brk"], start_stack=mm["start_stack"],
                       arg_start=mm["arg_start"], arg_end=mm["arg_end"],
                       env_start=mm["env_start"], env_end=mm["env_end"], auxv=auxv_at,
                       auxv_size=len(auxv), exe_fd=exe_fd)
        at = scratch.put(bytes(m))
        got = rem.call("prctl", 35, 14, at, ctypes.sizeof(m), 0, check=False)
        scratch.reset()
        if got < 0:
            raise RestoreError(f"PR_SET_MM_MAP of pid {pid} failed ({os.strerror(-got)})",
                               "state")

    def _loaders(self, rem, scratch, pid, pagemap):
        """Remotes to load pages with: the main thread, and for a big image one helper
        thread per further CPU (up to LOADERS), gone again before the dumped threads are
        made, so their tids are free by then."""
        size = sum(count for _, count in pagemap) * kmem.PAGE_SIZE
        want = min(LOADERS, os.cpu_count() or 1) if size >= PARALLEL_MIN else 1
        loaders = [rem]
        for _ in range(want - 1):
            helper = self._spare_thread(rem, scratch, pid)
            if helper is None:
                break                       # fewer loaders, same result
            loaders.append(helper)
        return loaders

    def _spare_thread(self, rem, scratch, pid):
        """A Remote of a new thread of ``pid`` (ours to end with _end_threads), or None when
        it cannot have one."""
        args = CloneArgs(flags=CLONE_THREAD_FLAGS)
        at = scratch.put(bytes(args))
        tid = rem.call("clone3", at, ctypes.sizeof(args), check=False)
        scratch.reset()
        if tid < 0:
            return None
        tid = proc.outer_tid(pid, tid)      # it answers from inside its pid namespace
        self.tracees[tid] = True
        while wait_stop(tid).event != ptrace.EVENT_STOP:
            ptrace.cont(tid)
        set_sigmask(tid, ALL_SIGNALS)
        return Remote(tid, rem.syscall_ip)

    def _thread_with_creds(self, rem, scratch, pid, wanted):
        """A spare thread of ``pid`` with credentials ``wanted`` (io_uring personalities are
        the credentials of the thread that registers them)."""
        helper = self._spare_thread(rem, scratch, pid)
        if helper is None:
            raise RestoreError(f"cannot make a helper thread in pid {pid}", "state")
        creds.restore(helper, scratch, helper.tid, wanted, self.own_creds, self.userns)
        return helper

    def _end_threads(self, helpers):
        for helper in helpers:
            helper.start("exit", 0)
            os.waitpid(helper.tid, WALL)    # reaped: the tid is free again
            del self.tracees[helper.tid]

    def _threads(self, rem, scratch, pid, core):
        """Create the other threads with their tids; returns tid -> Remote (of the tid the
        thread has now: see _clone_thread)."""
        remotes = {pid: rem}
        for thread in core["threads"]:
            tid = thread["tid"]
            if tid != pid:
                remotes[tid] = self._clone_thread(rem, scratch, pid, tid)
        return remotes

    def _clone_thread(self, rem, scratch, pid, tid):
        """Thread ``tid`` of ``pid``, made with clone3 set_tid at every level, or at the
        tree's pid namespace's alone in a user namespace of its own (ours is new: self.live)."""
        user = self.userns is not None
        levels = pstree.set_tid(self.image.procs[pid], tid, own_only=user)
        tids = scratch.put(struct.pack(f"<{len(levels)}i", *levels))
        args = CloneArgs(flags=CLONE_THREAD_FLAGS, set_tid=tids, set_tid_size=len(levels))
        at = scratch.put(bytes(args))
        got = rem.call("clone3", at, ctypes.sizeof(args), check=False)
        scratch.reset()
        if got != levels[0]:            # it answers from inside its pid namespace
            raise RestoreError(f"cannot create thread {tid} of pid {pid} "
                               f"({os.strerror(-got) if got < 0 else got})", "state")
        now = proc.outer_tid(rem.tid, got) if user else tid
        if now != tid:
            self.live[tid] = now
        self.tracees[now] = True
        while wait_stop(now).event != ptrace.EVENT_STOP:
            ptrace.cont(now)
        set_sigmask(now, ALL_SIGNALS)
        return Remote(now, rem.syscall_ip)

    def _thread_state(self, batch, scratch, thread):
        """The thread's own settings, in one batch run by it."""
        calls = [Call("set_tid_address", (thread["tid_address"],))]
        head, length = thread["robust_list"]
        if head:
            calls.append(Call("set_robust_list", (head, length)))
        rseq = thread.get("rseq")
        if rseq:
            calls.append(Call("rseq", (rseq["pointer"], rseq["size"], 0, rseq["signature"])))
        calls.append(Call("sigaltstack", signals.altstack_args(scratch, thread["altstack"])))
        name = scratch.put(thread["comm"].encode()[:15] + b"\0")
        calls.append(Call("prctl", (PR_SET_NAME, name, 0, 0, 0)))
        batch.run(calls)
        scratch.reset()

    def _locks(self, rem, scratch, pid, core):
        """POSIX locks on the fds they were dumped with; a description's flock and OFD locks
        by the first process that has it."""
        for entry in core["fds"]:
            who = f"fd {entry['fd']} of pid {pid}"
            locks.take(rem, scratch, entry["fd"], entry.get("locks", ()), who)
            if self.lock_fds.get(entry["file"]) == (pid, entry["fd"]):
                locks.take(rem, scratch, entry["fd"], self.image.files[entry["file"]]["locks"],
                           who)

    def _rlimits(self, pid, core):       # pid: as we number it
        for name, (soft, hard) in core["rlimits"].items():
            res = context.RLIMITS.get(name)
            if res is None:
                continue
            try:
                resource.prlimit(pid, res, (soft, hard))
            except (OSError, ValueError):
                cur = resource.prlimit(pid, res)
                try:
                    resource.prlimit(pid, res, (min(soft, cur[1]), cur[1]))
                except (OSError, ValueError):
                    pass
                self.stats.add("rlimits_not_restored", 1)

    # resume ----------------------------------------------------------------------------------
    def resume(self):
        img = self.image
        # last: every process and thread (ours without set_tid too) took its pid by now
        pidns.restore_last_pids(img.pstree, self.live)
        for pid, core in img.cores.items():
            for thread in core["threads"]:
                tid = self.live.get(thread["tid"], thread["tid"])
                set_regs(tid, restart_in_new_task(UserRegs.from_dict(thread["regs"])))
                set_xstate(tid, bytes.fromhex(thread["xstate"]))
        for pid, core in img.cores.items():
            for thread in core["threads"]:
                set_sigmask(self.live.get(thread["tid"], thread["tid"]), thread["sigmask"])
        # threads dumped asleep in a system call go first, and the rest (and our caller)
        # only once they sleep in it again: before that a signal would run its handler
        # ahead of the call, which then sleeps through it (release.py)
        sleepers, others = release.Sleepers(), []
        for pid, core in img.cores.items():
            stop = signal.SIGSTOP if img.procs[pid].get("stopped") else 0
            for thread in core["threads"]:
                tid = self.live.get(thread["tid"], thread["tid"])
                hit = interrupted_syscall(UserRegs.from_dict(thread["regs"]))
                if stop or not hit:
                    others.append((tid, stop))
                    continue
                sleepers.add(tid, hit[0])
                ptrace.detach(tid, stop)
                self.tracees.pop(tid, None)
        self.stats.add("sleepers_not_back", sleepers.wait())
        for tid, stop in others:
            ptrace.detach(tid, stop)
            self.tracees.pop(tid, None)

    # cleanup ----------------------------------------------------------------------------------
    def close(self):
        if self.mounts:
            self.mounts.close()
            self.mounts = None
        self.opened.close()
        for fd in self.own_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.own_fds = []

    def kill_all(self):
        for pid in reversed(self.created):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # first the exit reports we get as their tracer, then the processes again as their
        # parent (a traced process whose parent is another is reaped twice): the root is
        # our child, the others become ours when we are a subreaper, or init's
        proc.reap(self.tracees)
        proc.reap(self.created)


class _ThreadsFor:
    """Helper threads with given credentials in one process, made on demand and ended
    together (io_uring_restore.RingRestore registers personalities with them)."""

    def __init__(self, restorer, rem, scratch, pid):
        self.restorer, self.rem, self.scratch, self.pid = restorer, rem, scratch, pid
        self.made = []

    def with_creds(self, wanted):
        helper = self.restorer._thread_with_creds(self.rem, self.scratch, self.pid, wanted)
        self.made.append(helper)
        return helper

    def end(self):
        self.restorer._end_threads(self.made)
        self.made = []


def restore(images_dir, *, shell_job=False, fault=None, external=None):
    """Restore the tree dumped in ``images_dir``; the root becomes a child of the caller.
    ``external``: {KEY: path} for the mounts dumped as external (--external).  ``fault``
    names a faults.POINTS entry to fail at on purpose."""
    fault = faults.armed(fault)
    stats = Stats()
    # the restorer holds every description of the tree open at once, and a tree may hold
    # more than our soft limit allows
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with stats.stage("verify"):
        image = _Image(images_dir, shell_job)
    r = _Restorer(image, stats, external or {})
    keeper = image.reader.json(tracking.IMAGE) if image.reader.has(tracking.IMAGE) else None
    if keeper:      # the tracked tree is gone: its memory tracking is over
        tracking.stop_keeper(keeper)
    stage = "prepare"
    try:
        with stats.stage("prepare"):
            r.prepare()
            faults.hit(fault, "restore:prepare")
        stage = "fork"
        with stats.stage("fork"):
            r.fork_tree()
            if r.mounts:                # late mounts are in: propagation
                r.mounts.finish()
            faults.hit(fault, "restore:fork")
        stage = "seize"
        with stats.stage("seize"):
            r.seize_all()
        stage = "restore"
        r.fault = fault
        for pid in image.order:
            if pid in image.cores:
                r.restore_process(pid)
        r.opened.set_owners(image.files, r.live)
        image.ipc.finish(r.live.get(r.root, r.root))
        stage = "verify"
        with stats.stage("verify-wait"):
            image.verified()
        stage = "resume"
        with stats.stage("resume"):
            faults.hit(fault, "restore:resume")
            # last: a socket out of repair mode would answer a kill with a RST to its peer
            r.opened.go_live(image.files)
            r.resume()
    except BaseException as e:
        r.kill_all()
        image.ipc.undo()
        r.close()
        if isinstance(e, ImageError) or (isinstance(e, RestoreError) and e.stage):
            raise
        if isinstance(e, (CRError, KeyboardInterrupt)):
            raise RestoreError(str(e), stage) from None
        if isinstance(e, (OSError, TraceeGone, MemoryError)):
            raise RestoreError(f"{e}", stage) from e
        raise
    r.close()
    stats.total()
    stats.counts["processes"] = len(image.order)
    return RestoreResult(r.live.get(r.root, r.root), [r.live.get(p, p) for p in image.order],
                         stats.as_dict())


def _fd_for(svc, vma):
    if vma["kind"] == "shmem":
        return svc[f"shmem:{vma['shmem']}"]
    if vma["kind"] in ("carried", "bpf-map"):
        return svc[f"carried:{vma['file']}"]
    return svc[_map_key(vma)]


def _map_key(vma):
    return f"map:{vma.get('mnt', '')}:{vma['path']}:{'rw' if _writable_shared(vma) else 'r'}"


def _writable_shared(vma):
    return vma["perms"][3] == "s" and ("mw" in vma["flags"] or vma["perms"][1] == "w")


def _free_gap(intervals, size, low=1 << 32):
    """The lowest address >= low where ``size`` bytes overlap none of ``intervals``."""
    at = low
    for start, end in sorted(intervals):
        if end <= at:
            continue
        if start >= at + size:
            break
        at = (end + 0xFFFF) & ~0xFFFF
    if at + size > TASK_SIZE:
        raise RestoreError("no room for the restorer's work area", "memory")
    return at


RSEQ_SIG = 0x53053053                # glibc's on x86
RSEQ_FLAG_UNREGISTER = 1


def _unregister_rseq(rem, pid):
    """The stub's rseq area is about to be unmapped: a registration left would have the
    kernel fault on the way back to user space (SIGSEGV, SI_KERNEL).  Where ptrace cannot
    tell it (before 5.13), it is glibc's: the stub's thread pointer plus __rseq_offset (the
    stub is a fork of ours, same glibc)."""
    try:
        _, conf = ptrace.get_rseq_configuration(pid)
        where = (conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature)
    except OSError:
        where = _glibc_rseq(get_regs(pid).fs_base)
    if where and where[0]:
        rem.call("rseq", where[0], where[1], RSEQ_FLAG_UNREGISTER, where[2], check=False)


def _glibc_rseq(thread_pointer):
    """(area, size, signature) of glibc's rseq registration of a thread, or None."""
    offset = _glibc_rseq_offset()
    if offset is None:
        return None
    return thread_pointer + offset, 32, RSEQ_SIG    # glibc registers sizeof(struct rseq)


@functools.cache
def _glibc_rseq_offset():
    """glibc's __rseq_offset, or None where it registers no rseq area."""
    libc = ctypes.CDLL(None)
    try:
        offset = ctypes.c_long.in_dll(libc, "__rseq_offset").value
        size = ctypes.c_uint.in_dll(libc, "__rseq_size").value
    except ValueError:                  # glibc < 2.35: it registers none
        return None
    return offset if size else None     # 0: rseq off (glibc.pthread.rseq=0)


def _wait_pid_free(pid, timeout=ZOMBIE_WAIT):
    """A dumped-and-killed task may linger as a zombie until its parent reaps it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = proc.stat(pid)["state"]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state not in ("Z", "X") or time.monotonic() > deadline:
            raise RestoreError(f"pid {pid} is in use"
                               f"{' (by a zombie nobody reaps)' if state == 'Z' else ''}",
                               "prepare")
        time.sleep(0.005)


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * kmem.PAGE_SIZE


def _exec_keeps_creds(own):
    """Whether an exec by the restorer's credentials ``own`` (creds.own()) leaves them as
    they are: all ids root, no securebits, and the capabilities an exec of root gives
    (permitted = effective = inheritable | bounding, no ambient)."""
    caps = own["caps"]
    return (set(own["uids"]) == {0} and own["securebits"] == 0 and caps["Amb"] == 0 and
            caps["Prm"] == caps["Eff"] == caps["Inh"] | caps["Bnd"])


def _single_threaded():
    return len(os.listdir("/proc/self/task")) == 1 and threading.active_count() == 1

