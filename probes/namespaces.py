"""Namespaces: creating each kind, the nsfs ioctls, setns by pidfd, ids, limits.

Namespaces are created in forked children (one child unshares every kind in
turn and reports each); the nsfs ioctls that only read are used in-process
on /proc/self/ns/* fds.  Without CAP_SYS_ADMIN the children first enter a
user namespace of their own, which is what an unprivileged engine would do.
"""

import errno
import functools
import os

from kernel import caps
from kernel import namespaces as ns
from kernel import process
from kernel.mount import STATMOUNT_MNT_NS_ID

from .common import closing_fds
from .mounts import mountinfo, statmount_root
from .registry import absent, errname, present, probe, undecided
from .sandbox import in_child

SYS_ADMIN = "CAP_SYS_ADMIN"

# kind -> (/proc/self/ns link that changes when the caller unshares it)
_CHANGED_LINK = {"mnt": "mnt", "uts": "uts", "ipc": "ipc", "net": "net", "cgroup": "cgroup",
                 "pid": "pid_for_children", "time": "time_for_children", "user": "user"}

NEXT_ID_SYSCTLS = ("sem_next_id", "msg_next_id", "shm_next_id")
NEXT_ID_TEST_VALUE = 4242
TIMENS_TEST_OFFSET = "monotonic 86400 0"


def _readlink(name):
    try:
        return os.readlink(f"/proc/self/ns/{name}")
    except OSError:
        return None


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path):
    with open(path) as f:
        return f.read()


def _unshare_every_kind(userns_first, uid, gid):
    """In a child: unshare each namespace kind alone; what changed, and the errno of each.

    In the new IPC namespace the *_next_id sysctls are written and read back;
    in the new time namespace an offset is written to timens_offsets.
    """
    seen = {}
    order = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "time"]
    order = ["user", *order] if userns_first else [*order, "user"]
    for kind in order:
        flag, _link = ns.KINDS[kind]
        before = _readlink(_CHANGED_LINK[kind])
        try:
            ns.unshare(flag)
            code = 0
        except OSError as e:
            code = e.errno
        if kind == "pid" and code == 0:
            # pid_for_children only exists once the namespace has its first process
            entry = _first_process_of_new_pidns()
            entry["changed"] = entry["inner_pid"] == 1 and entry["link"] not in (None, before)
        else:
            entry = {"changed": code == 0 and _readlink(_CHANGED_LINK[kind]) != before}
        entry["errno"] = code
        if kind == "user" and code == 0 and userns_first:
            ns.map_self(uid, gid)
        if kind == "ipc" and code == 0:
            entry["next_id"] = _next_ids_in_new_ipcns()
        if kind == "time" and code == 0:
            entry["offsets"] = _timens_offsets()
        seen[kind] = entry
    return seen


