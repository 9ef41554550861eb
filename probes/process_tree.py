"""Process tree: pids and pid namespaces, subreapers, clone3/set_tid, pidfds.

Everything that creates processes or changes process state runs in forked
children; the prober only forks children that exit at once (or when told)
and reaps every one of them.
"""

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct

from kernel import btf, process, procfs
from kernel.namespaces import CLONE_NEWPID

from . import sandbox
from .common import closing_fds, vmlinux_btf
from .registry import (Call, absent, attempt, by_errno, errname, never_merged, present, probe,
                       undecided)

EINVAL, ENOSYS, EPERM, E2BIG = errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.E2BIG
ENOENT, ENOTTY, ESRCH = errno.ENOENT, errno.ENOTTY, errno.ESRCH

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
WANTED_PID = 4242          # asked for inside fresh pid namespaces only
_BAD_POINTER = (1 << 64) - 1



@contextlib.contextmanager
def child_process(exit_code=0, hold=False):
    """Fork a child that exits with ``exit_code`` at once, or (hold=True) once we leave.

    Yields a dict {"pid": pid, "reaped": False}; set "reaped" when the caller
    reaped it, otherwise it is reaped here.
    """
    hold_r, hold_w = os.pipe() if hold else (-1, -1)
    pid = os.fork()
    if pid == 0:  # child: only waits for EOF and exits
        try:
            if hold:
                os.close(hold_w)
                os.read(hold_r, 1)
        finally:
            os._exit(exit_code)
    if hold:
        os.close(hold_r)
    state = {"pid": pid, "reaped": False}
    try:
        yield state
    finally:
        if hold:
            os.close(hold_w)
        if not state["reaped"]:
            os.waitpid(pid, 0)


def _exit_code(status):
    return os.waitstatus_to_exitcode(status)


def as_init_of_new_pidns(fn, timeout=2.0):
    """``fn()`` computed by pid 1 of a fresh pid namespace: a clone(CLONE_NEWPID) child
    (sandbox.in_child's contract), one process cheaper than unsharing in a child that
    then forks."""
    return sandbox.in_child(fn, timeout=timeout,
                            fork=lambda: process.fork_clone(CLONE_NEWPID))


# --- CABA -------------------------------------------------------------------------------------
CABA_SERIES = ("Pavel Tikhomirov, CABA (\"Closest Alive Born Ancestor\") process tree info, "
               "LKML v1 2022-06-10 .. v4 2022-09")


def _btf_strings_have(word):
    """Does the raw BTF string table contain ``word`` at all? (cheap, no full parse)"""
    with open(btf.VMLINUX, "rb", buffering=0) as f:
        header = f.read(24)
        hdr_len, _type_off, _type_len, str_off, str_len = struct.unpack_from("<5I", header, 4)
        f.seek(hdr_len + str_off)
        strings = bytearray(str_len)
        view, got = memoryview(strings), 0
        while got < str_len:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
    return b"\0" + word.encode() + b"\0" in strings


def _struct_has_member(types, type_id, name, depth=0):
    for member, member_type, _offset in types.members(type_id):
        if member == name:
            return True
        nested = types.kind(member_type) in (btf.KIND_STRUCT, btf.KIND_UNION)
        if not member and nested and depth < 3:
            if _struct_has_member(types, member_type, name, depth + 1):
                return True
    return False


def caba_exercise():
    """Observation: NScaba: line in /proc/self/status? caba member in BTF task_struct?"""
    seen = {"status_line": "NScaba" in procfs.status(), "btf": True, "member": False}
    try:
        # a full BTF parse costs ~80 ms: only do it when the name exists at all
        if not vmlinux_btf.cache_info().currsize and not _btf_strings_have("caba"):
            return seen
        types = vmlinux_btf()
    except OSError:
        seen.update(btf=False, member=None)
        return seen
    task = types.find("task_struct", btf.KIND_STRUCT)
    seen["member"] = bool(task) and _struct_has_member(types, task, "caba")
    return seen


