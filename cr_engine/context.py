"""The small attributes of a process and its threads: resource limits, nice value,
scheduling policy and priority, pdeath signal, no_new_privs, dumpable, the child-subreaper
flag.

Nice values and scheduling are read and set from outside (getpriority/sched_getscheduler on
the tid); the prctl() attributes by calls injected into the frozen thread.  At restore the
irreversible ones (no_new_privs, dumpable 0) come last, and the root's pdeath signal is left
unset: its parent is the restorer, whose exit would deliver it.
"""

import functools
import os
import resource

from kernel.process import (PR_GET_CHILD_SUBREAPER, PR_GET_MDWE, PR_GET_PDEATHSIG,
                            PR_SET_CHILD_SUBREAPER, PR_SET_MDWE, PR_SET_NO_NEW_PRIVS,
                            PR_SET_PDEATHSIG, prctl)

from . import proc
from .errors import RestoreError

RLIMITS = {name: getattr(resource, name) for name in dir(resource)
           if name.startswith("RLIMIT_") and name != "RLIMIT_NLIMITS"}
RLIMITS.setdefault("RLIMIT_LOCKS", 10)      # Linux has it; Python's resource module does not
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
MMF_DUMPABLE_MASK = 3


def dump_rlimits(pid):
    """{name: [soft, hard]} from /proc/pid/limits (prlimit(2) on another user's process
    would need CAP_SYS_RESOURCE)."""
    values = proc.limits(pid)
    return {name: list(values[res]) for name, res in RLIMITS.items() if res < len(values)}


def _get_int(rem, scratch, option):
    out = scratch.reserve(4)
    rem.call("prctl", option, out, 0, 0, 0)
    value = int.from_bytes(scratch.read(out, 4), "little", signed=True)
    scratch.reset()
    return value


def dump_process(rem, scratch):
    return process_image(rem.call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0),
                         bool(_get_int(rem, scratch, PR_GET_CHILD_SUBREAPER)))


def process_image(dumpable, child_subreaper):
    """``dumpable``: PR_GET_DUMPABLE's answer, or mm->flags (get_dumpable() keeps it in the
    low two bits)."""
    return {"dumpable": dumpable & MMF_DUMPABLE_MASK, "child_subreaper": child_subreaper}


def dump_mdwe(rem):
    """PR_GET_MDWE's flags (0 where the kernel has no MDWE): mm->flags' bits for it moved
    between kernels, so the process is asked - where the kernel knows the call at all (an
    injected call per process in the frozen window)."""
    if not _kernel_has_mdwe():
        return 0
    got = rem.call("prctl", PR_GET_MDWE, 0, 0, 0, 0, check=False)
    return got if got > 0 else 0


@functools.cache
def _kernel_has_mdwe():
    try:
        prctl(PR_GET_MDWE)
    except OSError:
        return False
    return True


def dump_thread(rem, scratch, tid, status, pdeath_signal=None):
    """``status``: the thread's /proc/PID/task/TID/status; ``pdeath_signal``: read from
    its task_struct already (None: ask the thread)."""
    if pdeath_signal is None:
        pdeath_signal = _get_int(rem, scratch, PR_GET_PDEATHSIG)
    return {"nice": os.getpriority(os.PRIO_PROCESS, tid),
            "policy": os.sched_getscheduler(tid),
            "priority": os.sched_getparam(tid).sched_priority,
            "pdeath_signal": pdeath_signal,
            "no_new_privs": status.get("NoNewPrivs") == "1"}


def restore_thread(rem, tid, ctx, is_root):
    try:
        os.sched_setscheduler(tid, ctx["policy"], os.sched_param(ctx["priority"]))
        os.setpriority(os.PRIO_PROCESS, tid, ctx["nice"])
    except OSError as e:
        raise RestoreError(f"cannot give thread {tid} scheduling policy {ctx['policy']:#x} "
                           f"priority {ctx['priority']} nice {ctx['nice']} ({e.strerror})",
                           "state") from None
    if ctx["pdeath_signal"] and not is_root:
        rem.call("prctl", PR_SET_PDEATHSIG, ctx["pdeath_signal"], 0, 0, 0)


def restore_process(rem, ctx):
    if ctx["child_subreaper"]:
        rem.call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def restore_last(remotes, process_ctx, thread_ctxs):
    """The settings that cannot be undone: after everything else of the process, the
    credentials included (a change of uid resets dumpable)."""
    for tid, ctx in thread_ctxs.items():
        if ctx["no_new_privs"]:
            remotes[tid].call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    rem = next(iter(remotes.values()))
    if process_ctx["dumpable"] in (0, 1):    # 2 (suid_dumpable) cannot be set by prctl
        rem.call("prctl", PR_SET_DUMPABLE, process_ctx["dumpable"], 0, 0, 0)
    if process_ctx.get("mdwe"):     # last: from here no mapping of it may become executable
        got = rem.call("prctl", PR_SET_MDWE, process_ctx["mdwe"], 0, 0, 0, check=False)
        if got < 0:
            raise RestoreError(f"cannot deny write-execute memory to pid {rem.tid} again "
                               f"(prctl PR_SET_MDWE {process_ctx['mdwe']:#x}: "
                               f"{os.strerror(-got)}; MDWE is 6.3+)", "state")