def _first_process_of_new_pidns():
    """After unshare(CLONE_NEWPID): fork the namespace's first process (it must be pid 1
    there) and, while it lives, ask NS_GET_PARENT of the new namespace."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(hold_w)
            os.write(ready_w, str(os.getpid()).encode())
            os.read(hold_r, 1)  # until our parent closes hold_w (or dies)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        inner = os.read(ready_r, 16).decode()
        return {"inner_pid": int(inner) if inner else None,
                "link": _readlink("pid_for_children"),
                "parent": _parent_of("/proc/self/ns/pid_for_children", "/proc/self/ns/pid")}
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def _parent_of(child_path, parent_path):
    """NS_GET_PARENT of ``child_path``: errno, and whether it is ``parent_path``."""
    with closing_fds() as fds:
        try:
            fds.append(os.open(child_path, os.O_RDONLY | os.O_CLOEXEC))
            fds.append(ns.ns_get_parent(fds[0]))
        except OSError as e:
            return {"errno": e.errno, "ioctl": "NS_GET_PARENT"}
        return {"errno": 0, "same": os.fstat(fds[1]).st_ino == os.stat(parent_path).st_ino}


def _next_ids_in_new_ipcns():
    out = {}
    for name in NEXT_ID_SYSCTLS:
        path = f"/proc/sys/kernel/{name}"
        try:
            _write(path, str(NEXT_ID_TEST_VALUE))
            out[name] = {"errno": 0, "read_back": int(_read(path))}
        except OSError as e:
            out[name] = {"errno": e.errno}
    return out


def _timens_offsets():
    try:
        _write("/proc/self/timens_offsets", TIMENS_TEST_OFFSET)
        return {"errno": 0, "read_back": _read("/proc/self/timens_offsets")}
    except OSError as e:
        return {"errno": e.errno}


@functools.lru_cache(maxsize=1)
def unshare_lab():
    """One child unsharing every kind; shared by the probes of this module."""
    return in_child(_unshare_every_kind, not caps.has(SYS_ADMIN), os.getuid(), os.getgid())


# --- creating each kind ----------------------------------------------------------------------

def _judge_created(kind):
    def judge(obs):
        entry = obs[kind]
        code = entry["errno"]
        text = f"unshare(CLONE_NEW{kind.upper() if kind != 'mnt' else 'NS'})"
        if code == 0 and entry["changed"]:
            first = "; its first process is pid 1 there" if kind == "pid" else ""
            return present(f"{text} -> 0; /proc/self/ns/{_CHANGED_LINK[kind]} changed{first}")
        if code == 0:
            return undecided(f"{text} -> 0 but /proc/self/ns/{_CHANGED_LINK[kind]} did not "
                             f"change")
        if code == errno.EINVAL:  # the kernel was built without this namespace
            return absent(f"{text} -> EINVAL")
        return undecided(f"unexpected: {text} -> {errname(code)}")
    return judge


def _lab(**entries):
    base = {k: {"errno": 0, "changed": True} for k in ns.KINDS}
    base.update(entries)
    return base


def _created_examples(kind):
    return [(_lab(), True), (_lab(**{kind: {"errno": errno.EINVAL, "changed": False}}), False),
            (_lab(**{kind: {"errno": errno.EPERM, "changed": False}}), None),
            (_lab(**{kind: {"errno": 0, "changed": False}}), None)]


def _creation_exercise(kind):
    def exercise():
        return unshare_lab()
    exercise.__doc__ = (f"A {kind} namespace can be created: a child unshares it and its "
                        f"/proc/self/ns link changes.")
    return exercise


for _kind, _since in (("pid", "2.6.24"), ("net", "2.6.24"), ("ipc", "2.6.19"),
                      ("uts", "2.6.19"), ("mnt", "2.4.19")):
    probe(f"{_kind}ns", "namespaces", since=_since, needs=SYS_ADMIN,
          judge=_judge_created(_kind), examples=_created_examples(_kind))(
              _creation_exercise(_kind))


def _criu_and_created(criu_check, kind):
    """Judge with CRIU's meaning (``criu_check``), creation told in the detail."""
    created = _judge_created(kind)

    def judge(obs):
        ok, seen = criu_check(obs)
        made = created(obs["lab"])
        detail = f"{seen}; {made.detail}"
        return present(detail) if ok else absent(detail)
    return judge


def _userns_check(obs):
    if not obs["ns_file"]:
        return False, "no /proc/self/ns/user"
    if obs["mm_map_size"] is None:
        return False, f"PR_SET_MM_MAP_SIZE -> {errname(obs['mm_map_errno'])}"
    return True, f"/proc/self/ns/user exists, PR_SET_MM_MAP_SIZE -> {obs['mm_map_size']}"


def _userns_examples():
    ok = {"ns_file": True, "mm_map_size": 104, "mm_map_errno": 0, "lab": _lab()}
    return [(ok, True), ({**ok, "ns_file": False}, False),
            ({**ok, "mm_map_size": None, "mm_map_errno": errno.EINVAL}, False),
            ({**ok, "lab": _lab(user={"errno": errno.EPERM, "changed": False})}, True)]


