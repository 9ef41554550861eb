"""How a dumped process tree is forked again: who forks whom, in which order, and where
setsid() and setpgid() happen (pstree.plan's work).

Sessions and process groups cannot be named at fork time; the kernel's rules decide them:

- fork() copies the caller's session and group to the child;
- clone() with CLONE_PARENT makes the child its caller's sibling (the caller's parent is
  its parent) and still copies the caller's session and group;
- setsid() makes a session and a group numbered as the caller, and fails for a group
  leader; setpgid() makes a group numbered as the caller, or joins one that exists in the
  caller's session, never one of another session, and never for a session leader;
- an orphan climbs to its nearest live ancestor that is a child subreaper (or its pid
  namespace's init).

So the plan walks the tree from the root, each process starting with the session and group
of whoever forks it, and simulates every setsid() and setpgid(): a tree it could not build
this way is refused, at dump time already.  The ways it gets a process the session and
group it had, when its parent's are not those:

- Forked before setsid: a session leader whose children stayed in the session it was
  born in forks them before its setsid().  "Born in": a session leader may itself have to
  be forked into a session other than its parent's, for a descendant that must stay in it.
- Siblings: a child whose session leader is its sibling (same parent, same pid namespace,
  not an init) is forked by that leader with CLONE_PARENT: the leader's session, the
  right parent.
- Helpers: for a leader that is gone, the parent forks a helper with the leader's pids
  (set_tid), which makes the session or group, forks its members with CLONE_PARENT, and
  exits.  A dead session's members must share a parent (else which branch made it is not
  known), and its number must be visible at every level of their pid namespaces.
- Transit groups: a group whose leader lives on in another group of the session.  The
  leader makes it once its children are forked; members join it then (waiting for it to
  exist), or at the end when they are the leader's ancestors (they fork it after their own
  step); the leader moves on to its own group at the end.  A zombie leader moves on
  itself before it exits, once the members that join at fork time did (at least one must:
  the group lives on through them).
- Routing: a child whose session leader is below its parent (a cousin, a nephew) in the
  same pid namespace, with no init between them.  The leader forks a helper (at free pids
  above the image's) that forks the child and exits: the orphan climbs to its parent,
  flagged child subreaper for the time of the fork.  No other route target may stand on
  the way.

A group joined at the end must have been made by some process of its session by then, and
a zombie cannot wait for the end.
"""

from .errors import ImageError, Unsupported
from .pstree import free_numbers, levels, own_id

EXTERNAL = "external"       # the session or group a shell job has outside the tree


