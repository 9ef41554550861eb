"""ptrace and CPU state: seizing, signals, rseq, syscall info, seccomp, debug registers,
vDSO mapping, PR_SET_MM, kcmp, rt_sigqueueinfo, xstate.

Traced processes are children the prober forks for the purpose: they only
wait, the prober traces them, and kills and reaps them when done.  What
would change the prober itself (arch_prctl, queued signals, PR_SET_MM) runs
in a sandbox child.
"""

import contextlib
import ctypes
import errno
import os
import resource
import select
import signal

from kernel import memory as mm
from kernel import process
from kernel import ptrace as pt
from kernel.libc import libc

from . import sandbox
from .common import closing_fds
from .registry import Call, absent, attempt, errname, present, probe, undecided

EINVAL, ENOSYS, EPERM, EIO = errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EIO
EEXIST, EACCES, ENODEV, EFAULT = errno.EEXIST, errno.EACCES, errno.ENODEV, errno.EFAULT

READY_TIMEOUT = 2.0



# --- tracees ----------------------------------------------------------------------------------
def _tracee_main(ready_w, setup, body):
    message = b"ok"
    try:
        if setup:
            setup()
    except OSError as e:
        message = b"errno %d" % e.errno
    os.write(ready_w, message)   # left open: no syscall between this and body()/pause()
    if message == b"ok":
        if body:
            body()
        while True:
            signal.pause()


class Tracee:
    """A forked child being traced; ``wait()`` notices when it is gone."""

    def __init__(self, pid):
        self.pid = pid
        self.reaped = False

    def wait(self):
        """The next wait status (ptrace stops included); marks the child reaped on exit."""
        status = os.waitpid(self.pid, process.WALL)[1]
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.reaped = True
        return status


@contextlib.contextmanager
def tracee(setup=None, body=None):
    """Fork a child that runs ``setup()``, says it is ready, then ``body()`` or waits
    forever. Yields a Tracee; the child is killed and reaped on the way out.

    An OSError raised by ``setup`` in the child is raised here with its errno.
    """
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.close(ready_r)
            _tracee_main(ready_w, setup, body)
        finally:
            os._exit(0)
    os.close(ready_w)
    child = Tracee(pid)
    try:
        if not select.select([ready_r], [], [], READY_TIMEOUT)[0]:
            raise sandbox.ChildFailed("tracee did not get ready")
        message = os.read(ready_r, 64)
        os.close(ready_r)
        ready_r = -1
        if message.startswith(b"errno "):
            code = int(message.split()[1])
            raise OSError(code, f"tracee setup: {os.strerror(code)}")
        if message != b"ok":
            raise sandbox.ChildFailed("tracee died during setup")
        yield child
    finally:
        if ready_r >= 0:
            os.close(ready_r)
        if not child.reaped:
            kill_and_reap(pid)


