"""Random process tree scripts for randtree.c: forks, exits (zombies, or reaped), setsid,
setpgid (a new group, or another process's), child subreapers on and off.

A small model of the kernel's rules keeps every op valid (setsid by a group leader,
setpgid by a session leader or across sessions, a reap of a child that is not a zombie
would fail) and re-parents orphans as the kernel does: to the nearest live ancestor that
is a child subreaper (the root always is, or is an init).  Weights favour what separates
sessions and groups from their leaders: exits of processes with children.
"""

import random

MAX_PROCS = 16


class _Process:
    def __init__(self, ident, parent, sid, pgid):
        self.id, self.parent, self.sid, self.pgid = ident, parent, sid, pgid
        self.alive, self.zombie, self.subreaper = True, False, False


def script(seed, steps=40):
    """The ops of tree ``seed`` as randtree.c's --script value."""
    rng = random.Random(seed)
    procs = {0: _Process(0, None, 0, 0)}     # the root: its own session and group
    procs[0].subreaper = True
    ops = []

    def live():
        return [p for p in procs.values() if p.alive]

    def in_group(pgid):
        return [p for p in procs.values() if (p.alive or p.zombie) and p.pgid == pgid]

    for _ in range(steps):
        choices = []
        for p in live():
            if len(procs) < MAX_PROCS:
                choices += [("f", p)] * 4
            if p.id and not in_group(p.id):
                choices.append(("s", p))
            if p.sid != p.id and p.pgid != p.id:
                choices.append(("g", p))
            if p.sid != p.id:
                for q in procs.values():
                    if (q.alive or q.zombie) and q.sid == p.sid and q.pgid != p.pgid:
                        choices.append(("j", p, q))
            if p.id:
                choices.append(("u", p))
                kids = [c for c in procs.values() if c.parent == p.id and c.alive]
                choices += [("x", p)] * (1 + 2 * len(kids))
            for c in procs.values():
                if c.parent == p.id and c.zombie:
                    choices.append(("w", p, c))
        kind, p, *rest = rng.choice(choices)
        if kind == "f":
            child = _Process(len(procs), p.id, p.sid, p.pgid)
            procs[child.id] = child
            ops.append(f"f.{p.id}.{child.id}")
        elif kind == "s":
            p.sid = p.pgid = p.id
            ops.append(f"s.{p.id}")
        elif kind == "g":
            p.pgid = p.id
            ops.append(f"g.{p.id}")
        elif kind == "j":
            p.pgid = rest[0].pgid
            ops.append(f"j.{p.id}.{rest[0].id}")
        elif kind == "u":
            p.subreaper = not p.subreaper
            ops.append(f"u.{p.id}.{int(p.subreaper)}")
        elif kind == "x":
            _exit(procs, p)
            ops.append(f"x.{p.id}.{rng.randrange(256)}")
        elif kind == "w":
            rest[0].zombie = False
            ops.append(f"w.{p.id}.{rest[0].id}")
    return ",".join(ops)


def _exit(procs, p):
    """``p`` exits: its live children and zombies go to the nearest live subreaper above."""
    reaper = procs[p.parent]
    while not (reaper.alive and reaper.subreaper):
        reaper = procs[reaper.parent]
    for c in procs.values():
        if c.parent == p.id and (c.alive or c.zombie):
            c.parent = reaper.id
    p.alive, p.zombie, p.subreaper = False, True, False