class TreePlan:
    """The plan of one pstree.json: ``TreePlan(pstree).steps()`` is {pid: steps}, or raises
    Unsupported naming what cannot be rebuilt (ImageError for an inconsistent image).

    Each process's steps, in the order its stub takes them:

    - ``setsid`` (bool): it calls setsid(), after forking ``before``;
    - ``before``: children forked before its setsid(): they keep the session it was born in;
    - ``pgid``: its group once forked - "inherit" (its parent's), "create" (setpgid(0, 0)),
      "join" (setpgid() into a group another makes: it waits for it to exist) or "late"
      (joined at the end, by the restorer, once every process is forked);
    - ``after``: the other children, forked after its setsid() or setpgid();
    - ``helpers`` (if any): for dead session or group leaders, each {"setsid" (a session,
      else a group), "ids" (the leader's number per pid namespace level, ours first),
      "members" (the pids it forks with CLONE_PARENT), "before" (forked before our
      setsid(), with ``before``, else after ``after``)};
    - ``siblings`` (if any): children of its parent it forks with CLONE_PARENT, with the
      session it leads;
    - ``routes`` (if any): descendants of its parent's it forks through a helper that exits,
      each {"member", "ids" (the helper's free numbers per level, ours first)};
    - ``route_target`` (True, if any): it is child subreaper while its routed children are
      forked;
    - ``transit`` (True, if any): it makes the group it leads (members join it) once all
      that is forked, then leaves it for its dumped group: its "late" pgid, or with
    - ``rejoin`` (True, a zombie's) it joins that itself once ``joiners`` (how many members
      join at fork time) did, before it exits.

    A session or group outside the tree (a shell job) is the restorer's own: EXTERNAL here.
    """

    def __init__(self, pstree):
        self.procs = {p["pid"]: p for p in pstree["processes"]}
        self.root = pstree["root"]
        if self.root not in self.procs:
            raise ImageError("pstree.json: the root is not among the processes")
        self.external = pstree.get("external", {})
        self.plans = {}                 # pid -> its steps
        self.group_session = {EXTERNAL: EXTERNAL}   # groups made so far -> their session
        self.late = []                  # pids whose group may be made after them: checked
        self.siblings = {}              # session leader -> children forked with CLONE_PARENT
        self.helpers = {}               # parent -> {(kind, dead leader): helper spec}
        self.dead_session_parent = {}   # session without leader -> parent its helper has
        self.born_sessions = {}         # session leader -> session it is forked in (born_in)
        self.routes = {}                # session leader -> members it routes
        self.route_targets = set()      # parents the routed members climb to
        self.transit = self.transit_groups()

    def steps(self):
        """{pid: steps}: the walk from the root, then the checks only the whole tree answers."""
        self.visit(self.root, EXTERNAL, EXTERNAL)
        self.check_late_joins()
        self.count_joiners()
        self.assign_routes()
        return self.assemble()

    # --- the dumped ids ---

    def sid_of(self, pid):
        sid = self.procs[pid]["sid"]
        return EXTERNAL if sid == self.external.get("sid") else sid

    def pgid_of(self, pid):
        pgid = self.procs[pid]["pgid"]
        return EXTERNAL if pgid == self.external.get("pgid") else pgid

    def transit_groups(self):
        """Groups whose leader lives on in another group of the same session."""
        out = set()
        for pid in self.procs:
            group = self.pgid_of(pid)
            if group in self.procs and group != pid and self.pgid_of(group) != group and \
                    self.sid_of(group) == self.sid_of(pid):
                out.add(group)
        return out

    def ancestor(self, a, b):
        """Is ``a`` an ancestor of ``b`` (by the dumped parents)?"""
        while b in self.procs and b != self.root:
            b = self.procs[b]["ppid"]
            if b == a:
                return True
        return False

    # --- the walk ---

    def visit(self, pid, sid, pgid):
        """Plan ``pid``, forked into session ``sid`` and group ``pgid``, and its subtree."""
        self.plans[pid] = {"setsid": False, "before": [], "after": [], "pgid": "inherit"}
        own_sid, own_pgid = self.plan_session(pid, sid, pgid)
        own_pgid = self.plan_group(pid, own_sid, own_pgid)
        self.plan_children(pid, (sid, pgid), (own_sid, own_pgid))

    def plan_session(self, pid, sid, pgid):
        """(session, group) ``pid`` has after its setsid() (if it leads one), forked into
        ``sid`` and ``pgid``."""
        if self.sid_of(pid) == pid:
            self.plans[pid]["setsid"] = True
            self.group_session[pid] = pid
            return pid, pid
        if self.sid_of(pid) == sid:
            return sid, pgid
        raise Unsupported(f"pid {pid}: its session {self.procs[pid]['sid']} cannot be rebuilt "
                          f"(the leader is not an ancestor it could inherit it from)")

    def plan_group(self, pid, sid, pgid):
        """The group ``pid`` forks its children in, it being in session ``sid`` and group
        ``pgid`` after its setsid(): sets its pgid step."""
        s, group = self.plans[pid], self.pgid_of(pid)
        if pid in self.transit:
            s["transit"] = True
            self.group_session[pid] = sid
            if self.procs[pid]["zombie"]:
                s["rejoin"] = True      # once its members joined, before it exits
            else:
                s["pgid"] = "late"      # back to its own group, once its members joined
                self.late.append(pid)
            return pgid
        if s["setsid"] or group == pgid:
            return pgid
        if group in self.transit:
            # joined at once (its stub waits for the group), or by an ancestor of the leader
            # (which forks it later) at the end, before the leader moves on (parents first)
            if self.ancestor(pid, group):
                s["pgid"] = "late"
                self.late.append(pid)
                return pgid
            s["pgid"] = "join"
            return group
        if group == pid:
            s["pgid"] = "create"
            self.group_session[pid] = sid
        elif self.group_session.get(group) == sid:
            s["pgid"] = "join"
        else:       # made later: joined at once (a zombie, waiting for it) or at the end
            s["pgid"] = "join" if self.procs[pid]["zombie"] else "late"
            self.late.append(pid)       # either way checked once the tree is walked
            if s["pgid"] == "late":
                return pgid             # the children are forked before a late join
        return group

    def plan_children(self, pid, born, own):
        """Plan the children of ``pid``, which was forked into (session, group) ``born`` and
        has ``own`` after its setsid() or setpgid()."""
        s = self.plans[pid]
        for child in self.procs[pid]["children"]:
            if child not in self.procs:
                raise ImageError(f"pstree.json: child {child} of {pid} is not listed")
            leads = self.sid_of(child) == child
            need = self.born_in(child) if leads else self.sid_of(child)
            if s["setsid"] and need == born[0]:     # it stays in the session we were born in
                start = None if leads else self.adopt(pid, child, born[0], before=True)
                if start is None:
                    s["before"].append(child)
                    start = born
            else:
                if not leads:
                    start = self.adopt(pid, child, own[0])
                elif need is not None and need != own[0]:   # a leader born in another one
                    start = self.adopt(pid, child, own[0], need)
                else:
                    start = None
                if start is None:
                    s["after"].append(child)
                    start = own
            self.visit(child, *start)

    def born_in(self, leader):
        """The session a session leader must have before its setsid() (its children forked
        then stay in it), when one of its descendants needs that; else None."""
        if leader not in self.born_sessions:
            self.born_sessions[leader] = None       # (and while its subtree is looked at)
            for child in self.procs[leader]["children"]:
                sid = self.sid_of(child)
                if sid == child:
                    need = self.born_in(child)
                elif sid == leader or sid == EXTERNAL or \
                        (sid in self.procs and self.procs[sid]["ppid"] == leader):
                    need = None         # its own, or one a sibling of the child has
                else:
                    need = sid
                if need is not None and need != leader:
                    self.born_sessions[leader] = need
        return self.born_sessions[leader]

    # --- a child whose session or group is not its parent's ---

    def adopt(self, parent, child, parent_sid, sid=None, before=False):
        """(session, group) ``child`` starts with when its parent's session ``parent_sid``
        is not its own (or, ``sid``, the one it must be born in): forked by its leader, a
        sibling (CLONE_PARENT), or by a helper standing for a dead leader; or None: the
        parent's, with only the group to make."""
        sid, pgid = sid or self.sid_of(child), self.pgid_of(child)
        if sid == parent_sid:
            return self.adopt_group(parent, child, sid, pgid, before)
        if sid in self.procs:
            return self.adopt_by_leader(parent, child, sid)
        if sid == EXTERNAL:
            raise Unsupported(f"pid {child}: its session {self.procs[child]['sid']} (outside "
                              f"the tree) is not its parent's")
        return self.adopt_by_helper(parent, child, sid)

    def adopt_group(self, parent, child, sid, pgid, before):
        """Its parent's session: a group whose leader is gone (and nobody made it yet) is a
        helper's, else None (made by ``child``, or joined)."""
        if pgid in self.procs or pgid in (EXTERNAL, child):
            return None
        if self.group_session.get(pgid) == sid and \
                ("pgid", pgid) not in self.helpers.get(parent, {}):
            return None                         # made elsewhere: joined
        self.helper(parent, child, "pgid", pgid, before)    # a dead group leader's stand-in
        self.group_session[pgid] = sid
        return sid, pgid

    def adopt_by_leader(self, parent, child, sid):
        """A live session leader forks ``child``: as its sibling, or routed to its parent."""
        leader = self.procs[sid]
        same_ns = levels(leader).get("pidns") == levels(self.procs[child]).get("pidns")
        if leader["ppid"] == parent and own_id(leader) != 1 and same_ns:
            self.siblings.setdefault(sid, []).append(child)
            return sid, sid
        if same_ns and self.routable(sid, parent):
            self.routes.setdefault(sid, []).append(child)
            self.route_targets.add(parent)
            return sid, sid
        raise Unsupported(f"pid {child}: its session {self.procs[child]['sid']} cannot be "
                          f"rebuilt (its leader is neither an ancestor nor a sibling it "
                          f"could be forked by, nor below its parent)")

    def adopt_by_helper(self, parent, child, sid):
        """A helper standing for dead session leader ``sid`` forks ``child``."""
        first = self.dead_session_parent.setdefault(sid, parent)
        if first != parent:
            raise Unsupported(f"pid {child}: its session {self.procs[child]['sid']} has no "
                              f"leader any more and members under different parents (pids "
                              f"{first} and {parent}): which branch made it is not known")
        self.helper(parent, child, "sid", sid)      # a dead session leader's stand-in
        self.group_session[sid] = sid
        return sid, sid

    def helper(self, parent, child, kind, ident, before=False):
        """A helper of ``parent`` standing for dead leader ``ident`` forks ``child``
        (``before``: forked before the parent's setsid)."""
        member = next(m for m in self.procs.values() if m[kind] == ident)  # one it has
        numbers = levels(member)[kind]
        if 0 in numbers:        # not visible at some level: set_tid could not make it
            raise Unsupported(f"pid {child}: its {'session' if kind == 'sid' else 'group'} "
                              f"{ident} comes from a pid namespace above its own and its "
                              f"leader is gone")
        spec = self.helpers.setdefault(parent, {}).setdefault(
            (kind, ident), {"setsid": kind == "sid", "ids": numbers, "members": [],
                            "before": before})
        spec["members"].append(child)

    def routable(self, leader, target):
        """Can a child the leader's helper leaves behind climb to ``target``: an ancestor
        of the leader in its pid namespace, nothing between them an init?"""
        ns = levels(self.procs[leader]).get("pidns")
        at = leader
        while at in self.procs and at != self.root:
            at = self.procs[at]["ppid"]
            if at == target:
                return True
            if at not in self.procs or levels(self.procs[at]).get("pidns") != ns or \
                    own_id(self.procs[at]) == 1:
                return False
        return False

    # --- once the whole tree is walked ---

    def check_late_joins(self):
        """A group joined late (at the end, or by a zombie that waits) must be made by
        then, and a zombie cannot wait for one made at the end."""
        for pid in self.late:
            group = self.pgid_of(pid)
            if self.group_session.get(group) != self.sid_of(pid):
                raise Unsupported(f"pid {pid}: its process group {self.procs[pid]['pgid']} is "
                                  f"made by no process of its session when the tree is forked "
                                  f"(its leader is gone, its other members join it too)")
            if self.procs[pid]["zombie"] and self.plans.get(group, {}).get("pgid") == "late":
                raise Unsupported(f"zombie {pid}: its process group {self.procs[pid]['pgid']} "
                                  f"is made only after it must have exited")

    def count_joiners(self):
        """A zombie transit leader leaves its group once the members that join at fork time
        did; those that join at the end need one of them still in it."""
        for pid in self.transit:
            if not self.plans[pid].get("rejoin"):
                continue
            joiners = [m for m in self.procs if self.pgid_of(m) == pid and m != pid and
                       self.plans[m]["pgid"] == "join"]
            if not joiners:
                raise Unsupported(f"zombie {pid}: it left its process group for "
                                  f"{self.procs[pid]['pgid']}, and its members join it only "
                                  f"after it must have exited")
            self.plans[pid]["joiners"] = len(joiners)

    def assign_routes(self):
        """Free numbers for the routing helpers; a routed member must not stop at another
        route target on its climb."""
        free, used = free_numbers(self.procs.values()), 0
        for leader, members in sorted(self.routes.items()):
            depth = len(levels(self.procs[leader])["pid"])
            self.plans[leader]["routes"] = []
            for m in members:
                self.plans[leader]["routes"].append(
                    {"member": m, "ids": [free[level] + used for level in range(depth)]})
                used += 1
                at = leader             # where the climb starts: the helper's parent
                while at != self.procs[m]["ppid"]:
                    if at in self.route_targets:
                        raise Unsupported(f"pid {m}: on its way from its session leader "
                                          f"{leader} to its parent it would stop at pid "
                                          f"{at}, where another process is routed")
                    at = self.procs[at]["ppid"]

    def assemble(self):
        """The steps, with what the walk kept aside (route targets, siblings, helpers)."""
        for pid in self.route_targets:
            self.plans[pid]["route_target"] = True
        for pid, children in self.siblings.items():
            self.plans[pid]["siblings"] = children
        for pid, specs in self.helpers.items():
            self.plans[pid]["helpers"] = list(specs.values())
        return self.plans
