"""Dump: freeze a tree, collect every process's state into an image directory, then kill
the tree or let it run on (--leave-running).

Nothing irreversible happens before the images are complete: any failure thaws the tree as
it was (registers, signal masks, signals caught while frozen) and removes the partial images.
"""

import bisect
import ctypes
import os
import time

from kernel import memory as kmem
from kernel import ptrace
from kernel.libc import syscall
from kernel.namespaces import ns_get_userns, related_ino
from kernel.process import PR_GET_TID_ADDRESS
from kernel.procfs import status as proc_status

from . import (collect, context, creds, faults, files, memory, mnt_model, namespaces, pidns,
               proc, pstree, seccomp, signals, sockets, sysv_ipc, timers, tracking)
from .errors import CRError, DumpError, Unsupported
from .freezer import FrozenTree
from .images import FD_DATA, ImageWriter
from .regs import get_xstate
from .remote import SEIZE_OPTIONS, Remote, Scratch, TraceeGone, find_syscall_insn
from .stats import Stats

SCRATCH_SIZE = 64 << 10
PREFILL_FROM = 16 << 20             # private anonymous memory worth a page image prefilled
NAMESPACES = ("pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time")


class DumpResult:
    def __init__(self, root_pid, images_dir, stats, pids):
        self.root_pid, self.images_dir, self.stats, self.pids = root_pid, images_dir, stats, pids


class _Injected:
    """The engine's foothold in one frozen process: a Remote per thread and a scratch area."""

    def __init__(self, process, vmas):
        self.process, self.vmas = process, vmas      # vmas: its smaps, read once
        main = process.threads[process.pid]
        ip = find_syscall_insn(process.pid, vmas)
        self.remotes = {tid: Remote(tid, ip) for tid in process.threads}
        for thread in process.threads.values():
            thread.touched = True
        self.main = self.remotes[main.tid]
        addr = self.main.call("mmap", 0, SCRATCH_SIZE, kmem.PROT_READ | kmem.PROT_WRITE,
                              kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS, -1, 0)
        self.scratch = Scratch(process.pid, addr, SCRATCH_SIZE)
        self.guards = []            # its guard pages [(start, end)], found with its pages

    def cure(self):
        if self.scratch is not None:
            self.main.call("munmap", self.scratch.addr, SCRATCH_SIZE)
            self.scratch = None

    def caught(self):
        """Signals that arrived mid-injection, per tid."""
        return {tid: r.caught_signals for tid, r in self.remotes.items() if r.caught_signals}