@probe("userns", "namespaces", since="3.8", criu_name="userns",
       judge=_criu_and_created(_userns_check, "user"), examples=_userns_examples())
def userns():
    """User namespaces as CRIU's check means them: /proc/self/ns/user and PR_SET_MM_MAP.

    The detail also tells whether a child could create one.
    """
    try:
        size, code = ns.mm_map_size(), 0
    except OSError as e:
        size, code = None, e.errno
    return {"ns_file": os.path.exists("/proc/self/ns/user"), "mm_map_size": size,
            "mm_map_errno": code, "lab": _lab_or_failure()}


def _lab_or_failure():
    try:
        return unshare_lab()
    except OSError as e:
        return {k: {"errno": e.errno, "changed": False} for k in ns.KINDS}


def _file_check(path):
    def check(obs):
        return (True, f"{path} exists") if obs["exists"] else (False, f"no {path}")
    return check


def _file_examples(kind):
    return [({"exists": True, "lab": _lab()}, True), ({"exists": False, "lab": _lab()}, False),
            ({"exists": True, "lab": _lab(**{kind: {"errno": errno.EPERM,
                                                    "changed": False}})}, True)]


@probe("cgroupns", "namespaces", since="4.6", criu_name="cgroupns",
       judge=_criu_and_created(_file_check("/proc/self/ns/cgroup"), "cgroup"),
       examples=_file_examples("cgroup"))
def cgroupns():
    """Cgroup namespaces as CRIU's check means them (/proc/self/ns/cgroup); creation in detail."""
    return {"exists": os.path.exists("/proc/self/ns/cgroup"), "lab": _lab_or_failure()}


def _timens_check(obs):
    if not obs["exists"]:
        return False, "no /proc/self/timens_offsets"
    offsets = obs["lab"]["time"].get("offsets") or {}
    wrote = ""
    if offsets.get("errno") == 0:
        wrote = (f"; a new time namespace took offset '{TIMENS_TEST_OFFSET}'"
                 if TIMENS_TEST_OFFSET.split()[1] in offsets.get("read_back", "") else
                 "; the offset written did not read back")
    elif offsets:
        wrote = f"; writing an offset -> {errname(offsets['errno'])}"
    return True, f"/proc/self/timens_offsets exists{wrote}"


@probe("timens", "namespaces", since="5.6", criu_name="timens",
       judge=_criu_and_created(_timens_check, "time"),
       examples=[({"exists": True, "lab": _lab(time={"errno": 0, "changed": True, "offsets": {
                   "errno": 0, "read_back": "monotonic      86400         0\n"
                                            "boottime           0         0\n"}})}, True),
                 ({"exists": False, "lab": _lab(time={"errno": errno.EINVAL,
                                                      "changed": False})}, False),
                 ({"exists": True, "lab": _lab(time={"errno": errno.EPERM,
                                                     "changed": False})}, True)])
def timens():
    """Time namespaces as CRIU's check means them (/proc/self/timens_offsets).

    A child also unshares CLONE_NEWTIME and sets a monotonic offset for it.
    """
    return {"exists": os.path.exists("/proc/self/timens_offsets"), "lab": _lab_or_failure()}


# --- the *_next_id sysctls -------------------------------------------------------------------

def _judge_next_id(name):
    def judge(obs):
        if obs["host"] is None:
            return absent(f"no /proc/sys/kernel/{name}")
        lab = obs["lab"]["ipc"]
        if lab["errno"]:
            return undecided(f"{name} = {obs['host']} here; a new IPC namespace to test writing "
                             f"-> {errname(lab['errno'])}")
        seen = lab["next_id"][name]
        if seen["errno"] == 0 and seen["read_back"] == NEXT_ID_TEST_VALUE:
            return present(f"{name} = {obs['host']} here; writable in a new IPC namespace "
                           f"(wrote {NEXT_ID_TEST_VALUE}, read it back)", host=obs["host"])
        if seen["errno"] == 0:
            return undecided(f"wrote {NEXT_ID_TEST_VALUE} to {name}, read {seen['read_back']}")
        return undecided(f"{name} = {obs['host']} here; writing it in a new IPC namespace -> "
                         f"{errname(seen['errno'])}")
    return judge


