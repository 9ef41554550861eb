"""Signals: dispositions, pending signals (per process and per thread), alternate stacks.

Blocked masks travel with each thread's core (they are set last, at resume).
"""

import struct

from kernel import ptrace

from . import proc
from .errors import RestoreError

NSIG = 64
UNCATCHABLE = (9, 19)                     # SIGKILL, SIGSTOP
SIGACTION = struct.Struct("<QQQQ")        # handler, flags, restorer, mask (kernel layout)
STACK_T = struct.Struct("<QiiQ")          # ss_sp, ss_flags, pad, ss_size
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
ALL = (1 << 64) - 1


def dump_actions(rem, scratch):
    """{signo: {handler, flags, restorer, mask}} for every non-default disposition, asked
    by injected rt_sigaction calls."""
    raw = {}
    old = scratch.reserve(SIGACTION.size)
    for sig in range(1, NSIG + 1):
        if sig in UNCATCHABLE:
            continue
        rem.call("rt_sigaction", sig, 0, old, 8)
        raw[sig] = SIGACTION.unpack(scratch.read(old, SIGACTION.size))
    scratch.reset()
    return actions_image(raw)


def actions_image(raw):
    """The dispositions' image from {signo: (handler, flags, restorer, mask)} (injected
    calls' answers, or sighand->action read by the task iterator)."""
    out = {}
    for sig, (handler, flags, restorer, mask) in sorted(raw.items()):
        if sig not in UNCATCHABLE and (handler or flags or mask):
            out[str(sig)] = {"handler": handler, "flags": flags, "restorer": restorer,
                             "mask": mask}
    return out


def restore_actions(rem, scratch, actions):
    for sig, act in actions.items():
        at = scratch.put(SIGACTION.pack(act["handler"], act["flags"], act["restorer"],
                                        act["mask"]))
        rem.call("rt_sigaction", int(sig), at, 0, 8)
        scratch.reset()


def peek_pending(tid, shared):
    """Raw siginfos of the signals pending for a thread (or its process), in queue order."""
    flags = ptrace.PEEKSIGINFO_SHARED if shared else 0
    found = []
    while True:
        batch = ptrace.peeksiginfo(tid, off=len(found), nr=32, flags=flags)
        if not batch:
            return found
        found += batch


def signo(siginfo):
    return struct.unpack_from("<i", siginfo)[0]


def queue_pending(rem, scratch, pid, tid, siginfos, shared):
    """Queue signals again from inside the process (only a process may queue itself
    signals that look kernel- or kill()-sent)."""
    if siginfos:                    # called from inside: the ids of its pid namespace
        pid, tid = proc.ns_tid(pid, pid), proc.ns_tid(pid, tid)
    for raw in siginfos:
        info = scratch.put(bytes.fromhex(raw))
        sig = signo(bytes.fromhex(raw))
        if shared:
            got = rem.call("rt_sigqueueinfo", pid, sig, info, check=False)
        else:
            got = rem.call("rt_tgsigqueueinfo", pid, tid, sig, info, check=False)
        scratch.reset()
        if got < 0:
            raise RestoreError(f"cannot queue signal {sig} to {tid} (error {-got})", "signals")


def drain(rem, scratch):
    """Discard signals pending in a stub (it is blocked for all of them)."""
    mask, ts, info = scratch.put(struct.pack("<Q", ALL)), scratch.put(bytes(16)), \
        scratch.reserve(128)
    while rem.call("rt_sigtimedwait", mask, info, ts, 8, check=False) > 0:
        pass
    scratch.reset()


def dump_altstack(rem, scratch):
    old = scratch.reserve(STACK_T.size)
    rem.call("sigaltstack", 0, old)
    sp, flags, _, size = STACK_T.unpack(scratch.read(old, STACK_T.size))
    scratch.reset()
    return {"sp": sp, "flags": flags, "size": size}


def altstack_image(stack_sp, ss_sp, ss_size, ss_flags):
    """What sigaltstack(NULL, &old) answers in a thread whose stack pointer is
    ``stack_sp``, from task_struct's sas_ss_* (do_sigaltstack: sas_ss_flags(sp) | the
    flags kept)."""
    if not ss_size:
        state = SS_DISABLE
    elif ss_flags & SS_AUTODISARM:
        state = 0
    else:
        state = SS_ONSTACK if stack_sp > ss_sp and stack_sp - ss_sp <= ss_size else 0
    flags = state | ss_flags
    return {"sp": ss_sp, "flags": flags - (1 << 32) if flags >> 31 else flags,  # an int,
            "size": ss_size}                                             # as stack_t has


def altstack_args(scratch, stack):
    """sigaltstack()'s arguments that restore ``stack`` (the stack_t put in ``scratch``)."""
    flags = stack["flags"] & ~SS_ONSTACK if stack else SS_DISABLE
    sp, size = (stack["sp"], stack["size"]) if stack and not flags & SS_DISABLE else (0, 0)
    return scratch.put(STACK_T.pack(sp, flags, 0, size)), 0