def dump(pid, images_dir, *, leave_running=False, shell_job=False, tcp_established=False,
         parent=None, track_mem=False, fault=None, external=()):
    """Checkpoint the tree rooted at ``pid`` into ``images_dir``; kill it afterwards unless
    ``leave_running``.  ``tcp_established``: carry TCP connections whose peer is outside the
    tree (the peer's packets are dropped until the restore).  ``parent``: the images of a
    pre-dump of this tree; pages not written since are not stored again.  ``track_mem``
    (with ``leave_running``): track the pages written from now on, for a later dump with
    this one as its parent (snapshots).  ``external``: "mnt[PATH]:KEY" mounts of the
    tree that are the outside world's (CRIU's --external).  ``fault`` names a faults.POINTS entry to fail at on
    purpose."""
    fault = faults.armed(fault)
    stats = Stats()
    if not isinstance(pid, int) or pid <= 0:
        raise DumpError(f"bad pid {pid!r}")
    if pid == os.getpid():
        raise DumpError("cannot dump the dumping process itself")
    writer = ImageWriter(images_dir)
    increments = tracking.Increments(images_dir, parent, keep=leave_running and track_mem)
    mnt_model.ask_probes(pid)
    collectors = collect.Collectors()       # loaded before the freeze: not downtime
    try:
        if parent is None:                  # after pre-dumps few pages are stored
            with stats.stage("prefill"):
                _prefill(writer, pid, stats)
        with stats.stage("freeze"):
            tree = FrozenTree(pid).freeze()
    except BaseException:
        collectors.close()
        writer.discard()
        raise
    frozen_at = time.perf_counter()
    injected = {}
    table = None
    try:
        faults.hit(fault, "dump:freeze")
        _check_tree(tree)
        tree_image = pstree.image(tree, shell_job)
        if pidns.table(tree_image):
            tree_image["pid_namespaces"] = pidns.dump_last_pids(tree_image)
        with stats.stage("collect-mounts"):
            mounts = mnt_model.MountDump(tree, tree.pidns_inits, external)
        table = files.FileTable(shell_job, tcp_established,
                                netns=tree.root if "net" in tree.namespaces else None,
                                mounts=mounts, injected=injected,
                                leave_running=leave_running)
        shmem_done = set()
        attached = set()            # SysV shm segments the tree maps
        late = []                   # mm images whose VMA entries are made in finish()
        with stats.stage("collect"):
            tree_vmas, tasks, tree_fds = _collect_tree(tree, collectors, stats)
        for process in tree.processes.values():
            if process.zombie:
                continue
            with stats.stage("collect"):
                core, mm, private, shmem = _collect(
                    process, tree_vmas[process.pid], tasks, tree_fds[process.pid], table,
                    injected, tree.namespaces if process.pid == tree.root else {})
                faults.hit(fault, "dump:collect")
            with stats.stage("memory"):
                mm["pagemap"], mm["inherited"] = _dump_pages(
                    injected[process.pid], private, writer, stats, increments,
                    follow=not leave_running)
                guards = injected[process.pid].guards
                if guards:
                    mm["guards"] = [[s, (e - s) // memory.PAGE] for s, e in guards]
                mm["shmem"] = _dump_shmem(process.pid, shmem, writer, stats, shmem_done)
                faults.hit(fault, "dump:memory")
            writer.json(f"core-{process.pid}.json", core)
            writer.json(f"mm-{process.pid}.json", mm)
            attached.update(mm["vmas"].shmids())
            late.append(mm)
        table.finish()
        with stats.stage("mount-content"):
            mounts.dump_content(writer)
        with stats.stage("ipc"):
            sysv_ipc.dump(tree, writer, attached)
        if leave_running:
            for state in injected.values():
                _requeue_taken(state)
        for state in injected.values():
            state.cure()
        stats.counts["processes"] = len(tree.processes)
        stats.counts["threads"] = sum(len(p.threads) for p in tree.processes.values())

        # What no longer reads the tree: with --leave-running it runs after the thaw, else
        # before the kill (write, then kill).  A failure after the thaw (a disk error, a
        # CRC read back short) cannot take the tree back to the moment it was frozen in -
        # it has run on since - so the dump fails as an earlier failure would: no images
        # (_finish_running removes them), the tree running, the error raised; a new dump
        # takes a later state.
        def finish():
            increments.hand_over(writer)    # the tracking's keeper (--track-mem)
            with stats.stage("write"):
                for mm in late:
                    mm["vmas"] = mm["vmas"].images()
                _write_files(writer, table, tree_image)
                faults.hit(fault, "dump:write")
                writer.complete()           # JSON files, and the pages' CRCs read back
            if not leave_running:           # the tree waits for its images, then dies
                stats.times["frozen"] = time.perf_counter() - frozen_at
            stats.total()
            writer.json("stats-dump.json", stats.as_dict())
            faults.hit(fault, "dump:finish")
            writer.finish(root_pid=pid, pids=sorted(tree.processes), shell_job=shell_job,
                          parent=increments.parent_rel)
        lingering = table.ring_sockets()
        if leave_running:
            table.close()               # its sockets back at work before the tree runs
            stats.times["frozen"] = time.perf_counter() - frozen_at
        else:
            finish()                    # the images complete before the tree is killed
            table.close(final=True)     # after the last step that can fail
            increments.done()
    except BaseException as e:
        collectors.close()
        _undo(e, "dump", injected, tree, writer, increments, table)
        raise
    if leave_running:
        tree.thaw()
        stats.times["downtime"] = tree.downtime
        stats.add("sleepers_not_back", tree.sleepers_not_back)
        _finish_running("dump", finish, writer, increments)
    else:
        tree.kill()
        # a killed process's io_uring rings are torn down by a kernel worker a few ms later,
        # holding their sockets (a listener's name or port) until then: a restore right
        # away would find them taken
        sockets.wait_gone(lingering)
    stats.total()
    return DumpResult(pid, os.fspath(images_dir), stats.as_dict(), sorted(tree.processes))


def _prefill(writer, root, stats):
    """Before the freeze: the page images of the tree's processes holding PREFILL_FROM or
    more of private anonymous memory (RssAnon, as the tree runs) made that size in the page
    cache already (ImageWriter.prefill), so that the frozen processes write their pages
    over cached ones: the allocation is made while the tree runs (1 GiB here: a window of
    0.2-1.2 s -> ~0.15 s).  The tree is walked by /proc children links: a process that
    comes or goes by the freeze just writes as without."""
    todo, seen = [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            todo += proc.children(pid)
            anon = int(proc_status(pid, ("RssAnon",)).get("RssAnon", "0 kB").split()[0]) << 10
        except (OSError, ValueError):
            continue
        if anon >= PREFILL_FROM:
            writer.prefill(f"pages-{pid}.img", anon)
            stats.add("bytes_prefilled", anon)


def _write_files(writer, table, tree_image):
    """The tree's descriptions and process tree, from what was collected."""
    # what descriptions hold (pipe and socket queues, file content) in one file: one file
    # per description made a dump of many fds wait on file creation
    out, index = writer.raw(FD_DATA), {}
    for file_id, data in table.payloads.items():
        index[file_id] = [out.size, len(data)]
        out.write(data)
    writer.close_raw(FD_DATA, out)
    writer.json("files.json", {"files": table.files, "data": index})
    writer.json("pstree.json", tree_image)


def _finish_running(what, finish, writer, increments):
    """Complete the images of a tree that runs on already (--leave-running, pre-dump), so
    that the stats hold its downtime.  A failure here (a disk error) leaves the tree as a
    failed dump would - running, and here it never stopped being itself again - and no
    images: they are removed, the parent's tracking is kept, the error is raised."""
    try:
        finish()
        increments.done()
    except BaseException as e:
        writer.discard()
        increments.close()
        if isinstance(e, OSError) and not isinstance(e, CRError):
            raise DumpError(f"{what} failed after the thaw: {e}") from e
        raise


def _undo(error, what, injected, tree, writer, increments, table=None):
    """A dump that failed: the tree runs on as it was, no image is left; ``error`` comes
    back as a DumpError when it was a plain OSError or a task that vanished."""
    for state in injected.values():
        try:
            _requeue_taken(state)
            state.cure()
        except (OSError, TraceeGone):
            pass
    tree.thaw()
    writer.discard()
    increments.close()
    if table is not None:
        table.close()
    if isinstance(error, TraceeGone):
        raise DumpError(f"a task exited during the {what}: {error}") from None
    if isinstance(error, OSError) and not isinstance(error, CRError):
        raise DumpError(f"{what} failed: {error}") from error


def _check_tree(tree):
    """Refuse trees the engine cannot carry (namespaces); note each process's status.  Pid
    namespaces: the root's (ours, or a new one whose init it is: the tree's pids then have
    a level more) and any nested below it whose init is in the tree."""
    own = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in NAMESPACES
           if os.path.exists(f"/proc/self/ns/{ns}")}
    me = os.getpid()
    tree.pidns = _root_pidns(tree, own["pid"])
    tree.namespaces = namespaces.own(tree.root)     # carried: the root's, shared by all
    namespaces.check_owners(tree.root, tree.namespaces, tree.pidns)
    tree.mnt_ns, tree.pidns_inits = {}, {}          # mount namespaces: any, each its own
    top = tree.pidns or own["pid"]
    top_depth = len(proc_status(tree.root)["NSpid"].split())
    nested = {}                     # a pid namespace below the root's -> a process in it
    for pid, process in tree.processes.items():
        if process.zombie:
            continue
        process.status = proc_status(pid)
        for ns, link in own.items():
            try:
                theirs = os.readlink(f"/proc/{pid}/ns/{ns}")
            except FileNotFoundError:
                continue
            if ns == "pid":
                depth = len(process.status["NSpid"].split())
                _check_pidns(tree, pid, theirs, depth <= top_depth, top, nested)
                if process.status["NSpid"].split()[-1] == "1":
                    tree.pidns_inits[theirs] = pid
                continue
            if ns == "mnt":
                if theirs != link:
                    namespaces.check_owner(pid, "mnt", tree.root, tree.namespaces)
                    tree.mnt_ns[pid] = theirs
                continue
            if theirs == tree.namespaces.get(ns):
                continue
            if theirs != link:
                of_tree = f" (in the tree of pid {tree.root})" if pid != tree.root else ""
                raise Unsupported(f"unsupported: a {ns} namespace ({theirs}) of pid "
                                  f"{pid}{of_tree}")
        if pid == me:
            raise DumpError("the dumping process is inside the tree")
    _check_nested(tree, top, nested)


def _check_pidns(tree, pid, theirs, not_deeper, top, nested):
    """A process's pid namespace, and the one its children go to, are the root's or
    deeper ones (whose inits _check_nested finds in the tree); ``not_deeper``: the
    process's namespace is not below the root's level."""
    try:
        for_children = os.readlink(f"/proc/{pid}/ns/pid_for_children")
    except FileNotFoundError:       # a namespace no process is in yet
        raise Unsupported(f"unsupported: the pid namespace for the children of pid {pid} "
                          f"has no init in the tree (not forked yet, or it exited)") from None
    for link in (theirs, for_children):
        if link == top:
            continue
        if link == theirs and not_deeper:
            of_tree = f" (in the tree of pid {tree.root})" if pid != tree.root else ""
            raise Unsupported(f"unsupported: a pid namespace ({theirs}) of pid {pid}{of_tree} "
                              f"that is not below the root's")
        nested.setdefault(link, pid)


def _check_nested(tree, top, nested):
    """Every nested pid namespace has its init in the tree and belongs to the user
    namespace the root's belongs to (the restore makes it from inside the tree)."""
    if not nested:
        return
    inits = {}
    for pid, process in tree.processes.items():
        if not process.zombie and process.status["NSpid"].split()[-1] == "1":
            inits[os.readlink(f"/proc/{pid}/ns/pid")] = pid
    owner = related_ino(f"/proc/{tree.root}/ns/pid", ns_get_userns)
    for link, pid in sorted(nested.items()):
        if link not in inits:
            raise Unsupported(f"unsupported: the pid namespace {link} of pid {pid} has no "
                              f"init in the tree (not forked yet, or it exited)")
        if related_ino(f"/proc/{inits[link]}/ns/pid", ns_get_userns) != owner:
            raise Unsupported(f"unsupported: the pid namespace {link} of pid {pid} belongs "
                              f"to another user namespace than the root's")


def _root_pidns(tree, ours):
    """The pid namespace the root is the init of (its pid there is 1, one level below ours),
    or None when the root is in ours."""
    root = tree.root
    link = os.readlink(f"/proc/{root}/ns/pid")
    if link == ours:
        return None
    nspid = proc_status(root).get("NSpid", "").split()
    if len(nspid) != 2 or nspid[1] != "1":
        raise Unsupported(f"unsupported: a nested pid namespace ({link}) of pid {root}: the "
                          f"root is not the init of a namespace one level below the dumper's")
    return link


def _collect_tree(tree, collectors, stats):
    """({pid: [proc.Vma]}, {tid: TaskRecord}, {pid: [FdRecord]}; None for a kind not read)
    of the tree's live processes, in one pass per kind where the kernel lets us; the
    programs are closed at once (the rest of the dump needs them no more)."""
    try:
        return collectors.collect(p.pid for p in tree.processes.values() if not p.zombie)
    finally:
        collectors.close()
        stats.ways.update(collectors.ways())
        if collectors.vmas.fell_back:
            stats.add("vmas_from_smaps", collectors.vmas.fell_back)
        if collectors.fds and collectors.fds.fell_back:
            stats.add("fds_partly_from_proc", collectors.fds.fell_back)


def _collect(process, smaps, tasks, fd_records, table, injected, own_namespaces):
    """The process's core and mm images; ``tasks``: its threads' TaskRecords where the
    task iterator read them (else they are asked by injected calls); ``fd_records``: its
    fds' FdRecords."""
    pid = process.pid
    st, status = process.stat, process.status
    kinds, extra, private, shmem = [], {}, [], []     # extra: index -> image fields
    for i, vma in enumerate(smaps):
        kind = memory.classify(pid, vma)
        kinds.append(kind)
        if kind == "carried":
            extra[i] = {"file": table.carry_mapping(pid, vma)}
        if kind in ("anon", "file", "carried") and not vma.shared:
            private.append(vma)
        elif kind == "shmem":
            shmem.append(vma)
    exe = os.readlink(f"/proc/{pid}/exe")
    if exe.endswith(" (deleted)"):
        raise Unsupported(f"unsupported: deleted executable {exe[:-10]} of pid {pid}")
    statuses = {tid: status if tid == pid else proc_status(f"{pid}/task/{tid}")
                for tid in process.threads}
    seccomp.suspend_all(statuses, SEIZE_OPTIONS)     # before the first injected call
    fds = table.dump_process(pid, fd_records)
    for i, (vma, kind) in enumerate(zip(smaps, kinds)):
        if kind == "bpf-map":                   # after the fds: the map is likely among them
            extra[i] = {"file": table.map_mapping(pid, vma)}
        elif kind == "io_uring":
            extra[i] = {"file": table.ring_mapping(pid, vma)}
    mnt_ns = table.mounts.of(pid)
    if mnt_ns is not None:          # files of a namespace of the tree: by mount and path
        for i, (vma, kind) in enumerate(zip(smaps, kinds)):
            if kind == "file":
                extra[i] = table.locate(f"/proc/{pid}/map_files/{vma.start:x}-{vma.end:x}",
                                        vma.name, f"mapping of pid {pid}") or {}
    state = injected[pid] = _Injected(process, smaps)
    rem, scratch = state.main, state.scratch
    task = tasks.get(pid)
    core = {
        "pid": pid,
        "comm": st["comm"],
        "personality": int(open(f"/proc/{pid}/personality").read(), 16),
        "umask": int(status.get("Umask", "0022"), 8),
        "cwd": os.readlink(f"/proc/{pid}/cwd"),
        "root": os.readlink(f"/proc/{pid}/root"),
        "rlimits": context.dump_rlimits(pid),
        "sigactions": signals.actions_image(task.actions) if task else
                      signals.dump_actions(rem, scratch),
        "itimers": {} if task and task.itimers_idle else timers.dump_itimers(rem, scratch),
        "posix_timers": timers.dump_posix(rem, scratch, pid),
        "pending": [s.hex() for s in signals.peek_pending(pid, shared=True)],
        "context": context.process_image(task.mm_flags, task.child_subreaper)
                   if task else context.dump_process(rem, scratch),
        "fds": fds,
        "threads": [],
    }
    core["context"]["mdwe"] = context.dump_mdwe(rem)
    brk = task.brk if task else rem.call("brk", 0)
    mm = memory.mm_image(pid, st, brk, exe)
    mm["vmas"] = _LateVmas(smaps, kinds, extra)
    exe_dev, exe_ino = memory.file_identity(f"/proc/{pid}/exe")
    mm["exe_id"] = {"dev": exe_dev, "inode": exe_ino}
    if mnt_ns is not None:
        mm["exe_at"] = table.locate(f"/proc/{pid}/exe", exe, f"executable of pid {pid}")
    core["mnt_ns"] = mnt_ns
    if mnt_ns is not None:          # a cwd may be on a hidden mount: by mount and path
        core["cwd_at"] = table.locate(f"/proc/{pid}/cwd", core["cwd"], f"cwd of pid {pid}")
    filters = seccomp.Filters()
    for tid, thread in process.threads.items():
        trem, known = state.remotes[tid], tasks.get(tid)
        if known:
            tid_address = known.tid_address
            altstack = signals.altstack_image(thread.regs.rsp, known.altstack_sp,
                                              known.altstack_size, known.altstack_flags)
        else:
            out = scratch.reserve(8)
            trem.call("prctl", PR_GET_TID_ADDRESS, out, 0, 0, 0)
            tid_address = int.from_bytes(scratch.read(out, 8), "little")
            scratch.reset()
            altstack = signals.dump_altstack(trem, scratch)
        head, length = ctypes.c_uint64(0), ctypes.c_size_t(0)
        syscall("get_robust_list", tid, ctypes.byref(head), ctypes.byref(length))
        task_status = statuses[tid]
        core["threads"].append({
            "tid": tid,
            "comm": open(f"/proc/{pid}/task/{tid}/comm").read().rstrip("\n"),
            "regs": thread.regs.as_dict(),
            "xstate": get_xstate(tid).hex(),
            "sigmask": thread.sigmask,
            "pending": [s.hex() for s in thread.taken_signals +
                        signals.peek_pending(tid, shared=False)],
            "tid_address": tid_address,
            "robust_list": [head.value, length.value],
            "rseq": _rseq(tid),
            "altstack": altstack,
            "context": context.dump_thread(trem, scratch, tid, task_status,
                                           known.pdeath_signal if known else None),
            "creds": creds.dump(trem, task_status, known.securebits if known else None),
            "seccomp": filters.dump_thread(tid, task_status),
        })
    core["seccomp_filters"] = filters.entries
    if own_namespaces:          # the root's: what its namespaces hold
        core["namespaces"] = namespaces.dump(rem, scratch, own_namespaces)
    for tid, caught in state.caught().items():
        _thread_core(core, tid)["pending"] += [s.hex() for s in caught]
    return core, mm, private, shmem


class _LateVmas:
    """An mm image's VMA entries, made when the images are written: after the thaw with
    --leave-running (20,000 VMAs: ~25 ms less downtime).  What the frozen window had to
    ask (carried files, BPF maps, rings, mounts) is in ``extra``."""

    def __init__(self, smaps, kinds, extra):
        self.smaps, self.kinds, self.extra = smaps, kinds, extra

    def shmids(self):
        return {v.inode for v, kind in zip(self.smaps, self.kinds) if kind == "sysv"}

    def images(self):
        out = [memory.vma_image(v, kind) for v, kind in zip(self.smaps, self.kinds)]
        for i, fields in self.extra.items():
            out[i].update(fields)
        return out


def _thread_core(core, tid):
    return next(t for t in core["threads"] if t["tid"] == tid)


def _rseq(tid):
    try:
        _, conf = ptrace.get_rseq_configuration(tid)
    except OSError:
        return None
    if not conf.rseq_abi_pointer:
        return None
    return {"pointer": conf.rseq_abi_pointer, "size": conf.rseq_abi_size,
            "signature": conf.signature, "flags": conf.flags}


def _dump_pages(state, private, writer, stats, increments, follow):
    """Store the private pages worth storing; returns (pagemap, inherited): runs stored in
    pages-PID.img, and pages left in the parent chain (tracking.Increments.split).
    ``follow``: the CRC is read back during the copy (memory.push_pages), else when the
    writer completes."""
    pid = state.process.pid
    runs, inherited = _page_runs(state, private, increments)
    # a run never crosses a VMA: the one it starts in says whether it can be read
    starts = [v.start for v in private]
    vma_readable = ["r" in v.perms for v in private]
    readable = [vma_readable[bisect.bisect_right(starts, start) - 1] for start, _ in runs]
    name = f"pages-{pid}.img"
    out, follower = writer.raw(name), None
    try:
        pages, follower = memory.push_pages(state.main, state.scratch, pid, runs, readable,
                                            out, follow)
    finally:
        writer.close_raw(name, out, follower)     # its CRC completes in writer.complete()
    return _pagemap(runs, inherited, pages, stats)


def _page_runs(state, private, increments):
    """(runs [(start, end)] to store, inherited entries) of the frozen process: the pages
    worth storing, less those its parent image has unchanged; tracking armed where the
    image is to be a parent (pre-dump, --track-mem)."""
    pid = state.process.pid
    private_starts = {v.start for v in private}
    others = [v for v in state.vmas if v.start not in private_starts]
    scanner = memory.PageScanner(pid)
    try:
        runs = scanner.runs_of(private, others)
        # guards elsewhere: in the VMAs the kernel marks as maybe holding some (VmFlags
        # "gu", 6.18), not to walk every shared mapping's page tables in the window
        scanner.guards_in([v for v in others if "gu" in v.flags])
    finally:
        scanner.close()
    state.guards = scanner.guards
    if increments.active:
        return increments.split(state.main, pid, state.vmas, runs)
    return runs, []


def _pagemap(runs, inherited, pages, stats):
    """The mm image's (pagemap, inherited) of stored ``runs`` (``pages`` of them)."""
    stats.add("pages_written", pages)
    stats.add("pages_inherited", sum(e - s for s, e, _, _ in inherited) // memory.PAGE)
    return ([[start, (end - start) // memory.PAGE] for start, end in runs],
            [list(entry) for entry in inherited])


def _copy_pages(pid, runs, inherited, writer, stats):
    """A pre-dump's copy of ``runs`` of ``pid``, made from outside after the thaw (the
    pages were chosen, and tracking armed, while it was frozen); the mm image written."""
    name = f"pages-{pid}.img"
    out = writer.raw(name)
    try:
        stored, pages = memory.copy_pages(pid, runs, out)
    finally:
        writer.close_raw(name, out)
    pagemap, inherited = _pagemap(stored, inherited, pages, stats)
    writer.json(f"mm-{pid}.json", {"pagemap": pagemap, "inherited": inherited})


def pre_dump(pid, images_dir, *, parent=None):
    """Store the memory of the tree rooted at ``pid`` while it runs on, and track the pages
    it writes from now on, so that a later dump (``parent=images_dir``) or pre-dump stores
    only those.  Memory only: the final dump carries everything else.  The tree is frozen
    only to find the pages and arm the tracking; they are copied after the thaw, while it
    runs (what it writes meanwhile is tracked: the next dump stores it again)."""
    stats = Stats()
    if not isinstance(pid, int) or pid <= 0:
        raise DumpError(f"bad pid {pid!r}")
    writer = ImageWriter(images_dir)
    increments = tracking.Increments(images_dir, parent, keep=True)
    collectors = collect.Collectors(memory_only=True)
    try:
        with stats.stage("freeze"):
            tree = FrozenTree(pid).freeze()
    except BaseException:
        collectors.close()
        raise
    injected, plans = {}, {}        # plans: {pid: (runs to copy, inherited)}
    try:
        _check_tree(tree)
        tree_vmas, _, _ = _collect_tree(tree, collectors, stats)
        for process in tree.processes.values():
            if process.zombie:
                continue
            smaps = tree_vmas[process.pid]
            private = [v for v in smaps if not v.shared and
                       memory.classify(process.pid, v) in ("anon", "file", "carried")]
            statuses = {tid: process.status if tid == process.pid else
                        proc_status(f"{process.pid}/task/{tid}") for tid in process.threads}
            seccomp.suspend_all(statuses, SEIZE_OPTIONS)
            state = injected[process.pid] = _Injected(process, smaps)
            with stats.stage("memory"):
                plans[process.pid] = _page_runs(state, private, increments)
        for state in injected.values():
            _requeue_taken(state)
            state.cure()
    except BaseException as e:
        collectors.close()
        _undo(e, "pre-dump", injected, tree, writer, increments)
        raise
    tree.thaw()
    stats.times["downtime"] = tree.downtime
    stats.add("sleepers_not_back", tree.sleepers_not_back)

    def finish():                       # after the thaw: the copy reads the running tree
        with stats.stage("copy"):
            for process_pid, (runs, inherited) in plans.items():
                _copy_pages(process_pid, runs, inherited, writer, stats)
        increments.hand_over(writer)
        with stats.stage("write"):
            writer.complete()
        stats.total()
        writer.json("stats-dump.json", stats.as_dict())
        writer.finish(root_pid=pid, pids=sorted(tree.processes), kind="pre-dump",
                      parent=increments.parent_rel)
    _finish_running("pre-dump", finish, writer, increments)
    stats.total()
    return DumpResult(pid, os.fspath(images_dir), stats.as_dict(), sorted(tree.processes))


def _dump_shmem(pid, shmem, writer, stats, done):
    """Shared anonymous memory objects mapped by ``pid`` and not in ``done`` (inodes of the
    objects dumped already, updated): {inode: image}."""
    out = {}
    for vma in shmem:
        if vma.inode in done:
            continue
        done.add(vma.inode)
        name = f"shmem-{vma.inode}.img"
        raw = writer.raw(name)
        try:
            size, ranges = memory.dump_shmem(pid, vma, raw)
        finally:
            writer.close_raw(name, raw)
        stats.add("shmem_bytes", raw.size)
        out[str(vma.inode)] = {"size": size, "ranges": ranges, "image": name}
    return out


def _requeue_taken(state):
    """Signals the kernel had already taken for delivery when a thread stopped, or that
    arrived while we ran calls in it, are queued again (from inside, so any si_code goes)."""
    pid = state.process.pid
    if state.scratch is None:
        return
    pending = {}
    for tid, thread in state.process.threads.items():
        pending[tid] = list(thread.taken_signals)
        thread.taken_signals = []
    for tid, caught in state.caught().items():
        pending[tid] = pending.get(tid, []) + caught
        state.remotes[tid].caught_signals = []
    for tid, infos in pending.items():
        if infos:
            signals.queue_pending(state.remotes[tid], state.scratch, pid, tid,
                                  [i.hex() for i in infos], shared=False)