def _next_id_examples(name):
    good = {n: {"errno": 0, "read_back": NEXT_ID_TEST_VALUE} for n in NEXT_ID_SYSCTLS}
    lab = _lab(ipc={"errno": 0, "changed": True, "next_id": good})
    bad = _lab(ipc={"errno": 0, "changed": True,
                    "next_id": {**good, name: {"errno": errno.EPERM}}})
    return [({"host": -1, "lab": lab}, True), ({"host": None, "lab": lab}, False),
            ({"host": -1, "lab": bad}, None),
            ({"host": -1, "lab": _lab(ipc={"errno": errno.EPERM, "changed": False})}, None)]


def _next_id_exercise(name):
    def exercise():
        try:
            host = int(_read(f"/proc/sys/kernel/{name}"))
        except FileNotFoundError:
            host = None
        return {"host": host, "lab": unshare_lab()}
    exercise.__doc__ = (f"/proc/sys/kernel/{name}: the id the next SysV object gets "
                        f"(restore keeps ids); written only in a new IPC namespace.")
    return exercise


for _name in NEXT_ID_SYSCTLS:
    probe(_name, "namespaces", since="3.8", needs=SYS_ADMIN, judge=_judge_next_id(_name),
          examples=_next_id_examples(_name))(_next_id_exercise(_name))


# --- *_for_children links --------------------------------------------------------------------

def _judge_for_children(link, kind):
    def judge(obs):
        if obs["link"] is None:
            return absent(f"no /proc/self/ns/{link}")
        changed = obs["lab"][kind]
        after = ("; it changes after unshare" if changed["changed"] else
                 f"; unshare -> {errname(changed['errno'])}")
        return present(f"/proc/self/ns/{link} -> {obs['link']}{after}")
    return judge


def _for_children_examples(kind, value):
    return [({"link": value, "lab": _lab()}, True), ({"link": None, "lab": _lab()}, False),
            ({"link": value, "lab": _lab(**{kind: {"errno": errno.EPERM,
                                                   "changed": False}})}, True)]


for _link, _kind, _since in (("pid_for_children", "pid", "4.12"),
                             ("time_for_children", "time", "5.6")):
    def _exercise(link=_link):
        return {"link": _readlink(link), "lab": _lab_or_failure()}
    _exercise.__doc__ = f"/proc/pid/ns/{_link}: the namespace the next child will be in."
    probe(_link, "namespaces", since=_since, judge=_judge_for_children(_link, _kind),
          examples=_for_children_examples(_kind, f"{_kind}:[4026531836]"))(_exercise)


# --- nsfs ioctls -----------------------------------------------------------------------------

def _ioctl_judge(what):
    """Judge of {"errno": e, ...}: ENOTTY absent, else a detail from ``what(obs)``."""
    def judge(obs):
        code = obs["errno"]
        if code == errno.ENOTTY:
            return absent(f"{obs.get('ioctl', 'ioctl')} -> ENOTTY")
        if code:
            return undecided(f"unexpected: {obs.get('ioctl', 'ioctl')} -> {errname(code)}")
        return what(obs)
    return judge


def _ns_ino(path):
    return os.stat(path).st_ino


def _fd_ino(fd):
    return os.fstat(fd).st_ino


@probe("ns_get_userns", "namespaces", since="4.9",
       judge=_ioctl_judge(lambda o: present("NS_GET_USERNS on ns/net -> the fd of "
                                            "/proc/self/ns/user") if o["same"] else
                          undecided("NS_GET_USERNS returned another user namespace")),
       examples=[({"errno": 0, "same": True}, True), ({"errno": 0, "same": False}, None),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_USERNS"}, False),
                 ({"errno": errno.EPERM, "ioctl": "NS_GET_USERNS"}, None)])
