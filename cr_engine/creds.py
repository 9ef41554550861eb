"""Credentials of each thread: uids, gids (real, effective, saved, fs), supplementary
groups, capability sets (inheritable, permitted, effective, bounding, ambient) and
securebits.

Dump reads /proc/PID/task/TID/status and PR_GET_SECUREBITS.  Restore runs in each restored
thread, last of all (the restore needs its privileges up to then), in the order the kernel
allows: drop from the bounding set while still privileged, set the securebits with
KEEP_CAPS so the permitted set survives the change of uid, set groups, gids and uids, set
the three capability sets, clear KEEP_CAPS when it was not dumped, raise the ambient set.
"""

import struct

from kernel.process import prctl
from kernel.procfs import status as proc_status

from . import namespaces
from .errors import RestoreError

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
SECBIT_KEEP_CAPS = 1 << 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_LAST = 63


def dump(rem, status, securebits=None):
    """The credentials of the thread ``rem`` runs in; ``status``: its /proc status;
    ``securebits``: read from its cred already (None: ask the thread)."""
    out = _from_status(status)
    out["securebits"] = rem.call("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0) \
        if securebits is None else securebits
    return out


def own():
    """The restorer's credentials, in the same form: threads that have them are left be."""
    out = _from_status(proc_status("self"))
    out["securebits"] = prctl(PR_GET_SECUREBITS)
    return out


def _from_status(status):
    return {"uids": [int(x) for x in status["Uid"].split()],
            "gids": [int(x) for x in status["Gid"].split()],
            "groups": [int(x) for x in status.get("Groups", "").split()],
            "caps": {name: int(status[f"Cap{name}"], 16)
                     for name in ("Inh", "Prm", "Eff", "Bnd", "Amb")}}


def restore(rem, scratch, tid, creds, own, userns=None):
    """Give thread ``tid`` its dumped credentials (see the module's docstring for the order);
    ``own``: the restorer's, which the thread starts with; ``userns``: the image of the
    user namespace the thread is in (the dumped ids are ours: set as it numbers them)."""
    def call(what, name, *args):
        got = rem.call(name, *args, check=False)
        if got < 0:
            raise RestoreError(f"cannot restore the credentials of thread {tid}: {what} "
                               f"failed (errno {-got})", "state")
        return got

    caps = creds["caps"]
    drop = own["caps"]["Bnd"] & ~caps["Bnd"]
    for cap in range(CAP_LAST + 1):
        if drop >> cap & 1:
            call(f"dropping capability {cap} from the bounding set", "prctl", PR_CAPBSET_DROP,
                 cap, 0, 0, 0)
    call("PR_SET_SECUREBITS", "prctl", PR_SET_SECUREBITS,
         creds["securebits"] | SECBIT_KEEP_CAPS, 0, 0, 0)
    uids, gids, groups = creds["uids"], creds["gids"], creds["groups"]
    if userns:
        uids = [namespaces.inside(userns["uid_map"], i) for i in uids]
        gids = [namespaces.inside(userns["gid_map"], i) for i in gids]
        groups = [namespaces.inside(userns["gid_map"], i) for i in groups]
    # a user namespace that denies setgroups keeps the groups it was made with
    if not userns or userns["setgroups"] != "deny":
        at = scratch.put(struct.pack(f"{len(groups)}I", *groups)) if groups else 0
        call("setgroups", "setgroups", len(groups), at)
        scratch.reset()
    real, effective, saved, fs = gids
    call("setresgid", "setresgid", real, effective, saved)
    rem.call("setfsgid", fs)                # returns the previous fsgid, never an error
    real, effective, saved, fs = uids
    call("setresuid", "setresuid", real, effective, saved)
    rem.call("setfsuid", fs)
    header = scratch.put(struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = scratch.put(struct.pack("6I", caps["Eff"] & 0xFFFFFFFF, caps["Prm"] & 0xFFFFFFFF,
                                   caps["Inh"] & 0xFFFFFFFF, caps["Eff"] >> 32,
                                   caps["Prm"] >> 32, caps["Inh"] >> 32))
    call("capset", "capset", header, data)
    scratch.reset()
    if not creds["securebits"] & SECBIT_KEEP_CAPS:
        call("PR_SET_KEEPCAPS", "prctl", PR_SET_KEEPCAPS, 0, 0, 0, 0)
    for cap in range(CAP_LAST + 1):
        if caps["Amb"] >> cap & 1:
            call(f"raising ambient capability {cap}", "prctl", PR_CAP_AMBIENT,
                 PR_CAP_AMBIENT_RAISE, cap, 0, 0)
