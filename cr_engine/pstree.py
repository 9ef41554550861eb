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
    pgid ("inherit" | "create" | "join" | "late"), siblings (children of its parent it
    forks itself, with CLONE_PARENT: they get its session and group), helpers (processes
    it forks that stand for a dead session or group leader: {"setsid", "ids" (the
    leader's number per level), "members" (forked with CLONE_PARENT), then they exit}).
    A session or group outside the tree (a shell job) is the restorer's own, named
    EXTERNAL here.

    Re-parenting separates a process from the leader it inherited its session or group
    from; forking it with CLONE_PARENT from a sibling that has them (the leader itself, or
    a helper with the dead leader's pid) gives it both, and the right parent.
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
    adopted, helpers, dead_sessions = {}, {}, {}
    # groups whose leader lives on in another group of the session: it makes its group
    # once its children are forked, its members join it, and it moves on at the end
    transit = {procs[p]["pgid"] for p in procs if pgid_of(p) in procs and pgid_of(p) != p
               and pgid_of(pgid_of(p)) != pgid_of(p) and sid_of(pgid_of(p)) == sid_of(p)}

    born = {}

    def born_in(leader):
        """The session a session leader must have before its setsid() (its children
        forked then stay in it), when one of its descendants needs that; else None."""
        if leader not in born:
            born[leader] = None
            for child in procs[leader]["children"]:
                sid = sid_of(child)
                if sid == child:
                    need = born_in(child)
                elif sid == leader or sid == EXTERNAL or \
                        (sid in procs and procs[sid]["ppid"] == leader):
                    need = None         # its own, or one a sibling of the child has
                else:
                    need = sid
                if need is not None and need != leader:
                    born[leader] = need
        return born[leader]

    routes, route_targets = {}, set()

    def routable(leader, target):
        """Can a child the leader's helper leaves behind climb to ``target``: an ancestor
        of the leader in its pid namespace, nothing between them an init?"""
        ns = levels(procs[leader]).get("pidns")
        at = leader
        while at in procs and at != root:
            at = procs[at]["ppid"]
            if at == target:
                return True
            if at not in procs or levels(procs[at]).get("pidns") != ns or \
                    own_id(procs[at]) == 1:
                return False
        return False

    def ancestor(a, b):
        """Is ``a`` an ancestor of ``b`` (by the dumped parents)?"""
        while b in procs and b != root:
            b = procs[b]["ppid"]
            if b == a:
                return True
        return False

    def helper(parent, child, kind, ident, before=False):
        """A helper of ``parent`` standing for dead leader ``ident`` forks ``child``
        (``before``: forked before the parent's setsid)."""
        member = next(m for m in procs.values() if m[kind] == ident)    # one it has
        numbers = levels(member)[kind]
        if 0 in numbers:
            raise Unsupported(f"pid {child}: its {'session' if kind == 'sid' else 'group'} "
                              f"{ident} comes from a pid namespace above its own and its "
                              f"leader is gone")
        spec = helpers.setdefault(parent, {}).setdefault(
            (kind, ident), {"setsid": kind == "sid", "ids": numbers, "members": [],
                            "before": before})
        spec["members"].append(child)

    def adopt(parent, child, new_sid, sid=None, before=False):
        """(session, group) ``child`` starts with when its parent's session is not its own
        (or, ``sid``, the one it must be born in): forked by its leader, a sibling
        (CLONE_PARENT), or by a helper standing for a dead leader; or None: the
        parent's, with only the group to make."""
        sid, pgid = sid or sid_of(child), pgid_of(child)
        if sid == new_sid:
            if pgid in procs or pgid in (EXTERNAL, child):
                return None
            if group_session.get(pgid) == sid and ("pgid", pgid) not in helpers.get(parent, {}):
                return None                         # made elsewhere: joined
            helper(parent, child, "pgid", pgid, before)     # a dead group leader's stand-in
            group_session[pgid] = sid
            return sid, pgid
        if sid in procs:
            leader = procs[sid]
            same_ns = levels(leader).get("pidns") == levels(procs[child]).get("pidns")
            if leader["ppid"] == parent and own_id(leader) != 1 and same_ns:
                adopted.setdefault(sid, []).append(child)
                return sid, sid
            if same_ns and routable(sid, parent):
                routes.setdefault(sid, []).append(child)
                route_targets.add(parent)
                return sid, sid
            raise Unsupported(f"pid {child}: its session {procs[child]['sid']} cannot be "
                              f"rebuilt (its leader is neither an ancestor nor a sibling it "
                              f"could be forked by, nor below its parent)")
        if sid == EXTERNAL:
            raise Unsupported(f"pid {child}: its session {procs[child]['sid']} (outside the "
                              f"tree) is not its parent's")
        first = dead_sessions.setdefault(sid, parent)
        if first != parent:
            raise Unsupported(f"pid {child}: its session {procs[child]['sid']} has no leader "
                              f"any more and members under different parents (pids {first} "
                              f"and {parent}): which branch made it is not known")
        helper(parent, child, "sid", sid)           # a dead session leader's stand-in
        group_session[sid] = sid
        return sid, sid

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
        if pid in transit:
            s["transit"] = True
            group_session[pid] = new_sid
        if pid in transit and p["zombie"]:
            s["rejoin"] = True          # once its members joined, before it exits
        elif pid in transit:
            s["pgid"] = "late"          # back to its own group, once its members joined
            late.append(pid)
        elif not s["setsid"] and pgid_of(pid) != new_pgid and pgid_of(pid) in transit:
            # joined at once (its stub waits for the group), or by an ancestor of the leader
            # (which forks it later) at the end, before the leader moves on (parents first)
            s["pgid"] = "late" if ancestor(pid, pgid_of(pid)) else "join"
            if s["pgid"] == "late":
                late.append(pid)
            else:
                new_pgid = pgid_of(pid)
        elif not s["setsid"] and pgid_of(pid) != new_pgid:
            if pgid_of(pid) == pid:
                s["pgid"] = "create"
                group_session[pid] = new_sid
            elif group_session.get(pgid_of(pid)) == new_sid:
                s["pgid"] = "join"
            else:   # made later: joined at once (a zombie, waiting for it) or at the end
                s["pgid"] = "join" if p["zombie"] else "late"
                late.append(pid)
            if s["pgid"] != "late":     # the children are forked before a late join
                new_pgid = pgid_of(pid)
        for child in p["children"]:
            if child not in procs:
                raise ImageError(f"pstree.json: child {child} of {pid} is not listed")
            need = sid_of(child) if sid_of(child) != child else born_in(child)
            if s["setsid"] and need == sid:
                start = adopt(pid, child, sid, before=True) if sid_of(child) != child else None
                if start is None:
                    s["before"].append(child)
                    visit(child, sid, pgid)
                else:
                    visit(child, *start)
                continue
            if sid_of(child) != child:
                start = adopt(pid, child, new_sid)
            elif need is not None and need != new_sid:
                start = adopt(pid, child, new_sid, need)   # a leader born in another one
            else:
                start = None
            if start is None:
                s["after"].append(child)
                visit(child, new_sid, new_pgid)
            else:
                visit(child, *start)

    visit(root, EXTERNAL, EXTERNAL)
    for pid in late:        # the group must exist once every process is forked
        group = pgid_of(pid)
        if group_session.get(group) != sid_of(pid):
            raise Unsupported(f"pid {pid}: its process group {procs[pid]['pgid']} is made by "
                              f"no process of its session when the tree is forked (its "
                              f"leader is gone, its other members join it too)")
        if procs[pid]["zombie"] and steps.get(group, {}).get("pgid") == "late":
            raise Unsupported(f"zombie {pid}: its process group {procs[pid]['pgid']} is made "
                              f"only after it must have exited")
    for pid in transit:     # a zombie leaves its group once the members that join did
        if steps[pid].get("rejoin"):
            # those that join at the end need one that joined at once still in it
            joiners = [m for m in procs if pgid_of(m) == pid and m != pid and
                       steps[m]["pgid"] == "join"]
            if not joiners:
                raise Unsupported(f"zombie {pid}: it left its process group for "
                                  f"{procs[pid]['pgid']}, and its members join it only "
                                  f"after it must have exited")
            steps[pid]["joiners"] = len(joiners)
    free, used = free_numbers(procs.values()), 0
    for leader, members in sorted(routes.items()):
        depth = len(levels(procs[leader])["pid"])
        steps[leader]["routes"] = []
        for m in members:
            steps[leader]["routes"].append(
                {"member": m, "ids": [free[level] + used for level in range(depth)]})
            used += 1
            at = leader             # where the climb starts: the helper's parent
            while at != procs[m]["ppid"]:
                if at in route_targets:
                    raise Unsupported(f"pid {m}: on its way from its session leader {leader} "
                                      f"to its parent it would stop at pid {at}, where "
                                      f"another process is routed")
                at = procs[at]["ppid"]
    for pid in route_targets:
        steps[pid]["route_target"] = True
    for pid, children in adopted.items():
        steps[pid]["siblings"] = children
    for pid, specs in helpers.items():
        steps[pid]["helpers"] = list(specs.values())
    return steps


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
