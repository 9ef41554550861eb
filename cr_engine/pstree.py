"""The process tree image (pids, tids, sessions, process groups, zombies), each process's ids
per pid namespace level, and the plan that recreates the tree (worked out by treeplan):
who forks whom, in which order, and where setsid()/setpgid() happen.

Sessions and groups can only be inherited or created, never joined across sessions, so the
plan simulates the creation and refuses (at dump time already) trees it could not rebuild.
"""

import os
import resource
import signal

from kernel.procfs import status as proc_status

from .errors import Unsupported


def image(tree, shell_job):
    """pstree.json from a FrozenTree."""
    root = tree.processes[tree.root]
    pids = set(tree.processes)
    external = {}
    for key, what in (("session", "sid"), ("pgrp", "pgid")):
        value = root.stat[key]
        if value not in pids:
            if not shell_job:
                raise Unsupported(f"the {'session' if what == 'sid' else 'process group'} "
                                  f"{value} of pid {tree.root} is outside the tree "
                                  f"(a shell job: use --shell-job)")
            external[what] = value
    processes = []
    for pid, p in tree.processes.items():
        entry = {"pid": pid, "comm": p.stat["comm"], "ppid": p.stat["ppid"],
                 "pgid": p.stat["pgrp"],
                 "sid": p.stat["session"], "threads": sorted(p.threads) or [pid],
                 "children": p.children, "zombie": p.zombie, "stopped": p.stopped,
                 "levels": _levels(pid, sorted(p.threads) or [pid], p.status)}
        if p.zombie:
            entry["exit_status"] = p.stat["exit_code"]
        processes.append(entry)
    pstree = {"root": tree.root, "external": external, "processes": processes,
              "pidns": bool(getattr(tree, "pidns", None))}
    plan(pstree)            # refuse now what could not be rebuilt
    return pstree


def _levels(pid, threads, st=None):
    """The ids of a process at every pid namespace level from ours down to its own (NSpid,
    NSpgid, NSsid: 0 where a group or session is not visible), each thread's too, and its
    pid namespace (the link's text: a name for it within this dump)."""
    st = st or proc_status(pid)         # a zombie's is not read at freeze
    out = {key: [int(n) for n in st[name].split()]
           for key, name in (("pid", "NSpid"), ("pgid", "NSpgid"), ("sid", "NSsid"))}
    out["tids"] = {}
    for tid in threads:
        try:
            out["tids"][str(tid)] = [int(n) for n in
                                     proc_status(f"{pid}/task/{tid}")["NSpid"].split()]
        except (FileNotFoundError, KeyError):
            out["tids"][str(tid)] = out["pid"] if tid == pid else None
    out["pidns"] = os.readlink(f"/proc/{pid}/ns/pid")
    try:            # where its children go (another after unshare(CLONE_NEWPID) or setns)
        out["for_children"] = os.readlink(f"/proc/{pid}/ns/pid_for_children")
    except FileNotFoundError:       # a zombie's
        out["for_children"] = out["pidns"]
    return out


def levels(entry):
    """``entry``'s ids per level (images before nested namespaces: one level, or the
    namespace's ids under ``ns`` below ours)."""
    if "levels" in entry:
        return entry["levels"]
    ns = entry.get("ns")
    if ns is None:
        return {"pid": [entry["pid"]], "pgid": [entry["pgid"]], "sid": [entry["sid"]],
                "tids": {str(t): [t] for t in entry["threads"]}}
    return {"pid": [entry["pid"], ns["pid"]], "pgid": [entry["pgid"], ns["pgid"]],
            "sid": [entry["sid"], ns["sid"]],
            "tids": {t: [int(t), inner] for t, inner in ns["tids"].items()}}


def own_id(entry, key="pid"):
    """The process's ``key`` (pid, pgid or sid) as its own pid namespace numbers it: what a
    call made from inside it takes."""
    return levels(entry)[key][-1]


def set_tid(entry, tid=None, own_only=False):
    """The set_tid array that makes ``tid`` (default: the process) again: innermost level
    first, down to ours (the tree's levels alone with ``own_only``: ours is the kernel's
    choice)."""
    tid = entry["pid"] if tid is None else tid
    numbers = list(reversed(levels(entry)["tids"][str(tid)]))
    return numbers[:-1] if own_only else numbers


def plan(pstree):
    """{pid: steps} for every process (treeplan.TreePlan says how, and what steps hold);
    raises Unsupported naming what cannot be rebuilt."""
    from .treeplan import TreePlan      # here: treeplan builds on this module's ids
    return TreePlan(pstree).steps()


def free_numbers(entries):
    """Per level (from ours down), a number above every pid, tid, group and session the
    tree has there: helpers take theirs from it (the kernel's choice could take one a
    later set_tid needs)."""
    highest = {}
    for entry in entries:
        ids = levels(entry)
        for numbers in list(ids["tids"].values()) + [ids["pgid"], ids["sid"]]:
            for level, n in enumerate(numbers or ()):
                highest[level] = max(highest.get(level, 0), n)
    return [highest.get(level, 0) + 1 for level in range(max(highest, default=0) + 1)]


def order(pstree):
    """Pids in creation order (parents before children)."""
    procs = {p["pid"]: p for p in pstree["processes"]}
    out, todo = [], [pstree["root"]]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(procs[pid]["children"])
    return out


def exit_like(status):
    """Terminate the calling process so that its parent's wait() sees ``status``."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status))
