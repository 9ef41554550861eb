"""What a test's process tree looks like from outside, taken before a dump and after the
restore (or after a dump that left the tree running) and compared: a difference the
program itself would not notice still fails the test, with a readable diff.

Per process: parent (inside the tree; the root's parent is "outside"), group, session,
thread ids, tracer, the fd table (numbers, kinds, flags, offsets), the memory map (ranges,
protections and what is mapped; adjacent equal areas merged, since an engine may split or
join them), credentials, seccomp mode, rlimits, which of the tree's mount namespaces it is in; per
mount namespace of the tree: its mounts (roots, mount points, options, propagation; ids
ignored, peer groups named alike across namespaces).  Inode numbers of pipes, sockets and
anonymous memory are not compared: a restore makes new objects.

Pids are ours by default; ``own_pids`` numbers processes, groups, sessions and threads as
the tree's own pid namespace does (the uns flavor: an engine restoring a tree in a user
namespace of its own cannot choose its pids in ours).
"""

import collections
import os
import re

from . import reaper

CRED_KEYS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
             "NoNewPrivs", "Seccomp", "TracerPid")
_INODE = re.compile(r"^(pipe|socket|anon_inode):\[\d+\]$")


def snapshot(root, own_pids=False):
    """{"processes": {pid: {...}}, "mounts": [...]} of the tree rooted at ``root``."""
    pids = reaper.tree([root])
    processes = {}
    # each process's ids at every pid namespace level from the tree's down to its own
    level = len(_ns_ids(root, "NSpid") or [0]) - 1 if own_pids else 0
    for pid in pids:
        entry = _process(pid, root, pids)
        ids = _ns_ids(pid)
        if entry is not None and ids is not None:
            entry["levels"] = {key: ids[key][level:] for key in ("NSpid", "NSpgid", "NSsid")}
            processes[pid] = entry
    # mount namespaces numbered in the order of the tree's own pids (the same before and
    # after a restore that renumbers ours)
    order = sorted(processes, key=lambda p: processes[p]["levels"]["NSpid"][0])
    mounts = _mount_namespaces(order, processes)
    if own_pids:
        processes = _renumbered(processes, level)
    return {"processes": processes, "mounts": mounts}


def _renumbered(processes, level):
    """``processes`` with the pids, groups, sessions and tids of the tree's pid namespace
    (the root's, at ``level``: deeper namespaces number their processes again, each from
    1); their "levels" start there already."""
    inner = {}
    for pid, entry in processes.items():
        ids = entry["levels"]
        inner[pid] = ids["NSpid"][0]
        entry["pgid"], entry["sid"] = ids["NSpgid"][0], ids["NSsid"][0]
        if "threads" in entry:
            tids = (_ns_ids(f"{pid}/task/{t}", "NSpid") for t in entry["threads"])
            entry["threads"] = sorted(t[level] for t in tids if t)
    out = {}
    for pid, entry in processes.items():
        if pid in inner:
            if entry["parent"] != "outside":
                entry["parent"] = inner.get(entry["parent"], entry["parent"])
            out[inner[pid]] = entry
    return out


def _ns_ids(path, key=None):
    """The NSpid, NSpgid and NSsid lists of /proc/``path``/status (every level from ours
    down to its own)."""
    try:
        with open(f"/proc/{path}/status") as f:
            ids = {k: [int(n) for n in v.split()]
                   for k, _, v in (line.partition(":") for line in f)
                   if k in ("NSpid", "NSpgid", "NSsid")}
    except (FileNotFoundError, ProcessLookupError):
        return None
    return ids.get(key) if key else ids


def _process(pid, root, members):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        state, ppid, pgid, sid = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        entry = {"parent": ppid if pid != root and ppid in members else "outside",
                 "pgid": pgid, "sid": sid, "zombie": state == "Z"}
        if entry["zombie"]:
            return entry
        entry["threads"], entry["sq_threads"] = _threads(pid)
        entry["creds"] = _status(pid)
        entry["fds"] = _fds(pid)
        entry["maps"] = _maps(pid)
        with open(f"/proc/{pid}/limits") as f:
            entry["limits"] = f.read().splitlines()[1:]
        return entry
    except (FileNotFoundError, ProcessLookupError):
        return None                     # exited meanwhile: the tree itself will differ


PF_IO_WORKER = 0x10


def _threads(pid):
    """(the tids of the process's own threads, how many io_uring SQ threads it has).
    io_uring's threads are the kernel's: an SQ thread is made again with its ring, under a
    tid nobody can choose, and io-wq workers come and go by themselves."""
    own, sq = [], 0
    for name in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{name}/stat") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        comm, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
        if int(fields[6]) & PF_IO_WORKER:
            sq += comm.startswith("iou-sqp-")
        else:
            own.append(int(name))
    return sorted(own), sq


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in CRED_KEYS:
                out[key] = " ".join(value.split())
    return out


