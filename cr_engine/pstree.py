"""The process tree image (pids, tids, sessions, process groups, zombies) and the plan that
recreates it: who forks whom, in which order, and where setsid()/setpgid() happen.

Sessions and groups can only be inherited or created, never joined across sessions, so the
plan simulates the creation and refuses (at dump time already) trees it could not rebuild.
"""

import os
import resource
import signal

from kernel.procfs import status as proc_status

from .errors import ImageError, Unsupported

EXTERNAL = "external"


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
                 "levels": _levels(pid, sorted(p.threads) or [pid])}
        if p.zombie:
            entry["exit_status"] = p.stat["exit_code"]
        processes.append(entry)
    pstree = {"root": tree.root, "external": external, "processes": processes,
              "pidns": bool(getattr(tree, "pidns", None))}
    plan(pstree)            # refuse now what could not be rebuilt
    return pstree


def _levels(pid, threads):
    """The ids of a process at every pid namespace level from ours down to its own (NSpid,
    NSpgid, NSsid: 0 where a group or session is not visible), each thread's too, and its
    pid namespace (the link's text: a name for it within this dump)."""
    st = proc_status(pid)
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
    """{pid: steps} for every process; raises Unsupported naming what cannot be rebuilt.

    steps: setsid (bool), before (children forked before setsid), after (the others),
    pgid ("inherit" | "create" | "join" | "late").  A session or group outside the tree
    (a shell job) is the restorer's own, named EXTERNAL here.
    """
    procs = {p["pid"]: p for p in pstree["processes"]}
    root = pstree["root"]
    if root not in procs:
        raise ImageError("pstree.json: the root is not among the processes")
    external = pstree.get("external", {})

    def sid_of(pid):
        sid = procs[pid]["sid"]
        return EXTERNAL if sid == external.get("sid") else sid

    def pgid_of(pid):
        pgid = procs[pid]["pgid"]
        return EXTERNAL if pgid == external.get("pgid") else pgid

    group_session = {EXTERNAL: EXTERNAL}     # groups that exist so far -> their session
    steps, late = {}, []

    def visit(pid, sid, pgid):
        p = procs[pid]
        s = steps[pid] = {"setsid": False, "before": [], "after": [], "pgid": "inherit"}
        if sid_of(pid) == pid:
            s["setsid"] = True
            new_sid = new_pgid = pid
            group_session[pid] = pid
        elif sid_of(pid) == sid:
            new_sid, new_pgid = sid, pgid
        else:
            raise Unsupported(f"pid {pid}: its session {p['sid']} cannot be rebuilt (the "
                              f"leader is not an ancestor it could inherit it from)")
        if not s["setsid"] and pgid_of(pid) != new_pgid:
            if pgid_of(pid) == pid:
                s["pgid"] = "create"
                group_session[pid] = new_sid
            elif group_session.get(pgid_of(pid)) == new_sid:
                s["pgid"] = "join"
            elif p["zombie"]:
                raise Unsupported(f"zombie {pid}: its process group {p['pgid']} does not "
                                  f"exist when it must be created")
            else:
                s["pgid"] = "late"
                late.append(pid)
            new_pgid = pgid_of(pid)
        for child in p["children"]:
            if child not in procs:
                raise ImageError(f"pstree.json: child {child} of {pid} is not listed")
            if s["setsid"] and sid_of(child) == sid:
                s["before"].append(child)
                visit(child, sid, pgid)
            else:
                s["after"].append(child)
                visit(child, new_sid, new_pgid)

    visit(root, EXTERNAL, EXTERNAL)
    for pid in late:
        group = pgid_of(pid)
        if group not in procs or pgid_of(group) != group:
            raise Unsupported(f"pid {pid}: its process group {group} has no leader in the "
                              f"tree to recreate it")
    return steps


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
