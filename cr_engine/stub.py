"""The code a restored process runs before it becomes what was dumped.

The restorer forks the root stub with the root's pid; every stub forks its own children with
their pids (clone3 set_tid), creates its session or process group at the point the plan says,
moves the file descriptions it inherited from the restorer onto the dumped fd numbers, and
reports ready.  Then it blocks until the restorer, through ptrace, replaces its memory,
threads and registers.  Stubs run plain Python: they were forked from a single-threaded
process and never return to the caller's code (they end in os._exit on any error).

Forking a process and unmapping its memory later both cost in proportion to what it has
mapped, and stubs start as copies of the restorer, whatever its size.  For a big tree the
root stub first starts over as a fresh interpreter that loads only the stub's modules
(relaunch()): every other stub is then a fork of that small process.
"""

import collections
import copy
import ctypes
import fcntl
import json
import os
import pickle
import resource
import select
import signal
import sys
import time

from kernel.libc import syscall
from kernel.namespaces import CLONE_NEWPID, setns
from kernel.process import CLONE_PARENT, PR_SET_CHILD_SUBREAPER, fork3, pidfd_open, prctl

from . import epoll, fd_layout, namespaces, pstree, ptys
from .pstree import exit_like

PR_SET_NAME = 15


class StubContext:
    """What every stub needs, prepared by the restorer before forking (inherited)."""

    def __init__(self, procs, steps, cores, file_fds, async_fds, service, ready_w, go_r,
                 ipc=None, joined=None, mounts=None, epoll_items=None, transit=None):
        self.procs = procs            # pid -> pstree entry
        self.steps = steps            # pid -> plan steps
        self.cores = cores            # pid -> core image (alive processes)
        self.file_fds = file_fds      # file id -> fd in the restorer
        self.async_fds = async_fds    # file id -> (pid, fd) that sets O_ASYNC
        self.service = service        # pid -> {name: fd in the restorer} (pages, exe, maps)
        self.ready_w, self.go_r = ready_w, go_r
        self.ipc = ipc                # sysv_ipc.Objects: those this stub makes
        self.joined = joined or {}    # namespace kind -> fd of the one made for the tree
        self.mounts = mounts          # mnt_build.Mounts.stub_view(): namespaces to join
        self.epoll_items = epoll_items or {}  # pid -> epoll items it adds itself
        # zombie group leader -> (read, write) pipe: its group's members say they joined
        self.transit = transit or {}


# Run by the relaunched root stub: the cr_engine package without its __init__, which
# imports the whole engine (some 150 ms), then the context the restorer wrote to a memfd.
LAUNCHER = """
import json, os, pickle, sys, types
top, context_fd, pid, ready_w = sys.argv[1], *map(int, sys.argv[2:5])
try:
    sys.path.insert(0, top)
    package = types.ModuleType("cr_engine")
    package.__path__ = [os.path.join(top, "cr_engine")]
    sys.modules["cr_engine"] = package
    from cr_engine import stub
    ctx = pickle.loads(os.pread(context_fd, os.fstat(context_fd).st_size, 0))
    os.close(context_fd)
except BaseException as e:
    os.write(ready_w, (json.dumps({"pid": pid, "error": f"relaunched: {e!r}"}) + "\\n").encode())
    os._exit(70)
stub.start(ctx, pid)
"""


# What a stub reads of a core image: the rest (threads' registers...) stays out of the
# relaunched root, of which every stub is a copy
STUB_CORE = ("namespaces", "ctty_file", "fds", "cwd", "umask", "root")


def context_file(ctx):
    """A memfd holding ``ctx`` for relaunch(), the cores cut to STUB_CORE (pickle: our own
    objects, read by our own child; the images themselves are JSON)."""
    small = copy.copy(ctx)
    small.cores = {pid: {key: core[key] for key in STUB_CORE if key in core}
                   for pid, core in ctx.cores.items()}
    fd = os.memfd_create("cr_engine-stub-context", os.MFD_CLOEXEC)
    os.write(fd, pickle.dumps(small))
    return fd