def caba_judge(seen):
    if seen["status_line"]:
        return present("/proc/self/status has an NScaba: line")
    if seen["member"]:
        return present("kernel BTF struct task_struct has a caba member")
    if not seen["btf"]:
        return absent("no NScaba: line in /proc/self/status (no BTF to check task_struct)")
    return absent("no NScaba: line in /proc/self/status, no caba member in BTF task_struct")


never_merged("caba", "process_tree", proposed=CABA_SERIES,
             why_absent="CABA (closest alive born ancestor of a task, for restoring reparented "
                        "trees) was never merged.",
             exercise=caba_exercise, judge=caba_judge, examples=[
                 ({"status_line": True, "btf": True, "member": True}, True),
                 ({"status_line": False, "btf": True, "member": True}, True),
                 ({"status_line": False, "btf": True, "member": False}, False),
                 ({"status_line": False, "btf": False, "member": None}, False),
             ])


# --- subreaper, ns_last_pid -------------------------------------------------------------------
def _subreaper_in_child():
    before = process.prctl_get_int(process.PR_GET_CHILD_SUBREAPER)
    process.prctl(process.PR_SET_CHILD_SUBREAPER, 1)
    return [before, process.prctl_get_int(process.PR_GET_CHILD_SUBREAPER)]


def _judge_subreaper(call):
    if call.ok:
        if call.value == [0, 1]:
            return present("PR_SET_CHILD_SUBREAPER 1, PR_GET_CHILD_SUBREAPER -> 1 (in a child)")
        return undecided(f"PR_GET_CHILD_SUBREAPER before/after set: {call.value}")
    if call.errno == EINVAL:
        return absent("PR_SET_CHILD_SUBREAPER -> EINVAL")
    return undecided(f"PR_SET_CHILD_SUBREAPER -> {call.describe()}")


@probe("child_subreaper", "process_tree", since="3.4", judge=_judge_subreaper,
       examples=[(Call(0, [0, 1]), True), (Call(0, [0, 0]), None), (Call(EINVAL), False),
                 (Call(EPERM), None)])
def child_subreaper():
    """PR_SET/GET_CHILD_SUBREAPER: orphans of a subtree reparent to a chosen ancestor."""
    return attempt(sandbox.in_child, _subreaper_in_child)