def _fds(pid):
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
            with open(f"/proc/{pid}/fdinfo/{name}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue
        kind = _INODE.sub(r"\1", link)
        out[int(name)] = f"{kind} flags {info['flags'].strip()} pos {info['pos'].strip()}"
    return dict(sorted(out.items()))


def _maps(pid):
    """[(start, end, perms, what)], adjacent areas with the same perms and name joined."""
    areas = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            what = _mapped(parts[1], parts[5].strip() if len(parts) > 5 else "")
            if areas and areas[-1][1] == start and areas[-1][2:] == (parts[1], what):
                areas[-1] = (areas[-1][0], end, parts[1], what)
            else:
                areas.append((start, end, parts[1], what))
    return areas


# names one shared anonymous mapping goes by, depending on who made it: mmap(MAP_SHARED |
# MAP_ANONYMOUS), a shmem file, or CRIU's memfd standing in for it
_SHARED_ANON = ("/dev/zero (deleted)", "/memfd:/dev/zero (deleted)")


def _mapped(perms, name):
    if perms[3] == "s" and (name in _SHARED_ANON or name.startswith("[anon_shmem")):
        return "(shared anonymous)"
    return name


def _mount_namespaces(order, processes):
    """The mount lines of every mount namespace the processes of ``order`` are in, each
    prefixed "nsN" (N: in the order first met; "host" for ours), read through a process
    of it at its root (a chrooted one sees less); each process's entry gets its
    "mnt_ns"."""
    ours = os.readlink("/proc/self/ns/mnt")
    members = {}
    for pid in order:
        try:
            link = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            continue                    # a zombie
        members.setdefault(link, []).append(pid)
    out, names = [], {}
    for index, (link, pids) in enumerate(members.items()):
        name = "host" if link == ours else f"ns{index}"
        for pid in pids:
            processes[pid]["mnt_ns"] = name
        whole = [p for p in pids if _root_of(p) == "/"] or pids
        out += [f"{name} {line}" for line in _mounts(whole[0], names)]
    return out


def _root_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def _mounts(pid, names=None):
    """(root, mount point, stack depth, options, propagation, fs type, source, super
    options) of each mount process ``pid`` sees, sorted.  Mount ids are left out, and
    peer groups are named canonically (g1, g2, ... in the order the sorted lines first
    name them; ``names`` carries the naming over several namespaces), so that a group
    restored under another number reads the same while a group split in two, or two
    merged, does not; the stack depth (mounts under it at the same point) tells an
    overmount's order."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return mount_lines(f.read().splitlines(), names)
    except (FileNotFoundError, ProcessLookupError):
        return []


def mount_lines(lines, names=None):
    """mountinfo ``lines`` as _mounts() compares them."""
    rows, depth = [], collections.Counter()
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields = head.split()
        point = fields[4]
        tags = [tag.partition(":") for tag in fields[6:]]
        rows.append(((point, depth[point], fields[3], *tail.split()[:2]), fields, tags, tail))
        depth[point] += 1
    rows.sort(key=lambda row: row[0])
    names, out = {} if names is None else names, []
    for (point, level, *_), fields, tags, tail in rows:
        propagation = []
        for kind, _, number in sorted(tags):
            if number:          # shared:N, master:N, propagate_from:N
                propagation.append(f"{kind}:{names.setdefault(number, f'g{len(names) + 1}')}")
            else:
                propagation.append(kind)
        out.append(" ".join([fields[3], point, f"#{level}", fields[5],
                             " ".join(propagation) or "private"] + tail.split()))
    return out


def differences(before, after):
    """Readable lines telling how ``after`` differs from ``before`` (empty: the same)."""
    lines = []
    was, now = before["processes"], after["processes"]
    for pid in sorted(set(was) | set(now)):
        if pid not in now:
            lines.append(f"pid {pid}: gone")
        elif pid not in was:
            lines.append(f"pid {pid}: new process")
        else:
            lines += [f"pid {pid}: {line}" for line in _process_diff(was[pid], now[pid])]
    lines += _list_diff("mount", before["mounts"], after["mounts"])
    return lines


def _process_diff(a, b):
    lines = []
    for key in ("parent", "pgid", "sid", "levels", "zombie", "threads", "sq_threads",
                "mnt_ns"):
        if a.get(key) != b.get(key):
            lines.append(f"{key} {a.get(key)} -> {b.get(key)}")
    for key in sorted(set(a.get("creds", {})) | set(b.get("creds", {}))):
        x, y = a.get("creds", {}).get(key), b.get("creds", {}).get(key)
        if x != y:
            lines.append(f"{key}: {x} -> {y}")
    fa, fb = a.get("fds", {}), b.get("fds", {})
    for fd in sorted(set(fa) | set(fb)):
        if fa.get(fd) != fb.get(fd):
            lines.append(f"fd {fd}: {fa.get(fd, '(none)')} -> {fb.get(fd, '(none)')}")
    lines += _list_diff("map", [_area(x) for x in a.get("maps", [])],
                        [_area(x) for x in b.get("maps", [])])
    lines += _list_diff("limit", a.get("limits", []), b.get("limits", []))
    return lines


def _area(area):
    start, end, perms, what = area
    return f"{start:x}-{end:x} {perms} {what}".rstrip()


def _list_diff(what, a, b):
    """Lines gone and new, counted (a duplicate that appears or goes is a difference)."""
    was, now = collections.Counter(a), collections.Counter(b)
    gone = list((was - now).elements())
    new = list((now - was).elements())
    return [f"{what} - {x}" for x in gone] + [f"{what} + {x}" for x in new]