def ns_get_userns():
    """NS_GET_USERNS (4.9): the user namespace owning a namespace."""
    with closing_fds() as fds:
        fds.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        try:
            fds.append(ns.ns_get_userns(fds[0]))
        except OSError as e:
            return {"errno": e.errno, "ioctl": "NS_GET_USERNS"}
        return {"errno": 0, "same": _fd_ino(fds[1]) == _ns_ino("/proc/self/ns/user")}


_judge_parent_call = _ioctl_judge(
    lambda o: present("NS_GET_PARENT on a new pid namespace -> the creator's pid namespace")
    if o["same"] else undecided("NS_GET_PARENT returned another namespace"))


def _judge_parent(obs):
    pid = obs["pid"]
    if "parent" not in pid:
        return undecided(f"no pid namespace to ask: unshare(CLONE_NEWPID) -> "
                         f"{errname(pid['errno'])}")
    return _judge_parent_call(pid["parent"])


@probe("ns_get_parent", "namespaces", since="4.9", needs=SYS_ADMIN, judge=_judge_parent,
       examples=[(_lab(pid={"errno": 0, "changed": True, "parent": {"errno": 0, "same": True}}),
                  True),
                 (_lab(pid={"errno": 0, "changed": True,
                            "parent": {"errno": 0, "same": False}}), None),
                 (_lab(pid={"errno": 0, "changed": True,
                            "parent": {"errno": errno.ENOTTY, "ioctl": "NS_GET_PARENT"}}),
                  False),
                 (_lab(pid={"errno": errno.EPERM, "changed": False}), None)])
def ns_get_parent():
    """NS_GET_PARENT (4.9): the parent of a pid (or user) namespace, by nsfs fd.

    Asked in the namespace lab about a new pid namespace, while its first
    process lives (before that there is no pid_for_children to open).
    """
    return unshare_lab()


def _judge_nstype(obs):
    wrong = {k: v for k, v in obs["types"].items() if v != ns.KINDS[k][0]}
    if wrong:
        return undecided(f"NS_GET_NSTYPE gave wrong types: {wrong}")
    return present(f"NS_GET_NSTYPE names all {len(obs['types'])} kinds "
                   f"({', '.join(sorted(obs['types']))})")