def relaunch(ctx, pid, context_fd):
    """In the root stub: exec a fresh interpreter that becomes the stub of ``pid`` with the
    context in ``context_fd``, every fd kept.  Returns only when the exec failed: the
    caller goes on as the fork it is."""
    try:
        for name in os.listdir("/proc/self/fd"):
            try:
                os.set_inheritable(int(name), True)
            except OSError:
                pass                        # the listing's own fd, closed by now
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # /proc/self/exe: the restorer's own interpreter, as a fork would have been
        os.execv("/proc/self/exe", [sys.executable or "python3", "-I", "-S", "-c", LAUNCHER,
                                    top, str(context_fd), str(pid), str(ctx.ready_w)])
    except OSError:
        pass


def start(ctx, pid, context_fd=None):
    """In a freshly forked process that has pid ``pid``: become its stub.  Never returns.
    ``context_fd``: relaunch() first, with this copy of ``ctx``."""
    if context_fd is not None:
        relaunch(ctx, pid, context_fd)
    try:
        _become(ctx, pid)
    except BaseException as e:            # noqa: BLE001 - report everything, then vanish
        _report(ctx, {"pid": pid, "error": f"{type(e).__name__}: {e}"})
        os._exit(70)
    os._exit(71)


def _become(ctx, pid):
    entry, steps = ctx.procs[pid], ctx.steps[pid]
    if pid in ctx.cores and ctx.cores[pid].get("namespaces"):
        # the root's, before any child
        namespaces.enter(ctx.cores[pid]["namespaces"], ctx.joined)
    if ctx.mounts:
        from . import mnt_build                 # here: a relaunched root imports less
        mnt_build.make_late(ctx.mounts, pid)    # a pid namespace's init: its proc mounts
        mnt_build.join(ctx.mounts, pid)
    if entry.get("comm"):
        prctl(PR_SET_NAME, ctypes.c_char_p(entry["comm"].encode()[:15]))
    _default_signals()
    if steps.get("route_target"):             # where orphans routed below us must stop
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    for child in steps["before"]:
        _fork(ctx, pid, child)
    for spec in steps.get("helpers", ()):
        if spec.get("before"):
            _helper(ctx, pid, spec)
    if steps["setsid"]:
        os.setsid()
        if ctx.cores.get(pid, {}).get("ctty_file"):    # before its children: they inherit it
            ptys.take_ctty(ctx.file_fds[ctx.cores[pid]["ctty_file"]])
    elif steps["pgid"] == "create":
        os.setpgid(0, 0)
    elif steps["pgid"] == "join":
        _join_group(pstree.own_id(entry, "pgid"))
        if entry["pgid"] in ctx.transit:      # its zombie leader waits for us to leave
            os.write(ctx.transit[entry["pgid"]][1], b"j")
    for child in steps["after"]:
        _fork(ctx, pid, child)
    for spec in steps.get("helpers", ()):
        if not spec.get("before"):
            _helper(ctx, pid, spec)
    for child in steps.get("siblings", ()):   # our parent's: ours to make (our session)
        _fork(ctx, pid, child, CLONE_PARENT)
    for route in steps.get("routes", ()):     # a descendant's: climbs there from here
        _route(ctx, pid, route)
    if steps.get("transit"):                  # our group, which we leave at the end
        os.setpgid(0, 0)
        if steps.get("rejoin"):               # a zombie: once its members joined it
            _wait_joiners(ctx.transit[pid][0], steps["joiners"])
            _join_group(pstree.own_id(entry, "pgid"))
    ids = pstree.levels(entry)
    if ids.get("for_children", ids.get("pidns")) != ids.get("pidns"):
        os.close(_enter_pidns(ctx, pid, ids["for_children"]))   # and stay there
    if entry["zombie"]:
        exit_like(entry["exit_status"])
    level = len(ids["pid"]) - 1
    for child in entry["children"]:       # zombies before we say ready: ours, and those
        if ctx.procs[child]["zombie"]:    # a sibling, helper or route forked for us
            _wait_zombie(pstree.levels(ctx.procs[child])["pid"][level])
    if ctx.ipc is not None:
        ctx.ipc.make(pid)                 # as this pid: the objects' creator / last user
    service = _place_fds(ctx, pid)
    core = ctx.cores[pid]
    if "cwd" in service:
        os.fchdir(service["cwd"])         # on a mount of the tree's, perhaps hidden
    else:
        os.chdir(core["cwd"])
    os.umask(core["umask"])
    if core["root"] != "/":
        os.chroot(core["root"])           # last: every path above is seen from our root
    _report(ctx, {"pid": pid, "service": service})
    while True:
        os.read(ctx.go_r, 1)              # the restorer interrupts us here