def kill_and_reap(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while True:
        _, status = os.waitpid(pid, process.WALL)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return


def wait_stop(pid):
    """Wait for the next ptrace stop; returns the raw wait status."""
    return os.waitpid(pid, process.WALL)[1]


def seize_and_stop(pid, options=0):
    """PTRACE_SEIZE + PTRACE_INTERRUPT; returns the wait status of the resulting stop."""
    pt.seize(pid, options)
    pt.interrupt(pid)
    return wait_stop(pid)


# --- SEIZE / INTERRUPT / LISTEN ---------------------------------------------------------------
def _judge_seize(seen):
    if seen["seize"] == EIO:
        return absent("PTRACE_SEIZE -> EIO (unknown request)")
    failed = [k for k in ("seize", "interrupt", "listen") if seen[k]]
    if failed:
        return undecided(", ".join(f"{k} -> {errname(seen[k])}" for k in failed))
    if seen["event"] != pt.EVENT_STOP:
        return undecided(f"INTERRUPT stop reported event {seen['event']}, not PTRACE_EVENT_STOP")
    return present("PTRACE_SEIZE, PTRACE_INTERRUPT -> PTRACE_EVENT_STOP stop, "
                   "PTRACE_LISTEN -> 0")


@probe("ptrace_seize", "ptrace", since="3.4", judge=_judge_seize,
       examples=[({"seize": 0, "interrupt": 0, "event": 128, "listen": 0}, True),
                 ({"seize": 0, "interrupt": 0, "event": 0, "listen": 0}, None),
                 ({"seize": EIO, "interrupt": None, "event": None, "listen": None}, False),
                 ({"seize": EPERM, "interrupt": None, "event": None, "listen": None}, None)])
def ptrace_seize():
    """PTRACE_SEIZE/INTERRUPT/LISTEN: trace without a signal, stop and keep stopped."""
    seen = {"seize": None, "interrupt": None, "event": None, "listen": None}
    with tracee() as child:
        pid = child.pid
        seen["seize"] = attempt(pt.seize, pid, 0).errno
        if seen["seize"]:
            return seen
        seen["interrupt"] = attempt(pt.interrupt, pid).errno
        if seen["interrupt"]:
            return seen
        seen["event"] = wait_stop(pid) >> 16
        seen["listen"] = attempt(pt.listen, pid).errno
    return seen


# --- PEEKSIGINFO / GETSIGMASK -----------------------------------------------------------------
def _pending_usr1():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    os.kill(os.getpid(), signal.SIGUSR1)     # process-wide: the shared queue


def _judge_peeksiginfo(seen):
    if seen["stop"] == EIO or seen["peek"] == EIO:
        return absent("PTRACE_PEEKSIGINFO -> EIO (unknown request)")
    failed = [k for k in ("stop", "peek", "peek_shared", "getsigmask") if seen[k]]
    if failed:
        return undecided(", ".join(f"{k} -> {errname(seen[k])}" for k in failed))
    if seen["shared_signo"] == signal.SIGUSR1 and seen["mask_has_usr1"]:
        return present("PTRACE_PEEKSIGINFO found the tracee's pending SIGUSR1 in the shared "
                       "queue; PTRACE_GETSIGMASK shows it blocked")
    return undecided(f"peeked signo {seen['shared_signo']}, SIGUSR1 blocked in mask: "
                     f"{seen['mask_has_usr1']}")


@probe("ptrace_peeksiginfo", "ptrace", since="3.10", judge=_judge_peeksiginfo,
       examples=[({"stop": 0, "peek": 0, "peek_shared": 0, "shared_signo": 10,
                   "getsigmask": 0, "mask_has_usr1": True}, True),
                 ({"stop": 0, "peek": 0, "peek_shared": 0, "shared_signo": None,
                   "getsigmask": 0, "mask_has_usr1": True}, None),
                 ({"stop": 0, "peek": EIO, "peek_shared": None, "shared_signo": None,
                   "getsigmask": None, "mask_has_usr1": None}, False),
                 ({"stop": 0, "peek": EINVAL, "peek_shared": None, "shared_signo": None,
                   "getsigmask": None, "mask_has_usr1": None}, None)])
def ptrace_peeksiginfo():
    """PTRACE_PEEKSIGINFO + PTRACE_GETSIGMASK: dump pending signals and the blocked mask
    (CRIU's required check: both succeed)."""
    seen = dict.fromkeys(("stop", "peek", "peek_shared", "shared_signo", "getsigmask",
                          "mask_has_usr1"))
    with tracee(setup=_pending_usr1) as child:
        pid = child.pid
        seen["stop"] = attempt(seize_and_stop, pid).errno
        if seen["stop"]:
            return seen
        peek = attempt(pt.peeksiginfo, pid, 0, 1, 0)   # CRIU's call: per-thread queue
        seen["peek"] = peek.errno
        if peek.errno:
            return seen
        shared = attempt(pt.peeksiginfo, pid, 0, 1, pt.PEEKSIGINFO_SHARED)
        seen["peek_shared"] = shared.errno
        if shared.ok and shared.value:
            seen["shared_signo"] = int.from_bytes(shared.value[0][:4], "little")
        mask = attempt(pt.getsigmask, pid)
        seen["getsigmask"] = mask.errno
        if mask.ok:
            seen["mask_has_usr1"] = bool(mask.value >> (signal.SIGUSR1 - 1) & 1)
    return seen


# --- rseq configuration -----------------------------------------------------------------------
RSEQ_CONF_SIZE = ctypes.sizeof(pt.RseqConfiguration)   # 24: what CRIU passes and expects back


def _judge_rseq_conf(seen):
    if seen["errno"] == EIO:
        return absent("PTRACE_GET_RSEQ_CONFIGURATION -> EIO (unknown request)")
    if seen["errno"]:
        return undecided(f"PTRACE_GET_RSEQ_CONFIGURATION -> {errname(seen['errno'])}")
    if seen["size"] != RSEQ_CONF_SIZE:
        return absent(f"PTRACE_GET_RSEQ_CONFIGURATION returned {seen['size']}, CRIU requires "
                      f"{RSEQ_CONF_SIZE}")
    if seen["flags"]:
        return absent(f"rseq configuration flags {seen['flags']:#x} != 0 (CRIU refuses)")
    registered = (f"tracee's rseq area {seen['abi_size']} bytes, signature "
                  f"{seen['signature']:#x}" if seen["registered"] else
                  "tracee has no rseq area registered")
    return present(f"PTRACE_GET_RSEQ_CONFIGURATION -> {seen['size']}; {registered}",
                   abi_size=seen["abi_size"], signature=seen["signature"])


@probe("get_rseq_conf", "ptrace", since="5.13", criu_name="get_rseq_conf",
       judge=_judge_rseq_conf,
       examples=[({"errno": 0, "size": 24, "flags": 0, "registered": True, "abi_size": 32,
                   "signature": 0x53053053}, True),
                 ({"errno": 0, "size": 24, "flags": 0, "registered": False, "abi_size": 0,
                   "signature": 0}, True),
                 ({"errno": 0, "size": 32, "flags": 0, "registered": True, "abi_size": 32,
                   "signature": 0x53053053}, False),
                 ({"errno": 0, "size": 24, "flags": 1, "registered": True, "abi_size": 32,
                   "signature": 0x53053053}, False),
                 ({"errno": EIO}, False), ({"errno": EPERM}, None)])
def get_rseq_conf():
    """PTRACE_GET_RSEQ_CONFIGURATION: where a tracee's rseq area is (CRIU: returns
    sizeof(struct ptrace_rseq_configuration) = 24 and flags 0)."""
    with tracee() as child:
        pid = child.pid
        stop = attempt(seize_and_stop, pid)
        if not stop.ok:
            return {"errno": stop.errno}
        call = attempt(pt.get_rseq_configuration, pid, RSEQ_CONF_SIZE)
        if not call.ok:
            return {"errno": call.errno}
        size, conf = call.value
        return {"errno": 0, "size": size, "flags": conf.flags,
                "registered": bool(conf.rseq_abi_pointer), "abi_size": conf.rseq_abi_size,
                "signature": conf.signature}


# --- syscall info -----------------------------------------------------------------------------
def _to_syscall_entry(pid):
    """From an INTERRUPT stop: PTRACE_SYSCALL up to the next syscall-entry stop (the
    restarted pause() the tracee waits in, in practice)."""
    pt.resume_syscall(pid)
    return wait_stop(pid)


def _judge_get_syscall_info(seen):
    if seen["none"] == EIO:
        return absent("PTRACE_GET_SYSCALL_INFO -> EIO (unknown request)")
    if seen["none"] or seen["entry"]:
        return undecided(f"GET_SYSCALL_INFO at a signal stop -> {errname(seen['none'])}, at "
                         f"a syscall entry -> {errname(seen['entry'])}")
    if seen["none_op"] == pt.SYSCALL_INFO_NONE and seen["entry_op"] == pt.SYSCALL_INFO_ENTRY:
        syscall = " (pause)" if seen["entry_nr"] == PAUSE_NR else ""
        return present(f"op NONE ({seen['none_size']} bytes) at an INTERRUPT stop, op ENTRY "
                       f"nr {seen['entry_nr']}{syscall} at the next syscall-entry stop")
    return undecided(f"ops {seen['none_op']}/{seen['entry_op']}, nr {seen['entry_nr']}")


PAUSE_NR = 34


@probe("ptrace_get_syscall_info", "ptrace", since="5.3", judge=_judge_get_syscall_info,
       examples=[({"none": 0, "none_op": 0, "none_size": 24, "entry": 0, "entry_op": 1,
                   "entry_nr": PAUSE_NR}, True),
                 ({"none": 0, "none_op": 0, "none_size": 24, "entry": 0, "entry_op": 1,
                   "entry_nr": 1}, True),
                 ({"none": 0, "none_op": 0, "none_size": 24, "entry": 0, "entry_op": 2,
                   "entry_nr": 0}, None),
                 ({"none": EIO, "none_op": None, "none_size": None, "entry": None,
                   "entry_op": None, "entry_nr": None}, False),
                 ({"none": EINVAL, "none_op": None, "none_size": None, "entry": None,
                   "entry_op": None, "entry_nr": None}, None)])
def ptrace_get_syscall_info():
    """PTRACE_GET_SYSCALL_INFO: what kind of stop a tracee is in and its syscall."""
    seen = dict.fromkeys(("none", "none_op", "none_size", "entry", "entry_op", "entry_nr"))
    with tracee() as child:
        pid = child.pid
        seize_and_stop(pid, pt.O_TRACESYSGOOD)
        call = attempt(pt.get_syscall_info, pid)
        seen["none"] = call.errno
        if not call.ok:
            return seen
        seen["none_size"], info = call.value
        seen["none_op"] = info.op
        _to_syscall_entry(pid)
        call = attempt(pt.get_syscall_info, pid)
        seen["entry"] = call.errno
        if call.ok:
            seen["entry_op"], seen["entry_nr"] = call.value[1].op, call.value[1].data[0]
    return seen


def _judge_set_syscall_info(seen):
    if seen["none"] == EIO:
        return absent("PTRACE_SET_SYSCALL_INFO -> EIO (unknown request)")
    if seen["entry"] == 0:
        return present(f"SET_SYSCALL_INFO at a signal stop (op NONE) -> "
                       f"{errname(seen['none'])}; the syscall-entry info written back at a "
                       f"syscall-entry stop -> 0")
    if seen["none"] == EINVAL and seen["entry"] is None:
        return present("SET_SYSCALL_INFO with op NONE -> EINVAL (known request)")
    return undecided(f"SET_SYSCALL_INFO op NONE -> {errname(seen['none'])}, at a syscall entry "
                     f"-> {errname(seen['entry'])}")


@probe("ptrace_set_syscall_info", "ptrace", since="6.16", judge=_judge_set_syscall_info,
       examples=[({"none": EINVAL, "entry": 0}, True), ({"none": EINVAL, "entry": None}, True),
                 ({"none": EINVAL, "entry": EINVAL}, None),
                 ({"none": EIO, "entry": None}, False),
                 ({"none": EPERM, "entry": None}, None)])
def ptrace_set_syscall_info():
    """PTRACE_SET_SYSCALL_INFO: change a stopped syscall's number/arguments/return value
    (written back unchanged here; op NONE must be refused with EINVAL)."""
    seen = {"none": None, "entry": None}
    with tracee() as child:
        pid = child.pid
        seize_and_stop(pid, pt.O_TRACESYSGOOD)
        _, info = pt.get_syscall_info(pid)
        seen["none"] = attempt(pt.set_syscall_info, pid, info).errno
        if seen["none"] != EINVAL:
            return seen
        _to_syscall_entry(pid)
        _, info = pt.get_syscall_info(pid)
        seen["entry"] = attempt(pt.set_syscall_info, pid, info).errno
    return seen


# --- seccomp ----------------------------------------------------------------------------------
def _judge_suspend(seen):
    if seen["stop"]:
        return undecided(f"seizing the tracee -> {errname(seen['stop'])}")
    code = seen["setoptions"]
    if code == 0:
        return present("PTRACE_SETOPTIONS(PTRACE_O_SUSPEND_SECCOMP) -> 0")
    if code == EINVAL:
        return absent("PTRACE_O_SUSPEND_SECCOMP -> EINVAL")
    return undecided(f"PTRACE_O_SUSPEND_SECCOMP -> {errname(code)} (needs CAP_SYS_ADMIN and a "
                     "tracer without seccomp)")


@probe("seccomp_suspend", "ptrace", since="4.3", criu_name="seccomp_suspend",
       needs="CAP_SYS_ADMIN", judge=_judge_suspend,
       examples=[({"stop": 0, "setoptions": 0}, True),
                 ({"stop": 0, "setoptions": EINVAL}, False),
                 ({"stop": 0, "setoptions": EPERM}, None),
                 ({"stop": EPERM, "setoptions": None}, None)])
def seccomp_suspend():
    """PTRACE_O_SUSPEND_SECCOMP: a tracer injects syscalls a tracee's filter would refuse."""
    with tracee() as child:
        pid = child.pid
        stop = attempt(seize_and_stop, pid)
        if not stop.ok:
            return {"stop": stop.errno, "setoptions": None}
        return {"stop": 0,
                "setoptions": attempt(pt.setoptions, pid, pt.O_SUSPEND_SECCOMP).errno}


# CRIU's filter: allow everything but ptrace (which the tracee never calls)
_BPF_LD_NR, _BPF_JEQ, _BPF_RET = 0x20, 0x15, 0x06
SECCOMP_RET_KILL, SECCOMP_RET_ALLOW = 0, 0x7FFF0000
_FILTER = [(_BPF_LD_NR, 0, 0, 0), (_BPF_JEQ, 0, 1, 101), (_BPF_RET, 0, 0, SECCOMP_RET_KILL),
           (_BPF_RET, 0, 0, SECCOMP_RET_ALLOW)]


def _install_filter():
    process.prctl(process.PR_SET_NO_NEW_PRIVS, 1)
    process.seccomp_set_filter(_FILTER)


def _filter_bytes():
    return b"".join(bytes(process.SockFilter(*insn)) for insn in _FILTER)


def _judge_filters(seen):
    if seen["count"] in (EIO, EINVAL) and seen["errno"]:
        return absent(f"PTRACE_SECCOMP_GET_FILTER -> {errname(seen['count'])}")
    if seen["errno"]:
        return undecided(f"PTRACE_SECCOMP_GET_FILTER -> {errname(seen['errno'])} (needs "
                         "CAP_SYS_ADMIN and a tracer without seccomp)")
    if seen["count"] == len(_FILTER) and seen["same"]:
        return present(f"PTRACE_SECCOMP_GET_FILTER -> {seen['count']} instructions, the very "
                       "filter the tracee installed")
    return undecided(f"GET_FILTER -> {seen['count']} instructions, same as installed: "
                     f"{seen['same']}")


@probe("seccomp_filters", "ptrace", since="4.4", criu_name="seccomp_filters",
       needs="CAP_SYS_ADMIN", judge=_judge_filters,
       examples=[({"errno": 0, "count": 4, "same": True}, True),
                 ({"errno": 0, "count": 4, "same": False}, None),
                 ({"errno": EIO, "count": EIO, "same": None}, False),
                 ({"errno": EACCES, "count": EACCES, "same": None}, None)])
def seccomp_filters():
    """PTRACE_SECCOMP_GET_FILTER: read a tracee's classic-BPF seccomp filters."""
    with tracee(setup=_install_filter) as child:
        pid = child.pid
        seize_and_stop(pid)
        count = attempt(pt.seccomp_get_filter, pid, 0)
        if not count.ok:
            return {"errno": count.errno, "count": count.errno, "same": None}
        insns = pt.seccomp_get_filter(pid, 0, count.value)
        return {"errno": 0, "count": count.value, "same": insns == _filter_bytes()}


# --- hardware breakpoints ---------------------------------------------------------------------
_TRAP_TARGET = libc.getppid


def _judge_breakpoints(seen):
    failed = [k for k in ("poke_addr", "poke_control", "cont") if seen[k]]
    if failed:
        return absent("debug registers not usable: " + ", ".join(
            f"{k} -> {errname(seen[k])}" for k in failed))
    if seen["stop_signal"] == signal.SIGTRAP:
        return present(f"execution breakpoint in DR0 trapped the tracee (SIGTRAP, "
                       f"DR6 {seen['dr6']:#x})")
    if seen["exit_code"] is not None:
        return absent("the tracee ran through the breakpoint (no trap: debug registers not "
                      "virtualized?)")
    return undecided(f"tracee stopped with signal {seen['stop_signal']}, not SIGTRAP")


@probe("breakpoints", "ptrace", since="2.6.33", criu_name="breakpoints",
       judge=_judge_breakpoints,
       examples=[({"poke_addr": 0, "poke_control": 0, "cont": 0, "stop_signal": 5,
                   "dr6": 0xFFFF0FF1, "exit_code": None}, True),
                 ({"poke_addr": 0, "poke_control": 0, "cont": 0, "stop_signal": None,
                   "dr6": None, "exit_code": 7}, False),
                 ({"poke_addr": EIO, "poke_control": None, "cont": None, "stop_signal": None,
                   "dr6": None, "exit_code": None}, False),
                 ({"poke_addr": 0, "poke_control": 0, "cont": 0, "stop_signal": 11,
                   "dr6": None, "exit_code": None}, None)])
def breakpoints():
    """Hardware breakpoints work (CRIU stops restored tasks on one): DR0 = a function
    the tracee calls next, DR7 enables it, the tracee must stop with SIGTRAP."""
    go_r, go_w = os.pipe()
    target = ctypes.cast(_TRAP_TARGET, ctypes.c_void_p).value

    def body():  # waits for our go, calls the target once, exits 7 if not trapped
        os.read(go_r, 1)
        _TRAP_TARGET()
        os._exit(7)

    seen = dict.fromkeys(("poke_addr", "poke_control", "cont", "stop_signal", "dr6",
                          "exit_code"))
    try:
        with tracee(body=body) as child:
            pid = child.pid
            seize_and_stop(pid)
            seen["poke_addr"] = attempt(pt.pokeuser, pid, pt.debugreg_offset(pt.DR_FIRSTADDR),
                                        target).errno
            if seen["poke_addr"]:
                return seen
            seen["poke_control"] = attempt(pt.pokeuser, pid, pt.debugreg_offset(pt.DR_CONTROL),
                                           pt.DR7_LOCAL_ENABLE0).errno
            if seen["poke_control"]:
                return seen
            seen["cont"] = attempt(pt.cont, pid).errno
            if seen["cont"]:
                return seen
            os.write(go_w, b"g")
            status = child.wait()
            if os.WIFSTOPPED(status):
                seen["stop_signal"] = os.WSTOPSIG(status)
                seen["dr6"] = pt.peekuser(pid, pt.debugreg_offset(pt.DR_STATUS))
            elif os.WIFEXITED(status):
                seen["exit_code"] = os.WEXITSTATUS(status)
    finally:
        os.close(go_r)
        os.close(go_w)
    return seen


# --- vDSO, compat -----------------------------------------------------------------------------
_VDSO_NAMES = ("[vvar]", "[vvar_vclock]", "[vdso]")


def _vdso_layout():
    found = {}
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.rstrip("\n").rsplit(" ", 1)[-1]
            if name in _VDSO_NAMES:
                start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                found[name] = [start, end]
    return found


def _map_vdso_in_child():
    """CRIU's can_map_vdso (ARCH_MAP_VDSO_32 with the vDSO mapped: EEXIST means the API
    exists), then unmap vvar/vdso and put them back with ARCH_MAP_VDSO_64 at the same
    address, so libc's cached vDSO pointers stay valid."""
    seen = {"vdso32": attempt(process.arch_prctl, process.ARCH_MAP_VDSO_32, 0).errno,
            "remap64": None, "same_layout": None}
    before = _vdso_layout()
    if not before:
        return seen
    base = min(start for start, _ in before.values())
    for start, end in before.values():
        mm.munmap(start, end - start)
    seen["remap64"] = attempt(process.arch_prctl, process.ARCH_MAP_VDSO_64, base).errno
    seen["same_layout"] = _vdso_layout() == before
    return seen


def _judge_can_map_vdso(seen):
    tail = ""
    if seen["remap64"] is not None:
        tail = (f"; vDSO unmapped and mapped back with ARCH_MAP_VDSO_64 -> "
                f"{errname(seen['remap64'])}"
                + (", same layout" if seen["same_layout"] else ""))
    if seen["vdso32"] in (0, EEXIST):
        return present(f"arch_prctl(ARCH_MAP_VDSO_32) -> {errname(seen['vdso32'])}{tail}")
    if seen["vdso32"] == EINVAL:
        return absent(f"arch_prctl(ARCH_MAP_VDSO_32) -> EINVAL (CRIU's test needs IA32 "
                      f"emulation){tail}")
    return undecided(f"arch_prctl(ARCH_MAP_VDSO_32) -> {errname(seen['vdso32'])}{tail}")


@probe("can_map_vdso", "ptrace", since="4.9", criu_name="can_map_vdso",
       judge=_judge_can_map_vdso,
       examples=[({"vdso32": EEXIST, "remap64": 0, "same_layout": True}, True),
                 ({"vdso32": 0, "remap64": None, "same_layout": None}, True),
                 ({"vdso32": EINVAL, "remap64": 0, "same_layout": True}, False),
                 ({"vdso32": EINVAL, "remap64": None, "same_layout": None}, False),
                 ({"vdso32": EPERM, "remap64": None, "same_layout": None}, None)])
def can_map_vdso():
    """arch_prctl(ARCH_MAP_VDSO_*): map the vDSO at a chosen address on restore.

    The verdict is CRIU's (ARCH_MAP_VDSO_32 answers 0 or EEXIST); the ARCH_MAP_VDSO_64
    remap in a child is the data a 64-bit restorer relies on."""
    try:
        return sandbox.in_child(_map_vdso_in_child)
    except sandbox.ChildFailed:  # the remap went wrong: redo CRIU's part alone
        seen = sandbox.in_child(lambda: {"vdso32": attempt(
            process.arch_prctl, process.ARCH_MAP_VDSO_32, 0).errno})
        return dict(seen, remap64=-1, same_layout=False)


# mmap2(0, 4096, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) through int 0x80
_INT80_MMAP2 = bytes.fromhex(
    "53"            # push rbx
    "55"            # push rbp
    "b8c0000000"    # mov eax, 192 (__NR_mmap2, i386)
    "31db"          # xor ebx, ebx
    "b900100000"    # mov ecx, 4096
    "31d2"          # xor edx, edx
    "be22000000"    # mov esi, MAP_PRIVATE | MAP_ANONYMOUS
    "bfffffffff"    # mov edi, -1
    "31ed"          # xor ebp, ebp
    "cd80"          # int 0x80
    "5d"            # pop rbp
    "5b"            # pop rbx
    "c3")           # ret


def _compat_in_child():
    seen = {"vdso32": attempt(process.arch_prctl, process.ARCH_MAP_VDSO_32, 0).errno,
            "int80": None}
    if seen["vdso32"] not in (0, EEXIST):
        return seen
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # a SIGSEGV here must not dump core
    code = attempt(mm.mmap, mm.PAGE_SIZE, mm.PROT_READ | mm.PROT_WRITE | mm.PROT_EXEC)
    if not code.ok:   # W^X policy (SELinux execmem, ...): nothing to run the test with
        seen["int80"] = ["no executable memory", code.errno]
        return seen
    code = code.value
    mm.poke(code, _INT80_MMAP2)
    mmap2 = ctypes.CFUNCTYPE(ctypes.c_uint32)(code)
    first = mmap2()
    if first % mm.PAGE_SIZE:
        seen["int80"] = ["error", first]
        return seen
    mm.munmap(first, mm.PAGE_SIZE)
    second = mmap2()
    seen["int80"] = [first, second]
    return seen


def _judge_compat(seen):
    kernel_only = " (kernel side only: CRIU must also be built with CONFIG_COMPAT)"
    if seen["vdso32"] == EINVAL:
        return absent("arch_prctl(ARCH_MAP_VDSO_32) -> EINVAL: no IA32 emulation")
    if seen["vdso32"] not in (0, EEXIST):
        return undecided(f"arch_prctl(ARCH_MAP_VDSO_32) -> {errname(seen['vdso32'])}")
    result = seen["int80"]
    if result == "died":
        return absent("a 32-bit syscall (int 0x80) killed the process: IA32 emulation "
                      "disabled (ia32_emulation=0)")
    if result and result[0] == "error":
        return undecided(f"32-bit mmap2 through int 0x80 -> error {result[1]:#x}")
    if result and result[0] == "no executable memory":
        return undecided(f"mmap(PROT_EXEC) for the int 0x80 test -> {errname(result[1])}")
    if result and result[0] == result[1]:
        return present(f"ARCH_MAP_VDSO_32 known; 32-bit mmap2 via int 0x80 -> {result[0]:#x}, "
                       f"again after munmap -> same address (no pre-4.12 mmap bug)"
                       + kernel_only)
    return absent(f"32-bit mmap2 returned {result}: the pre-4.12 compat mmap bug" + kernel_only)


@probe("compat_cr", "ptrace", since="4.12", criu_name="compat_cr", judge=_judge_compat,
       examples=[({"vdso32": EEXIST, "int80": [0xF7F0E000, 0xF7F0E000]}, True),
                 ({"vdso32": EEXIST, "int80": [0xF7F0E000, 0xF7F0D000]}, False),
                 ({"vdso32": EEXIST, "int80": "died"}, False),
                 ({"vdso32": EINVAL, "int80": None}, False),
                 ({"vdso32": EEXIST, "int80": ["error", 0xFFFFFFF4]}, None),
                 ({"vdso32": EEXIST, "int80": ["no executable memory", EACCES]}, None),
                 ({"vdso32": EPERM, "int80": None}, None)])
def compat_cr():
    """CRIU's compat_cr (x86): checkpoint/restore of 32-bit tasks. Means exactly: the
    kernel knows ARCH_MAP_VDSO_32 (IA32 emulation built in) and 32-bit mmap from a
    64-bit process returns usable 32-bit addresses (mmap2 through int 0x80, munmap,
    mmap2 again gives the same address: fixed in 4.12). Runs in a child."""
    try:
        return sandbox.in_child(_compat_in_child)
    except sandbox.ChildFailed:
        seen = sandbox.in_child(lambda: {"vdso32": attempt(
            process.arch_prctl, process.ARCH_MAP_VDSO_32, 0).errno})
        return dict(seen, int80="died")


# --- PR_SET_MM --------------------------------------------------------------------------------
def _current_mm_map():
    """struct prctl_mm_map of this process, from /proc/self/stat, sbrk(0) and auxv."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()

    def stat(n):  # 1-based field number of proc(5)
        return int(fields[n - 3])

    sbrk = libc.sbrk
    sbrk.restype, sbrk.argtypes = ctypes.c_void_p, [ctypes.c_long]
    with open("/proc/self/auxv", "rb") as f:
        auxv = f.read()
    auxv_buf = ctypes.create_string_buffer(auxv, len(auxv))
    mm_map = process.PrctlMmMap(
        start_code=stat(26), end_code=stat(27), start_stack=stat(28),
        start_data=stat(45), end_data=stat(46), start_brk=stat(47), brk=sbrk(0),
        arg_start=stat(48), arg_end=stat(49), env_start=stat(50), env_end=stat(51),
        auxv=ctypes.addressof(auxv_buf), auxv_size=len(auxv), exe_fd=0xFFFFFFFF)
    return mm_map, auxv_buf


def _set_mm_map_in_child():
    mm_map, _keep = _current_mm_map()
    return attempt(process.prctl_set_mm_map, mm_map).errno


def _judge_set_mm(seen):
    size = Call(*seen["map_size"])
    if size.errno == EINVAL:
        return absent("PR_SET_MM_MAP_SIZE -> EINVAL (no CONFIG_CHECKPOINT_RESTORE)")
    if not size.ok or seen["tid_address"]:
        return undecided(f"PR_SET_MM_MAP_SIZE -> {size.describe()}, PR_GET_TID_ADDRESS -> "
                         f"{errname(seen['tid_address'])}")
    detail = f"PR_SET_MM_MAP_SIZE -> {size.value}, PR_GET_TID_ADDRESS -> ok"
    if size.value != ctypes.sizeof(process.PrctlMmMap):
        return undecided(detail + f" (struct prctl_mm_map is "
                                  f"{ctypes.sizeof(process.PrctlMmMap)} bytes here)")
    if seen["set_mm_map"] == 0:
        return present(detail + "; PR_SET_MM_MAP with the current layout -> 0 (in a child)")
    if seen["set_mm_map"] == EPERM:
        return present(detail + "; PR_SET_MM_MAP -> EPERM (needs CAP_SYS_RESOURCE)")
    return undecided(detail + f"; PR_SET_MM_MAP with the current layout -> "
                              f"{errname(seen['set_mm_map'])}")


@probe("prctl_set_mm_map", "ptrace", since="3.18", judge=_judge_set_mm,
       examples=[({"map_size": [0, 104], "tid_address": 0, "set_mm_map": 0}, True),
                 ({"map_size": [0, 104], "tid_address": 0, "set_mm_map": EPERM}, True),
                 ({"map_size": [0, 104], "tid_address": 0, "set_mm_map": EINVAL}, None),
                 ({"map_size": [0, 96], "tid_address": 0, "set_mm_map": 0}, None),
                 ({"map_size": [EINVAL, None], "tid_address": 0, "set_mm_map": None}, False)])
def prctl_set_mm_map():
    """PR_SET_MM/PR_SET_MM_MAP: set a restored mm's code/data/brk/stack/args/env/auxv
    in one call (CRIU's required PR_SET_MM check: MAP_SIZE and PR_GET_TID_ADDRESS)."""
    size = attempt(process.prctl_mm_map_size)
    tid = attempt(process.prctl_get_ptr, process.PR_GET_TID_ADDRESS).errno
    seen = {"map_size": list(size), "tid_address": tid, "set_mm_map": None}
    if size.ok:
        seen["set_mm_map"] = sandbox.in_child(_set_mm_map_in_child)
    return seen


# --- kcmp -------------------------------------------------------------------------------------
def _judge_kcmp(seen):
    if seen["criu"] == ENOSYS:
        return absent("kcmp -> ENOSYS")
    if seen["same"] == 0 and seen["different"] in (1, 2) and seen["vm"] == 0:
        return present("KCMP_FILE: a dup -> 0, another file -> "
                       f"{seen['different']}; KCMP_VM self/self -> 0")
    return undecided(f"kcmp answered same {seen['same']}, different {seen['different']}, "
                     f"vm {seen['vm']} (errno {errname(seen['errno'])})")


@probe("kcmp", "ptrace", since="3.5", judge=_judge_kcmp,
       examples=[({"criu": errno.EBADF, "errno": 0, "same": 0, "different": 1, "vm": 0},
                  True),
                 ({"criu": EINVAL, "errno": 0, "same": 0, "different": 2, "vm": 0}, True),
                 ({"criu": ENOSYS, "errno": ENOSYS, "same": None, "different": None,
                   "vm": None}, False),
                 ({"criu": EINVAL, "errno": EPERM, "same": None, "different": None,
                   "vm": None}, None)])
def kcmp():
    """kcmp(2): are two fds the same file, two tasks the same mm (CRIU's required check)."""
    seen = {"criu": attempt(process.kcmp, os.getpid(), -1, -1, -1, -1).errno,
            "errno": 0, "same": None, "different": None, "vm": None}
    with closing_fds() as fds:
        r, w = os.pipe()
        fds += [r, w]
        fds.append(os.dup(r))
        pid = os.getpid()
        for key, args in (("same", (process.KCMP_FILE, r, fds[2])),
                          ("different", (process.KCMP_FILE, r, w)),
                          ("vm", (process.KCMP_VM, 0, 0))):
            call = attempt(process.kcmp, pid, pid, *args)
            if not call.ok:
                seen["errno"] = call.errno
                return seen
            seen[key] = call.value
    return seen


def _judge_kcmp_epoll(call):
    if call.ok and call.value == 0:
        return present("kcmp(KCMP_EPOLL_TFD) of a pipe with the same pipe registered in an "
                       "epoll -> 0")
    if call.ok:
        return absent(f"kcmp(KCMP_EPOLL_TFD) -> {call.value}, not 0")
    if call.errno in (EPERM, EACCES):
        return undecided(f"kcmp(KCMP_EPOLL_TFD) -> {call.describe()}")
    return absent(f"kcmp(KCMP_EPOLL_TFD) -> {call.describe()}")


@probe("kcmp_epoll", "ptrace", since="4.13", criu_name="kcmp_epoll", judge=_judge_kcmp_epoll,
       examples=[(Call(0, 0), True), (Call(0, 1), False), (Call(EINVAL), False),
                 (Call(ENOSYS), False), (Call(EPERM), None)])
def kcmp_epoll():
    """kcmp(KCMP_EPOLL_TFD): match an epoll target with an fd (CRIU's dump of epolls)."""
    with closing_fds() as fds:
        r, w = os.pipe()
        fds += [r, w]
        epoll = select.epoll()
        try:
            epoll.register(r, select.EPOLLIN | select.EPOLLOUT)
            return attempt(process.kcmp_epoll_tfd, os.getpid(), os.getpid(), r,
                           epoll.fileno(), r)
        finally:
            epoll.close()


# --- signals ----------------------------------------------------------------------------------
_QUEUED_PID_MARK = 12345


def _sigqueue_in_child():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    info = process.Siginfo(si_signo=signal.SIGUSR1, si_code=1, si_pid=_QUEUED_PID_MARK)
    process.rt_sigqueueinfo(os.getpid(), signal.SIGUSR1, info)
    got = signal.sigtimedwait({signal.SIGUSR1}, 0)
    return None if got is None else [got.si_signo, got.si_code, got.si_pid]


def _judge_sigqueue(call):
    if call.ok:
        if call.value == [signal.SIGUSR1, 1, _QUEUED_PID_MARK]:
            return present("rt_sigqueueinfo(self, SIGUSR1, si_code 1) delivered our siginfo "
                           "unchanged (in a child)")
        return undecided(f"queued siginfo came back as {call.value}")
    if call.errno in (EPERM, ENOSYS):
        return absent(f"rt_sigqueueinfo(self, positive si_code) -> {call.describe()}")
    return undecided(f"rt_sigqueueinfo -> {call.describe()}")


@probe("rt_sigqueueinfo", "ptrace", since="3.9", judge=_judge_sigqueue,
       examples=[(Call(0, [10, 1, _QUEUED_PID_MARK]), True), (Call(0, None), None),
                 (Call(EPERM), False), (Call(ENOSYS), False), (Call(EINVAL), None)])
def rt_sigqueueinfo():
    """rt_sigqueueinfo to ourselves with a positive si_code: how a restore re-queues dumped
    pending signals (CRIU's required check)."""
    return attempt(sandbox.in_child, _sigqueue_in_child)


# --- CPU state --------------------------------------------------------------------------------
XSAVE_BUFFER = 16384


def _judge_xstate(seen):
    if seen["errno"] in (ENODEV, EINVAL, EIO):
        return absent(f"PTRACE_GETREGSET(NT_X86_XSTATE) -> {errname(seen['errno'])}")
    if seen["errno"]:
        return undecided(f"PTRACE_GETREGSET(NT_X86_XSTATE) -> {errname(seen['errno'])}")
    return present(f"NT_X86_XSTATE: {seen['size']} bytes, XCR0 {seen['xcr0']:#x}, tracee's "
                   f"XSTATE_BV {seen['xstate_bv']:#x}", size=seen["size"], xcr0=seen["xcr0"])


@probe("nt_x86_xstate", "ptrace", since="2.6.35", judge=_judge_xstate,
       examples=[({"errno": 0, "size": 2432, "xcr0": 0xE7, "xstate_bv": 0xA2}, True),
                 ({"errno": ENODEV}, False), ({"errno": EFAULT}, None)])
def nt_x86_xstate():
    """PTRACE_GETREGSET NT_X86_XSTATE: the tracee's full XSAVE area (AVX/AVX-512 state);
    its size and the XCR0 feature mask are the data."""
    with tracee() as child:
        pid = child.pid
        seize_and_stop(pid)
        call = attempt(pt.getregset, pid, pt.NT_X86_XSTATE, XSAVE_BUFFER)
        if not call.ok:
            return {"errno": call.errno}
        raw = call.value
        return {"errno": 0, "size": len(raw),
                "xcr0": int.from_bytes(raw[464:472], "little"),      # sw_reserved word 0
                "xstate_bv": int.from_bytes(raw[512:520], "little")}


def _judge_shstk(seen):
    call = Call(*seen["status"])
    cpu = "CPU has user_shstk" if seen["cpu_flag"] else "CPU lacks user_shstk"
    if call.ok:
        enabled = "enabled" if call.value & process.ARCH_SHSTK_SHSTK else "not enabled"
        return present(f"ARCH_SHSTK_STATUS -> {call.value:#x} (shadow stack {enabled} for "
                       f"us); {cpu}")
    if call.errno == EINVAL:
        return absent(f"ARCH_SHSTK_STATUS -> EINVAL (kernel without user shadow stacks); {cpu}")
    return undecided(f"ARCH_SHSTK_STATUS -> {call.describe()}; {cpu}")


@probe("shadow_stack", "ptrace", since="6.6", judge=_judge_shstk,
       examples=[({"status": [0, 1], "cpu_flag": True}, True),
                 ({"status": [0, 0], "cpu_flag": False}, True),
                 ({"status": [EINVAL, None], "cpu_flag": False}, False),
                 ({"status": [EPERM, None], "cpu_flag": True}, None)])
def shadow_stack():
    """x86 user shadow stacks (ARCH_SHSTK_*, NT_X86_SHSTK): a restorer must recreate the
    shadow stack of every thread that has one."""
    cpu_flag = False
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                cpu_flag = "user_shstk" in line.split()
                break
    return {"status": list(attempt(process.arch_prctl_get, process.ARCH_SHSTK_STATUS)),
            "cpu_flag": cpu_flag}