def _write_ns_last_pid():
    """As pid 1 of a new pid namespace: write ns_last_pid there and read it back."""
    fd = os.open(NS_LAST_PID, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.write(fd, b"%d" % (WANTED_PID - 1))
        return os.pread(fd, 32, 0).strip() == b"%d" % (WANTED_PID - 1)
    finally:
        os.close(fd)


def _judge_ns_last_pid(seen):
    if not seen["exists"]:
        return absent(f"no {NS_LAST_PID}")
    call = Call(*seen["write"])
    if call.ok:
        if call.value:
            return present("written and read back by pid 1 of a new pid namespace")
        return undecided("write accepted but the value read back differs")
    return undecided(f"writing it in a new pid namespace -> {call.describe()}")


@probe("ns_last_pid", "process_tree", since="3.3", needs="CAP_SYS_ADMIN",
       judge=_judge_ns_last_pid,
       examples=[({"exists": True, "write": [0, True]}, True),
                 ({"exists": True, "write": [0, False]}, None),
                 ({"exists": True, "write": [EPERM, None]}, None),
                 ({"exists": False, "write": [ENOENT, None]}, False)])
def ns_last_pid():
    """/proc/sys/kernel/ns_last_pid: writable, so the next fork gets a chosen pid.

    Proven inside a fresh pid namespace (its pid 1 writes and reads back), so
    the host's counter is never touched.
    """
    if not os.path.exists(NS_LAST_PID):
        return {"exists": False, "write": [ENOENT, None]}
    call = attempt(as_init_of_new_pidns, _write_ns_last_pid)
    return {"exists": True, "write": list(call)}


# --- clone3 -----------------------------------------------------------------------------------
@probe("clone3", "process_tree", since="5.3",
       judge=by_errno("clone3() fork", present_on=(0,), absent_on=("ENOSYS",)),
       examples=[(Call(0, 42), True), (Call(ENOSYS), False), (Call(EPERM), None)])
def clone3():
    """clone3(2): fork through struct clone_args (a real child that exits with 42)."""
    call = attempt(process.fork3)
    if not call.ok:
        return call
    pid, _ = call.value
    if pid == 0:
        os._exit(42)
    code = _exit_code(os.waitpid(pid, 0)[1])
    return Call(0, code) if code == 42 else Call(errno.ECHILD)


@probe("clone3_set_tid", "process_tree", since="5.5", criu_name="clone3_set_tid",
       judge=by_errno("clone3(set_tid=-1, set_tid_size=0)", present_on=("EINVAL",),
                      absent_on=("ENOSYS", "E2BIG")),
       examples=[(Call(EINVAL), True), (Call(E2BIG), False), (Call(ENOSYS), False),
                 (Call(EPERM), None)])
def clone3_set_tid():
    """clone3 knows set_tid (CRIU's check): EINVAL for set_tid without a size, E2BIG
    when struct clone_args has no set_tid field yet, ENOSYS without clone3."""
    args = process.CloneArgs(set_tid=_BAD_POINTER, exit_signal=signal.SIGCHLD)
    call = attempt(process.clone3, args)
    if call.ok:  # cannot happen; never let a stray copy of the prober run on
        if call.value == 0:
            os._exit(0)
        os.waitpid(call.value, 0)
    return call


def _set_tid_keeps_last_pid():
    """As pid 1 of a new pid namespace: move the cursor with 3 plain forks, then fork with
    set_tid; ns_last_pid before and after."""
    for _ in range(3):
        pid, _ = process.fork3()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    with open(NS_LAST_PID) as f:
        before = int(f.read())
    pid, _ = process.fork3(set_tid=[WANTED_PID])
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with open(NS_LAST_PID) as f:
        after = int(f.read())
    return {"before": before, "after": after, "pid": pid}


def _judge_set_tid_last_pid(call):
    if not call.ok:
        if call.errno in (ENOSYS, E2BIG):
            return absent(f"clone3 with set_tid -> {call.describe()}")
        return undecided(f"forking with set_tid in a new pid namespace -> {call.describe()}")
    seen = call.value
    if seen["pid"] != WANTED_PID:
        return undecided(f"clone3(set_tid=[{WANTED_PID}]) gave pid {seen['pid']}")
    if seen["after"] == seen["before"]:
        return present(f"ns_last_pid stays {seen['before']} across a fork with set_tid "
                       f"(pid {WANTED_PID})")
    return absent(f"ns_last_pid went from {seen['before']} to {seen['after']} with a fork "
                  f"at pid {WANTED_PID}")


@probe("set_tid_keeps_ns_last_pid", "process_tree", since="5.5", needs="CAP_SYS_ADMIN",
       judge=_judge_set_tid_last_pid,
       examples=[(Call(0, {"before": 4, "after": 4, "pid": WANTED_PID}), True),
                 (Call(0, {"before": 4, "after": WANTED_PID, "pid": WANTED_PID}), False),
                 (Call(0, {"before": 4, "after": 4, "pid": 5}), None),
                 (Call(ENOSYS), False), (Call(EPERM), None)])
def set_tid_keeps_ns_last_pid():
    """A fork with set_tid leaves its pid namespace's ns_last_pid alone: how the engine
    makes a process inside a namespace of the tree to read and write that value without
    moving it."""
    return attempt(as_init_of_new_pidns, _set_tid_keeps_last_pid)


def _fork_with_wanted_pid():
    """As pid 1 of a new pid namespace: fork a child with set_tid=[WANTED_PID].

    clone3 returns the child's pid in our (the new) namespace; the child reads its
    own NSpid line to show what the kernel gave it."""
    read_end, write_end = os.pipe()
    pid, _ = process.fork3(set_tid=[WANTED_PID])
    if pid == 0:
        try:
            with open("/proc/thread-self/status", "rb") as f:
                os.write(write_end, next((line for line in f if line.startswith(b"NSpid:")),
                                         b""))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        nspid = os.read(read_end, 256).split()[1:]
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return {"clone3": pid, "nspid": [int(p) for p in nspid]}


def _judge_set_tid_pid(call):
    if call.ok:
        got, nspid = call.value["clone3"], call.value["nspid"]
        if got == WANTED_PID and nspid[-1:] == [WANTED_PID]:
            return present(f"clone3(set_tid=[{WANTED_PID}]) in a new pid namespace -> "
                           f"{got}; the child's NSpid: {' '.join(map(str, nspid))}")
        return undecided(f"clone3(set_tid=[{WANTED_PID}]) -> {got}, NSpid {nspid}")
    if call.errno in (ENOSYS, E2BIG):
        return absent(f"clone3 with set_tid -> {call.describe()}")
    return undecided(f"clone3 with set_tid in a new pid namespace -> {call.describe()}")


@probe("clone3_set_tid_pid", "process_tree", since="5.5", needs="CAP_SYS_ADMIN",
       judge=_judge_set_tid_pid,
       examples=[(Call(0, {"clone3": WANTED_PID, "nspid": [31000, WANTED_PID]}), True),
                 (Call(0, {"clone3": 2, "nspid": [31000, 2]}), None),
                 (Call(E2BIG), False), (Call(ENOSYS), False), (Call(EPERM), None),
                 (Call(EINVAL), None)])
def clone3_set_tid_pid():
    """A real child created with a chosen pid (set_tid) inside a fresh pid namespace."""
    return attempt(as_init_of_new_pidns, _fork_with_wanted_pid)


# --- pidfds -----------------------------------------------------------------------------------
def _fdinfo(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@probe("pidfd_open", "process_tree", since="5.3",
       judge=by_errno("pidfd_open(getpid())", present_on=(0,), absent_on=("ENOSYS",)),
       examples=[(Call(0, "12"), True), (Call(ENOSYS), False), (Call(EINVAL), None)])
def pidfd_open():
    """pidfd_open(2): a file descriptor that refers to a process (fdinfo Pid: as value)."""
    with closing_fds() as fds:
        call = attempt(process.pidfd_open, os.getpid())
        if not call.ok:
            return call
        fds.append(call.value)
        return Call(0, f"fd, fdinfo Pid: {_fdinfo(call.value).get('Pid', '?')}")


_STOLEN_VALUE = 1984


def _pidfd_getfd_round_trip():
    """CRIU's check: steal one end of a socketpair from ourselves, read through it."""
    seen = {"pidfd_open": None, "pidfd_getfd": None, "read": None}
    with closing_fds() as fds:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            a.send(_STOLEN_VALUE.to_bytes(4, "little"))
            call = attempt(process.pidfd_open, os.getpid())
            seen["pidfd_open"] = call.errno
            if not call.ok:
                return seen
            fds.append(call.value)
            call = attempt(process.pidfd_getfd, call.value, b.fileno())
            seen["pidfd_getfd"] = call.errno
            if call.ok:
                fds.append(call.value)
                seen["read"] = int.from_bytes(os.read(call.value, 4), "little")
    return seen


def _judge_pidfd_getfd(seen):
    if seen["pidfd_open"]:
        return (absent if seen["pidfd_open"] == ENOSYS else undecided)(
            f"pidfd_open -> {errname(seen['pidfd_open'])}")
    code = seen["pidfd_getfd"]
    if code == 0:
        if seen["read"] == _STOLEN_VALUE:
            return present("pidfd_getfd(self, socket) -> fd reading the same socket")
        return undecided(f"stolen fd read {seen['read']}, wanted {_STOLEN_VALUE}")
    return (absent if code == ENOSYS else undecided)(f"pidfd_getfd -> {errname(code)}")


def _judge_pidfd_store(seen):
    verdict = _judge_pidfd_getfd(seen)
    if verdict.present:
        return present("pidfd_open and pidfd_getfd work (CRIU keeps pidfds of the tree in a "
                       "pidfd store across pre-dumps)")
    return verdict


_GETFD_EXAMPLES = [
    ({"pidfd_open": 0, "pidfd_getfd": 0, "read": _STOLEN_VALUE}, True),
    ({"pidfd_open": 0, "pidfd_getfd": 0, "read": 7}, None),
    ({"pidfd_open": 0, "pidfd_getfd": ENOSYS, "read": None}, False),
    ({"pidfd_open": 0, "pidfd_getfd": EPERM, "read": None}, None),
    ({"pidfd_open": ENOSYS, "pidfd_getfd": None, "read": None}, False),
    ({"pidfd_open": errno.EMFILE, "pidfd_getfd": None, "read": None}, None),
]


@probe("pidfd_getfd", "process_tree", since="5.6", judge=_judge_pidfd_getfd,
       examples=_GETFD_EXAMPLES)
def pidfd_getfd():
    """pidfd_getfd(2): duplicate another process's fd into ours."""
    return _pidfd_getfd_round_trip()


@probe("pidfd_store", "process_tree", since="5.6", criu_name="pidfd_store",
       judge=_judge_pidfd_store, examples=_GETFD_EXAMPLES)
def pidfd_store():
    """CRIU's pidfd_store: both pidfd_open and pidfd_getfd work."""
    return _pidfd_getfd_round_trip()


@probe("pidfd_send_signal", "process_tree", since="5.1",
       judge=by_errno("pidfd_send_signal(pidfd(self), 0)", present_on=(0,),
                      absent_on=("ENOSYS",)),
       examples=[(Call(0, 0), True), (Call(ENOSYS), False), (Call(EPERM), None)])
def pidfd_send_signal():
    """pidfd_send_signal(2): signal a process through its pidfd (signal 0 to ourselves)."""
    with closing_fds() as fds:
        call = attempt(process.pidfd_open, os.getpid())
        if not call.ok:
            # no pidfd_open (5.1/5.2): a /proc/<pid> directory fd is a pidfd there
            call = attempt(os.open, f"/proc/{os.getpid()}", os.O_RDONLY | os.O_DIRECTORY)
            if not call.ok:
                return call
        fds.append(call.value)
        return attempt(process.pidfd_send_signal, call.value, 0)


UNKNOWN_PIDFD_IOCTL = 0xFF7E     # _IO(PIDFS_IOCTL_MAGIC, 0x7e): defined by no kernel


def _judge_get_info(seen):
    if seen["errno"] == 0:
        if seen["pid"] == seen["self"]:
            return present(f"PIDFD_GET_INFO(self) -> pid {seen['pid']}, ppid {seen['ppid']}, "
                           f"mask {seen['mask']:#x}", mask=seen["mask"],
                           cgroupid=seen["cgroupid"])
        return undecided(f"PIDFD_GET_INFO answered pid {seen['pid']}, we are {seen['self']}")
    if seen["errno"] in (ENOTTY, ENOSYS):
        return absent(f"PIDFD_GET_INFO -> {errname(seen['errno'])}")
    if seen["errno"] == seen.get("unknown"):     # 6.11-6.12: EINVAL to any with an argument
        return absent(f"PIDFD_GET_INFO -> {errname(seen['errno'])}, as an unknown pidfd "
                      f"ioctl does")
    return undecided(f"PIDFD_GET_INFO -> {errname(seen['errno'])}")


@probe("pidfd_get_info", "process_tree", since="6.13", judge=_judge_get_info,
       examples=[({"errno": 0, "pid": 10, "self": 10, "ppid": 1, "mask": 7, "cgroupid": 1},
                  True),
                 ({"errno": 0, "pid": 11, "self": 10, "ppid": 1, "mask": 7, "cgroupid": 1},
                  None),
                 ({"errno": ENOTTY}, False), ({"errno": ENOSYS}, False),
                 ({"errno": EINVAL, "unknown": EINVAL}, False),
                 ({"errno": EINVAL, "unknown": ENOTTY}, None), ({"errno": EINVAL}, None)])
def pidfd_get_info():
    """PIDFD_GET_INFO ioctl: pid, ppid, credentials, cgroup id (and exit status) of a pidfd."""
    with closing_fds() as fds:
        call = attempt(process.pidfd_open, os.getpid())
        if not call.ok:
            return {"errno": call.errno}
        fds.append(call.value)
        mask = process.PIDFD_INFO_PID | process.PIDFD_INFO_CREDS | process.PIDFD_INFO_CGROUPID
        pidfd = call.value
        call = attempt(process.pidfd_get_info, pidfd, mask)
        if not call.ok:
            # what the pidfd says to an ioctl nobody defined, given an argument as this one
            # is (6.11-6.12 refuse any with one: EINVAL), to tell "unknown" apart
            return {"errno": call.errno, "unknown": attempt(
                fcntl.ioctl, pidfd, UNKNOWN_PIDFD_IOCTL, bytearray(64)).errno}
        info = call.value
        return {"errno": 0, "pid": info.pid, "self": os.getpid(), "ppid": info.ppid,
                "mask": info.mask, "cgroupid": info.cgroupid}


def _judge_pidfd_thread(call):
    if call.ok:
        if call.value:
            return present("pidfd_open(gettid(), PIDFD_THREAD) -> fd with O_EXCL in its flags")
        return undecided("pidfd_open(PIDFD_THREAD) gave an fd without PIDFD_THREAD set")
    if call.errno in (EINVAL, ENOSYS):
        return absent(f"pidfd_open(gettid(), PIDFD_THREAD) -> {call.describe()}")
    return undecided(f"pidfd_open(gettid(), PIDFD_THREAD) -> {call.describe()}")


@probe("pidfd_thread", "process_tree", since="6.9", judge=_judge_pidfd_thread,
       examples=[(Call(0, True), True), (Call(0, False), None), (Call(EINVAL), False),
                 (Call(ENOSYS), False), (Call(EPERM), None)])
def pidfd_thread():
    """PIDFD_THREAD: pidfds for single threads (signals and exit of one thread)."""
    with closing_fds() as fds:
        call = attempt(process.pidfd_open, process.gettid(), process.PIDFD_THREAD)
        if not call.ok:
            return call
        fds.append(call.value)
        return Call(0, bool(fcntl.fcntl(call.value, fcntl.F_GETFL) & process.PIDFD_THREAD))


_NS_LINES = ("NStgid", "NSpid", "NSpgid", "NSsid")


def _judge_nspid(seen):
    lines = seen["lines"]
    if "NSpid" in lines:
        others = [k for k in _NS_LINES if k in lines and k != "NSpid"]
        return present(f"/proc/self/status has NSpid: ({lines['NSpid']})"
                       + (f" and {', '.join(others)}" if others else ""), lines=sorted(lines))
    return absent("no NSpid: line in /proc/self/status")


@probe("nspid", "process_tree", since="4.1", criu_name="ns_pid", judge=_judge_nspid,
       examples=[({"lines": {"NSpid": "10", "NStgid": "10", "NSpgid": "1", "NSsid": "1"}},
                  True),
                 ({"lines": {}}, False)])
def nspid():
    """NSpid/NStgid/NSpgid/NSsid in /proc/pid/status: a task's ids in every pid namespace."""
    return {"lines": procfs.status(keys=_NS_LINES)}


def _judge_children(seen):
    if seen["errno"] == ENOENT:
        return absent("no /proc/self/task/<tid>/children (CONFIG_PROC_CHILDREN off?)")
    if seen["errno"]:
        return undecided(f"reading children -> {errname(seen['errno'])}")
    if str(seen["child"]) in seen["children"].split():
        return present(f"/proc/self/task/<tid>/children lists our child {seen['child']}")
    return undecided(f"our child {seen['child']} is not in children: {seen['children']!r}")


@probe("proc_children", "process_tree", since="3.5", judge=_judge_children,
       examples=[({"errno": 0, "child": 12, "children": "7 12 "}, True),
                 ({"errno": 0, "child": 12, "children": ""}, None),
                 ({"errno": ENOENT, "child": 12, "children": None}, False),
                 ({"errno": errno.EACCES, "child": 12, "children": None}, None)])
def proc_children():
    """/proc/pid/task/tid/children: the children of a thread (read with a live child)."""
    with child_process(hold=True) as child:
        path = f"/proc/self/task/{process.gettid()}/children"
        try:
            with open(path) as f:
                return {"errno": 0, "child": child["pid"], "children": f.read()}
        except OSError as e:
            return {"errno": e.errno, "child": child["pid"], "children": None}


# --- timers -----------------------------------------------------------------------------------
_WANTED_TIMER_ID = 4242


def _timer_restore_ids_in_child():
    before = process.prctl(process.PR_TIMER_CREATE_RESTORE_IDS,
                           process.PR_TIMER_CREATE_RESTORE_IDS_GET)
    process.prctl(process.PR_TIMER_CREATE_RESTORE_IDS, process.PR_TIMER_CREATE_RESTORE_IDS_ON)
    on = process.prctl(process.PR_TIMER_CREATE_RESTORE_IDS,
                       process.PR_TIMER_CREATE_RESTORE_IDS_GET)
    timer_id = process.timer_create(process.CLOCK_MONOTONIC, _WANTED_TIMER_ID)
    process.timer_delete(timer_id)
    return [before, on, timer_id]


def _judge_timer_cr_ids(call):
    if call.ok:
        before, on, timer_id = call.value
        detail = (f"PR_TIMER_CREATE_RESTORE_IDS GET -> {before}, ON then GET -> {on}, "
                  f"timer_create(wanted id {_WANTED_TIMER_ID}) -> id {timer_id}")
        if timer_id != _WANTED_TIMER_ID:
            return present(detail + " (the wanted id was not honoured)")
        return present(detail)
    if call.errno == EINVAL:
        return absent("prctl(PR_TIMER_CREATE_RESTORE_IDS, GET) -> EINVAL")
    return undecided(f"PR_TIMER_CREATE_RESTORE_IDS -> {call.describe()}")


@probe("timer_cr_ids", "process_tree", since="6.15", criu_name="timer_cr_ids",
       judge=_judge_timer_cr_ids,
       examples=[(Call(0, [0, 1, _WANTED_TIMER_ID]), True), (Call(0, [0, 1, 0]), True),
                 (Call(EINVAL), False), (Call(EPERM), None)])
def timer_cr_ids():
    """PR_TIMER_CREATE_RESTORE_IDS (77): timer_create() takes the wanted POSIX timer id.

    CRIU's check is GET succeeding; in a child the mode is also switched on and a
    timer is created with a chosen id.
    """
    return attempt(sandbox.in_child, _timer_restore_ids_in_child)


# --- exited children --------------------------------------------------------------------------
def _judge_pidfd_zombie(seen):
    if seen["open"]:
        if seen["open"] == ENOSYS:
            return absent("no pidfd_open")
        if seen["open"] == ESRCH:
            return absent("pidfd_open(zombie) -> ESRCH")
        return undecided(f"pidfd_open(zombie) -> {errname(seen['open'])}")
    if not seen["pollin"]:
        return undecided("the pidfd of a zombie does not poll readable")
    exit_info = seen["exit_info"]
    tail = (f"; PIDFD_INFO_EXIT after reaping -> wait status {exit_info}"
            if isinstance(exit_info, int) and exit_info >= 0 else "")
    return present(f"pidfd_open(zombie) -> fd, polls readable, signal 0 -> "
                   f"{errname(seen['signal_zombie'])}, after reaping -> "
                   f"{errname(seen['signal_reaped'])}{tail}")


@probe("pidfd_zombie", "process_tree", since="5.3", judge=_judge_pidfd_zombie,
       examples=[({"open": 0, "pollin": True, "signal_zombie": 0, "signal_reaped": ESRCH,
                   "exit_info": 768}, True),
                 ({"open": 0, "pollin": True, "signal_zombie": 0, "signal_reaped": ESRCH,
                   "exit_info": -ENOTTY}, True),
                 ({"open": 0, "pollin": False, "signal_zombie": 0, "signal_reaped": ESRCH,
                   "exit_info": None}, None),
                 ({"open": ESRCH}, False), ({"open": ENOSYS}, False),
                 ({"open": EPERM}, None)])
def pidfd_zombie():
    """A pidfd of an exited, not yet reaped child: open, poll, signal; exit info after reaping."""
    with closing_fds() as fds, child_process(exit_code=3) as child:
        pid = child["pid"]
        process.waitid(process.P_PID, pid, process.WEXITED | process.WNOWAIT)  # now a zombie
        call = attempt(process.pidfd_open, pid)
        if not call.ok:
            return {"open": call.errno}
        fds.append(call.value)
        poller = select.poll()
        poller.register(call.value, select.POLLIN)
        pollin = bool(poller.poll(0))
        signal_zombie = attempt(process.pidfd_send_signal, call.value, 0).errno
        os.waitpid(pid, 0)
        child["reaped"] = True
        signal_reaped = attempt(process.pidfd_send_signal, call.value, 0).errno
        info = attempt(process.pidfd_get_info, call.value, process.PIDFD_INFO_EXIT)
        exit_info = None
        if not info.ok:
            exit_info = -info.errno
        elif info.value.mask & process.PIDFD_INFO_EXIT:
            exit_info = info.value.exit_code
        return {"open": 0, "pollin": pollin, "signal_zombie": signal_zombie,
                "signal_reaped": signal_reaped, "exit_info": exit_info}


def _judge_waitid_pidfd(call):
    if call.ok:
        same_pid, status = call.value
        if same_pid and status == 5:
            return present("waitid(P_PIDFD, pidfd, WEXITED) reaped the child, exit status 5")
        return undecided(f"waitid(P_PIDFD) answered pid match {same_pid}, status {status}")
    if call.errno in (EINVAL, ENOSYS):
        return absent(f"waitid(P_PIDFD) -> {call.describe()}")
    return undecided(f"waitid(P_PIDFD) -> {call.describe()}")


@probe("waitid_pidfd", "process_tree", since="5.4", judge=_judge_waitid_pidfd,
       examples=[(Call(0, [True, 5]), True), (Call(0, [False, 5]), None),
                 (Call(EINVAL), False), (Call(ENOSYS), False), (Call(errno.ECHILD), None)])
def waitid_pidfd():
    """waitid(P_PIDFD): wait for (and reap) a child through its pidfd."""
    with closing_fds() as fds, child_process(exit_code=5) as child:
        call = attempt(process.pidfd_open, child["pid"])
        if not call.ok:
            return call
        fds.append(call.value)
        call = attempt(process.waitid, process.P_PIDFD, call.value, process.WEXITED)
        if not call.ok:
            return call
        child["reaped"] = True
        return Call(0, [call.value.si_pid == child["pid"], call.value.si_status])