def _default_signals():
    """Every signal to its default action, none blocked: once, in the root stub; the
    others are forked from a stub that did it and inherit it (62 calls each less)."""
    global _signals_default
    if _signals_default:
        return
    default = ctypes.create_string_buffer(32)           # handler 0, flags 0, mask 0
    for sig in range(1, 65):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            syscall("rt_sigaction", sig, default, None, 8)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _signals_default = True


_signals_default = False


def _wait_joiners(fd, count, timeout=5.0):
    """Wait for ``count`` bytes on ``fd``: the members of our group that join it."""
    deadline = time.monotonic() + timeout
    got = 0
    while got < count:
        if not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
            raise TimeoutError(f"{count - got} of {count} members did not join our group")
        got += len(os.read(fd, count - got))


def _wait_zombie(pid, timeout=5.0):
    """Wait until our child ``pid`` (another process may still be forking it for us, with
    CLONE_PARENT, or routing it here) has exited; it stays a zombie."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                return
        except ChildProcessError:       # not ours yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"our child {pid} did not become a zombie")
        time.sleep(0.001)


def _join_group(pgid, timeout=5.0):
    """setpgid() into a group the plan has another stub create first: that stub may be a
    sibling's, running alongside, so wait until the group exists (EPERM until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.setpgid(0, pgid)
        except PermissionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def _fork(ctx, parent, child, flags=0):
    """Fork ``child`` with its pids: the init of a pid namespace of its own with
    CLONE_NEWPID, a process of a namespace another made from inside that namespace."""
    mine, theirs = (pstree.levels(ctx.procs[pid]).get("pidns") for pid in (parent, child))
    back = None
    if theirs != mine:
        if pstree.own_id(ctx.procs[child]) == 1:
            flags |= CLONE_NEWPID
        else:
            back = _enter_pidns(ctx, parent, theirs)
    try:
        # in a user namespace of the tree's own only the tree's levels are ours to choose
        # CLONE_PARENT: the child's exit signal is our parent's (clone3 wants 0 here)
        pid, _ = fork3(flags=flags, exit_signal=0 if flags & CLONE_PARENT else signal.SIGCHLD,
                       set_tid=pstree.set_tid(ctx.procs[child], own_only="user" in ctx.joined))
        if pid == 0:
            start(ctx, child)
    finally:
        if back is not None:
            setns(back, CLONE_NEWPID)
            os.close(back)


def _route(ctx, parent, route):
    """A helper (at free pids) that forks ``route["member"]`` and exits: the member, with
    our session and group, climbs to the nearest subreaper above us - its parent, flagged
    for the time of the fork (plan: ``route_target``)."""
    _short_lived(ctx, parent, route["ids"], f"routing {route['member']}",
                 lambda: _fork(ctx, parent, route["member"]))


def _helper(ctx, parent, spec):
    """A child standing for a dead session or group leader, with its pids: it makes the
    session or group, forks its members as our children (CLONE_PARENT), and exits."""
    def stand_in():
        if spec["setsid"]:
            os.setsid()
        else:
            os.setpgid(0, 0)
        for child in spec["members"]:
            _fork(ctx, parent, child, CLONE_PARENT)
    _short_lived(ctx, parent, spec["ids"], f"the helper for leader {spec['ids'][-1]}",
                 stand_in)