@probe("ns_get_nstype", "namespaces", since="4.11",
       judge=_ioctl_judge(_judge_nstype),
       examples=[({"errno": 0, "types": {"net": ns.CLONE_NEWNET}}, True),
                 ({"errno": 0, "types": {"net": ns.CLONE_NEWUTS}}, None),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_NSTYPE"}, False)])
def ns_get_nstype():
    """NS_GET_NSTYPE (4.11): the CLONE_NEW* kind of a namespace fd."""
    types = {}
    for kind, (_flag, link) in ns.KINDS.items():
        try:
            fd = os.open(f"/proc/self/ns/{link}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # a kind this kernel was built without
        try:
            types[kind] = ns.ns_get_nstype(fd)
        except OSError as e:
            return {"errno": e.errno, "ioctl": "NS_GET_NSTYPE"}
        finally:
            os.close(fd)
    return {"errno": 0, "types": types}


@probe("ns_get_owner_uid", "namespaces", since="4.11",
       judge=_ioctl_judge(lambda o: present(f"NS_GET_OWNER_UID on /proc/self/ns/user -> "
                                            f"{o['uid']}")),
       examples=[({"errno": 0, "uid": 0}, True),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_OWNER_UID"}, False),
                 ({"errno": errno.EINVAL, "ioctl": "NS_GET_OWNER_UID"}, None)])
def ns_get_owner_uid():
    """NS_GET_OWNER_UID (4.11): the uid that created a user namespace."""
    fd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return {"errno": 0, "uid": ns.ns_get_owner_uid(fd)}
    except OSError as e:
        return {"errno": e.errno, "ioctl": "NS_GET_OWNER_UID"}
    finally:
        os.close(fd)


_PID_IOCTLS = (("NS_GET_PID_FROM_PIDNS", ns.NS_GET_PID_FROM_PIDNS),
               ("NS_GET_TGID_FROM_PIDNS", ns.NS_GET_TGID_FROM_PIDNS),
               ("NS_GET_PID_IN_PIDNS", ns.NS_GET_PID_IN_PIDNS),
               ("NS_GET_TGID_IN_PIDNS", ns.NS_GET_TGID_IN_PIDNS))


def _judge_pid_translation(obs):
    wrong = {k: v for k, v in obs["pids"].items() if v != obs["pid"]}
    if wrong:
        return undecided(f"pid {obs['pid']} translated to {wrong}")
    return present(f"{', '.join(obs['pids'])} translate pid {obs['pid']} within its own "
                   f"pid namespace")


@probe("nsfs_pid_translation", "namespaces", since="~6.11",
       judge=_ioctl_judge(_judge_pid_translation),
       examples=[({"errno": 0, "pid": 7, "pids": {"NS_GET_PID_FROM_PIDNS": 7}}, True),
                 ({"errno": 0, "pid": 7, "pids": {"NS_GET_PID_FROM_PIDNS": 9}}, None),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_PID_FROM_PIDNS"}, False)])
def nsfs_pid_translation():
    """NS_GET_{PID,TGID}_{FROM,IN}_PIDNS: translate pids between pid namespaces by nsfs fd."""
    pid = os.getpid()
    pids = {}
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for name, request in _PID_IOCTLS:
            try:
                pids[name] = ns.ns_pid_ioctl(fd, request, pid)
            except OSError as e:
                return {"errno": e.errno, "ioctl": name}
    finally:
        os.close(fd)
    return {"errno": 0, "pid": pid, "pids": pids}


def _judge_mntns_id(obs):
    same = ""
    if obs.get("statmount_id") is not None:
        same = (", statmount's mnt_ns_id agrees" if obs["statmount_id"] == obs["id"]
                else f", statmount says {obs['statmount_id']}")
    return present(f"{obs['ioctl']} on /proc/self/ns/mnt -> {obs['id']}{same}")


@probe("ns_get_mntns_id", "namespaces", since="~6.11",
       judge=_ioctl_judge(_judge_mntns_id),
       examples=[({"errno": 0, "id": 4, "ioctl": "NS_GET_MNTNS_ID", "statmount_id": 4}, True),
                 ({"errno": 0, "id": 4, "ioctl": "NS_GET_MNTNS_ID", "statmount_id": None},
                  True),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_MNTNS_ID"}, False),
                 ({"errno": errno.EBADF, "ioctl": "NS_GET_MNTNS_ID"}, None)])
def ns_get_mntns_id():
    """NS_GET_MNTNS_ID: the 64-bit id of a mount namespace (what statmount/listmount take)."""
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        seen = {"errno": errno.ENOTTY, "ioctl": "NS_GET_MNTNS_ID"}
        for legacy, name in ((False, "NS_GET_MNTNS_ID"), (True, "NS_GET_MNTNS_ID (_IO)")):
            try:
                seen = {"errno": 0, "id": ns.ns_get_mntns_id(fd, legacy), "ioctl": name}
                break
            except OSError as e:
                seen = {"errno": e.errno, "ioctl": name}
    finally:
        os.close(fd)
    if seen["errno"] == 0:
        sm = statmount_root(STATMOUNT_MNT_NS_ID)
        ok = not sm["errno"] and sm["mask"] & STATMOUNT_MNT_NS_ID
        seen["statmount_id"] = sm["mnt_ns_id"] if ok else None
    return seen


def _judge_ns_get_id(obs):
    ids = obs["ids"]
    listed = ", ".join(f"{k} {v}" for k, v in sorted(ids.items()))
    repeat = "" if len(set(ids.values())) == len(ids) else "; some ids repeat"
    return present(f"NS_GET_ID gives every kind a 64-bit id ({listed}){repeat}", ids=ids)


@probe("ns_get_id", "namespaces", since="6.18",
       judge=_ioctl_judge(_judge_ns_get_id),
       examples=[({"errno": 0, "ids": {"mnt": 4, "net": 7}}, True),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_GET_ID"}, False),
                 ({"errno": errno.EINVAL, "ioctl": "NS_GET_ID"}, None)])
def ns_get_id():
    """NS_GET_ID: the 64-bit id of a namespace of any kind (what listns returns)."""
    ids = {}
    for kind, (_flag, link) in ns.KINDS.items():
        try:
            fd = os.open(f"/proc/self/ns/{link}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            ids[kind] = ns.ns_get_id(fd)
        except OSError as e:
            return {"errno": e.errno, "ioctl": "NS_GET_ID"}
        finally:
            os.close(fd)
    return {"errno": 0, "ids": ids}


def _judge_mnt_get_info(obs):
    nxt = obs.get("next")
    walk = ("" if nxt is None else "; NS_MNT_GET_NEXT -> another namespace" if nxt == 0
            else f"; NS_MNT_GET_NEXT -> {errname(nxt)}")
    return present(f"NS_MNT_GET_INFO: mount namespace {obs['mnt_ns_id']} has "
                   f"{obs['nr_mounts']} mounts (mountinfo: {obs['mountinfo']}){walk}")


@probe("ns_mnt_get_info", "namespaces", since="~6.12",
       judge=_ioctl_judge(_judge_mnt_get_info),
       examples=[({"errno": 0, "mnt_ns_id": 4, "nr_mounts": 20, "mountinfo": 20, "next": 0},
                  True),
                 ({"errno": 0, "mnt_ns_id": 4, "nr_mounts": 20, "mountinfo": 20,
                   "next": errno.ENOENT}, True),
                 ({"errno": errno.ENOTTY, "ioctl": "NS_MNT_GET_INFO"}, False)])
def ns_mnt_get_info():
    """NS_MNT_GET_INFO / NS_MNT_GET_NEXT: size and id of a mount namespace, and the next one."""
    with closing_fds() as fds:
        fds.append(os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        try:
            _none, info = ns.ns_mnt_info(fds[0])
        except OSError as e:
            return {"errno": e.errno, "ioctl": "NS_MNT_GET_INFO"}
        seen = {"errno": 0, "mnt_ns_id": info.mnt_ns_id, "nr_mounts": info.nr_mounts,
                "mountinfo": len(mountinfo())}
        try:
            nxt, _info = ns.ns_mnt_info(fds[0], ns.NS_MNT_GET_NEXT)
            fds.append(nxt)
            seen["next"] = 0
        except OSError as e:
            seen["next"] = e.errno
    return seen


def _judge_listns(obs):
    code = obs["errno"]
    if code == errno.ENOSYS:
        return absent("listns (syscall 470) -> ENOSYS")
    if code:
        return undecided(f"unexpected: listns -> {errname(code)}")
    return present(f"listns -> {obs['count']} namespace ids")


@probe("listns", "namespaces", since="6.19",
       judge=_judge_listns,
       examples=[({"errno": 0, "count": 8}, True), ({"errno": errno.ENOSYS}, False),
                 ({"errno": errno.EINVAL}, None)])
def listns():
    """listns(2): enumerate namespaces by 64-bit id, also those no process is in."""
    try:
        return {"errno": 0, "count": len(ns.listns())}
    except OSError as e:
        return {"errno": e.errno}


# --- setns with a pidfd ----------------------------------------------------------------------

SETNS_KINDS = ("uts", "ipc", "cgroup")


def _setns_back_by_pidfd(parent):
    home = {k: _readlink(k) for k in SETNS_KINDS}
    with closing_fds() as fds:
        try:
            fds.append(process.pidfd_open(parent))
        except OSError as e:
            return {"pidfd_open": e.errno}
        flags = 0
        for kind in SETNS_KINDS:
            flags |= ns.KINDS[kind][0]
        ns.unshare(flags)
        away = {k: _readlink(k) for k in SETNS_KINDS}
        try:
            ns.setns(fds[0], flags)
        except OSError as e:
            return {"pidfd_open": 0, "setns": e.errno}
        back = {k: _readlink(k) for k in SETNS_KINDS}
    return {"pidfd_open": 0, "setns": 0,
            "left": all(away[k] != home[k] for k in SETNS_KINDS),
            "back": back == home}


def _judge_setns_pidfd(obs):
    if obs["pidfd_open"]:
        text = f"pidfd_open -> {errname(obs['pidfd_open'])}"
        return absent(text) if obs["pidfd_open"] == errno.ENOSYS else undecided(
            f"unexpected: {text}")
    what = f"setns(pidfd, {'|'.join('CLONE_NEW' + k.upper() for k in SETNS_KINDS)})"
    code = obs["setns"]
    if code == errno.EINVAL:  # before 5.8 a pidfd is not a namespace fd
        return absent(f"{what} -> EINVAL")
    if code:
        return undecided(f"unexpected: {what} -> {errname(code)}")
    if obs["left"] and obs["back"]:
        return present(f"{what} -> 0; the child rejoined all {len(SETNS_KINDS)} namespaces of "
                       f"the pidfd's process at once")
    return undecided(f"{what} -> 0 but left: {obs['left']}, back: {obs['back']}")


@probe("setns_pidfd", "namespaces", since="5.8", needs=SYS_ADMIN,
       judge=_judge_setns_pidfd,
       examples=[({"pidfd_open": 0, "setns": 0, "left": True, "back": True}, True),
                 ({"pidfd_open": 0, "setns": 0, "left": True, "back": False}, None),
                 ({"pidfd_open": 0, "setns": errno.EINVAL}, False),
                 ({"pidfd_open": errno.ENOSYS}, False),
                 ({"pidfd_open": 0, "setns": errno.EPERM}, None)])
def setns_pidfd():
    """setns(2) with a pidfd and several CLONE_NEW* flags (5.8): join a process's namespaces."""
    return in_child(_setns_back_by_pidfd, os.getpid())


# --- nesting -------------------------------------------------------------------------------

def _nest_user_namespaces(limit=64):
    """Unshare user namespaces inside each other until the kernel refuses.

    Each level maps its uid and gid to the level above: a user namespace can
    only be created by a process whose ids are mapped where it stands.
    """
    depth = 0
    while depth < limit:
        uid, gid = os.getuid(), os.getgid()
        try:
            ns.unshare(ns.CLONE_NEWUSER)
            ns.map_self(uid, gid)
        except OSError as e:
            return {"depth": depth, "errno": e.errno}
        depth += 1
    return {"depth": depth, "errno": 0}


def _judge_nesting(obs):
    depth, code = obs["depth"], obs["errno"]
    stop = f"level {depth + 1} -> {errname(code)}" if code else "no limit met"
    if depth >= 2:
        return present(f"{depth} nested user namespaces ({stop})", depth=depth)
    if depth == 0:
        return undecided(f"no user namespace could be created: {stop}")
    return absent(f"only {depth} level of user namespace ({stop})")


@probe("userns_nesting", "namespaces", since="3.8",
       judge=_judge_nesting,
       examples=[({"depth": 32, "errno": errno.EUSERS}, True),
                 ({"depth": 1, "errno": errno.EPERM}, False),
                 ({"depth": 0, "errno": errno.EPERM}, None)])
def userns_nesting():
    """How deep user namespaces nest (the kernel allows 32 levels)."""
    return in_child(_nest_user_namespaces)
