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
                 "children": p.children, "zombie": p.zombie, "stopped": p.stopped}
        if p.zombie:
            entry["exit_status"] = p.stat["exit_code"]
        if getattr(tree, "pidns", None):
            entry["ns"] = _ns_ids(pid, entry["threads"])
        processes.append(entry)
    pstree = {"root": tree.root, "external": external, "processes": processes,
              "pidns": bool(getattr(tree, "pidns", None))}
    plan(pstree)            # refuse now what could not be rebuilt
    return pstree


def _ns_ids(pid, threads):
    """The ids of a process of a pid namespace tree as the namespace sees them: pid,
    process group, session and {tid: its tid there}."""
    st = proc_status(pid)
    inner = {key: int(st[key].split()[-1]) for key in ("NSpid", "NSpgid", "NSsid")}
    tids = {}
    for tid in threads:
        try:
            tids[str(tid)] = int(proc_status(f"{pid}/task/{tid}")["NSpid"].split()[-1])
        except (FileNotFoundError, KeyError):
            tids[str(tid)] = inner["NSpid"] if tid == pid else None
    return {"pid": inner["NSpid"], "pgid": inner["NSpgid"], "sid": inner["NSsid"],
            "tids": tids}


def set_tid(entry, tid=None, own_only=False):
    """The set_tid array that makes ``tid`` (default: the process) again: innermost level
    first, so [its id in the tree's pid namespace, ours] for a namespace tree; ``own_only``:
    the tree's level alone (ours is the kernel's choice)."""
    tid = entry["pid"] if tid is None else tid
    if "ns" not in entry:
        return [tid]
    inner = entry["ns"]["tids"][str(tid)]
    return [inner] if own_only else [inner, tid]


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