def _short_lived(ctx, parent, ids, what, body):
    """Fork a child with pids ``ids`` (outermost first) that runs ``body`` and exits; reap
    it (it failed: reported, and raised here)."""
    numbers = list(reversed(ids))
    pid, _ = fork3(set_tid=numbers[:-1] if "user" in ctx.joined else numbers)
    if pid == 0:
        try:
            body()
        except BaseException as e:        # noqa: BLE001 - reported, then gone
            _report(ctx, {"pid": parent, "error": f"{what}: {type(e).__name__}: {e}"})
            os._exit(70)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        raise RuntimeError(f"{what} failed")


def _enter_pidns(ctx, pid, ns, timeout=5.0):
    """Make the children of ``pid`` (this stub) go into pid namespace ``ns`` (a deeper one,
    whose init another stub may still be making): an fd of our own one, to come back."""
    init = next(e for e in ctx.procs.values()
                if pstree.levels(e).get("pidns") == ns and pstree.own_id(e) == 1)
    level = len(pstree.levels(ctx.procs[pid])["pid"]) - 1
    number = pstree.levels(init)["pid"][level]          # as we number it
    deadline = time.monotonic() + timeout
    while True:
        try:
            pidfd = pidfd_open(number)
            break
        except ProcessLookupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
    back = os.open("/proc/thread-self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(pidfd, CLONE_NEWPID)
    except BaseException:
        os.close(back)
        raise
    finally:
        os.close(pidfd)
    return back


def _place_fds(ctx, pid):
    """dup2 the inherited descriptions onto the dumped fd numbers, lowest first (fd_layout:
    about as many fds open at once as the process has); close everything else but the
    service fds the restorer will use from inside (returned: name -> fd here)."""
    core = ctx.cores[pid]
    epoll.add_here(ctx.epoll_items.get(pid, ()), ctx.file_fds)   # every description still here
    # (an io_uring ring is made later, inside the process: its numbers stay free)
    targets = {e["fd"]: (ctx.file_fds[e["file"]], e["cloexec"]) for e in core["fds"]
               if e["file"] in ctx.file_fds}
    service = dict(ctx.service[pid])
    service["ready"], service["go"] = ctx.ready_w, ctx.go_r
    uses = collections.Counter(src for src, _ in targets.values())
    needed = set(uses) | set(service.values())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # close_range(2) over the gaps: a stub inherits every fd of the restorer, hundreds in
    # a big tree (a file per process: pages, exe)
    low = 0
    for fd in sorted(needed) + [max(hard, max(needed, default=0) + 1)]:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    top = max(list(targets) + list(needed), default=2)
    if top + len(needed) + 16 >= soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    layout = fd_layout.Layout(needed, top + 1)
    for fd in sorted(targets):
        src, cloexec = targets[fd]
        if layout.place(src, fd, inheritable=not cloexec) == service["ready"]:
            ctx.ready_w = layout.at[service["ready"]]   # where _report() writes, meanwhile
        uses[src] -= 1
        if not uses[src] and src not in service.values():
            layout.release(src)                     # its last use
    for e in core["fds"]:
        if ctx.async_fds.get(e["file"]) == (pid, e["fd"]):
            fcntl.fcntl(e["fd"], fcntl.F_SETFL, fcntl.fcntl(e["fd"], fcntl.F_GETFL) | os.O_ASYNC)
    # the service fds above the tree's numbers, close-on-exec; then nothing else inherited
    service_fds = {name: fcntl.fcntl(layout.at[src], fcntl.F_DUPFD_CLOEXEC, top + 1)
                   for name, src in service.items()}
    layout.close_rest()
    ctx.ready_w, ctx.go_r = service_fds["ready"], service_fds["go"]
    return service_fds


def _report(ctx, message):
    data = (json.dumps(message) + "\n").encode()
    os.write(ctx.ready_w, data[:4000])
