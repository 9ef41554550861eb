"""Security state a dumper must read and a restorer must re-establish: audit
loginuid, LSMs (AppArmor stacking, Landlock), seccomp mode, no_new_privs,
CAP_CHECKPOINT_RESTORE, and whether unprivileged user namespaces are allowed.

The LSM list comes from /sys/kernel/security/lsm or lsm_list_modules(2)
(6.8).  When securityfs is not mounted and an answer needs it, securityfs is
mounted in a child's private mount namespace (needs CAP_SYS_ADMIN); the
host's mounts are never touched.  Writing loginuid also happens in a child.
"""

import errno
import functools
import os

from kernel import caps, lsm, procfs
from kernel.libc import syscall
from kernel.mount import MS_PRIVATE, MS_REC, mount
from kernel.namespaces import CLONE_NEWNS, unshare
from kernel.process import PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, PR_SET_MDWE, prctl

from .registry import Call, absent, attempt, errname, present, probe, undecided
from .sandbox import ChildFailed, in_child

SECURITYFS = "/sys/kernel/security"
AA_FILES = ("apparmor/features/domain/stack", "apparmor/features/domain/version")
PR_GET_NO_NEW_PRIVS = 39
INVALID_UID = 4294967295


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _read_or_none(path):
    try:
        return _read(path)
    except OSError:
        return None


# --- securityfs, mounted or mounted for us ---------------------------------------

def _read_files(root, names):
    out = {}
    for name in names:
        try:
            out[name] = _read(f"{root}/{name}")
        except OSError as e:
            out[name] = -(e.errno or errno.EIO)
    return out


def _securityfs_mounted():
    try:
        return bool(os.listdir(SECURITYFS))
    except OSError:
        return False


def _mount_and_read(names):
    """In the child: a private mount namespace, securityfs on its usual place, read."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("securityfs", SECURITYFS, "securityfs")
    return _read_files(SECURITYFS, names)


@functools.lru_cache(maxsize=None)
def _securityfs(names):
    """{name: text or -errno} of files under securityfs, and how they were read."""
    if _securityfs_mounted():
        return {"via": "mounted", "files": _read_files(SECURITYFS, names)}
    if not os.path.isdir(SECURITYFS):
        return {"via": "none", "why": f"no {SECURITYFS} directory"}
    try:
        return {"via": "private mount", "files": in_child(_mount_and_read, list(names))}
    except OSError as e:
        return {"via": "none", "why": f"securityfs not mounted; mounting it in a private "
                                      f"mount namespace -> {errname(e.errno)}"}
    except ChildFailed as e:
        return {"via": "none", "why": f"securityfs not mounted; child failed: {e}"}


@functools.lru_cache(maxsize=1)
def _active_lsms():
    """(list of active LSM names or None, where it came from)."""
    listed = attempt(lsm.lsm_list_modules)
    if listed.ok:
        return lsm.lsm_names(listed.value), "lsm_list_modules(2)"
    got = _securityfs(("lsm",))
    text = got.get("files", {}).get("lsm")
    if isinstance(text, str):
        return text.split(","), f"{SECURITYFS}/lsm ({got['via']})"
    why = got.get("why") or f"{SECURITYFS}/lsm -> {errname(-text) if text else '?'}"
    return None, f"lsm_list_modules -> {listed.describe()}; {why}"


# --- probes ---------------------------------------------------------------------

def _loginuid_child():
    """CRIU's kerndat_loginuid: read, unset (write -1), write the old value back."""
    path = "/proc/self/loginuid"
    try:
        saved = _read(path)
    except OSError as e:
        return {"read": e.errno}
    seen = {"read": 0, "value": int(saved)}
    for step, value in (("unset", str(INVALID_UID)), ("restore", saved)):
        try:
            with open(path, "w") as f:
                f.write(value)
            seen[step] = 0
        except OSError as e:
            seen[step] = e.errno
            break
    return seen


def _judge_loginuid(seen):
    if seen["read"] == errno.ENOENT:
        return absent("no /proc/self/loginuid (no CONFIG_AUDITSYSCALL)")
    if seen["read"]:
        return undecided(f"reading /proc/self/loginuid -> {errname(seen['read'])}")
    if seen.get("unset") == 0 and seen.get("restore") == 0:
        value = "unset" if seen["value"] == INVALID_UID else seen["value"]
        return present(f"loginuid ({value}) can be unset and written back")
    failed = "unset" if seen.get("unset") else "restore"
    return absent(f"loginuid readable only: writing it ({failed}) -> "
                  f"{errname(seen.get(failed))}")


@probe("loginuid", "security", since="3.13", criu_name="loginuid", needs="CAP_AUDIT_CONTROL",
       judge=_judge_loginuid,
       examples=[({"read": 0, "value": INVALID_UID, "unset": 0, "restore": 0}, True),
                 ({"read": 0, "value": 1000, "unset": errno.EPERM}, False),
                 ({"read": errno.ENOENT}, False), ({"read": errno.EACCES}, None)])
def loginuid():
    """The audit loginuid can be read, unset and set again (CRIU restores it), tried in a
    child as CRIU's kerndat does it."""
    return in_child(_loginuid_child)


def _apparmor():
    lsms, source = _active_lsms()
    seen = {"lsms": lsms, "source": source}
    if lsms is not None and "apparmor" not in lsms:
        return seen
    got = _securityfs(AA_FILES)
    seen["via"] = got["via"]
    if "files" in got:
        seen["stack"], seen["version"] = (got["files"][n] for n in AA_FILES)
    else:
        seen["why"] = got["why"]
    return seen


def _judge_apparmor(seen):
    if seen["lsms"] is not None and "apparmor" not in seen["lsms"]:
        return absent(f"AppArmor is not an active LSM ({', '.join(seen['lsms'])})")
    if "why" in seen:
        return undecided(seen["why"])
    stack, version = seen["stack"], seen["version"]
    if isinstance(stack, int):
        return absent(f"no apparmor/features/domain/stack ({errname(-stack)})")
    if stack.split()[0:1] != ["yes"]:
        return absent(f"AppArmor stacking disabled: {stack}")
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return absent(f"unreadable domain/version {version!r}")
    # CRIU's test, quirk included: major >= 1 and minor >= 2 ("2.0" fails)
    if major >= 1 and minor >= 2:
        return present(f"domain stack: yes, version {version} (securityfs {seen['via']})")
    return absent(f"domain version {version}: CRIU wants major >= 1 and minor >= 2")


@probe("apparmor_stacking", "security", since="~4.17", criu_name="apparmor_stacking",
       judge=_judge_apparmor,
       examples=[({"lsms": ["capability", "apparmor"], "source": "x", "via": "mounted",
                   "stack": "yes", "version": "1.2"}, True),
                 ({"lsms": ["capability", "landlock"], "source": "x"}, False),
                 ({"lsms": ["apparmor"], "source": "x", "via": "mounted", "stack": "no",
                   "version": "1.2"}, False),
                 ({"lsms": ["apparmor"], "source": "x", "via": "mounted", "stack": "yes",
                   "version": "2.0"}, False),
                 ({"lsms": None, "source": "x", "via": "none", "why": "no securityfs"}, None)])
def apparmor_stacking():
    """AppArmor namespaces can be stacked (CRIU dumps and restores AppArmor namespaces):
    apparmor/features/domain/stack is "yes" and domain/version >= 1.2, CRIU's test."""
    return _apparmor()


def _judge_lsm_list(seen):
    lsms, source = seen
    if lsms is None:
        return undecided(f"cannot list LSMs: {source}")
    return present(f"{','.join(lsms)} (from {source})", lsms=lsms)


@probe("lsm_list", "security", since="4.15", judge=_judge_lsm_list,
       examples=[((["capability", "landlock", "bpf"], "lsm_list_modules(2)"), True),
                 ((None, "lsm_list_modules -> ENOSYS; securityfs not mounted"), None)])
def lsm_list():
    """The active LSMs, in order (securityfs lsm file or lsm_list_modules(2), 6.8): which
    security state a dumper has to care about."""
    lsms, source = _active_lsms()
    return [lsms, source]


def _judge_landlock(call):
    if call.ok:
        return present(f"Landlock ABI version {call.value}", abi=call.value)
    if call.errno == errno.EOPNOTSUPP:
        return absent("Landlock built in but not enabled (not in lsm= at boot)")
    if call.errno == errno.ENOSYS:
        return absent("landlock_create_ruleset -> ENOSYS (no CONFIG_SECURITY_LANDLOCK)")
    return undecided(f"landlock_create_ruleset(VERSION) -> {call.describe()}")


@probe("landlock_abi", "security", since="5.13", judge=_judge_landlock,
       examples=[(Call(0, 7), True), (Call(errno.EOPNOTSUPP), False),
                 (Call(errno.ENOSYS), False), (Call(errno.EINVAL), None)])
def landlock_abi():
    """landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the Landlock ABI
    (Landlock domains cannot be read back: processes confined by it cannot be dumped)."""
    return attempt(lsm.landlock_abi_version)


def _seccomp_status():
    return procfs.status(keys=("Seccomp", "Seccomp_filters"))


def _judge_seccomp(key, what):
    def judge(lines):
        if key not in lines:
            return absent(f"no {key}: line in /proc/self/status")
        return present(f"{key}: {lines[key]} ({what})")
    return judge


@probe("status_seccomp", "security", since="3.8",
       judge=_judge_seccomp("Seccomp", "0 off, 1 strict, 2 filter"),
       examples=[({"Seccomp": "0", "Seccomp_filters": "0"}, True), ({}, False)])
def status_seccomp():
    """/proc/pid/status Seccomp: a task's seccomp mode, how a dumper finds it."""
    return _seccomp_status()


@probe("status_seccomp_filters", "security", since="5.9",
       judge=_judge_seccomp("Seccomp_filters", "filters attached"),
       examples=[({"Seccomp": "2", "Seccomp_filters": "1"}, True), ({"Seccomp": "0"}, False)])
def status_seccomp_filters():
    """/proc/pid/status Seccomp_filters: how many filters a task has."""
    return _seccomp_status()


def _no_new_privs():
    return {"prctl": attempt(syscall, "prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)._asdict(),
            "status": procfs.status(keys=("NoNewPrivs",)).get("NoNewPrivs")}


def _judge_nnp(seen):
    call = Call(**seen["prctl"])
    if not call.ok:
        if call.errno == errno.EINVAL:
            return absent("prctl(PR_GET_NO_NEW_PRIVS) -> EINVAL")
        return undecided(f"prctl(PR_GET_NO_NEW_PRIVS) -> {call.describe()}")
    status = f"NoNewPrivs: {seen['status']}" if seen["status"] is not None \
        else "no NoNewPrivs: line in status"
    return present(f"prctl(PR_GET_NO_NEW_PRIVS) -> {call.value}; {status}")


@probe("no_new_privs", "security", since="3.5",
       judge=_judge_nnp,
       examples=[({"prctl": {"errno": 0, "value": 0}, "status": "0"}, True),
                 ({"prctl": {"errno": errno.EINVAL, "value": None}, "status": None}, False),
                 ({"prctl": {"errno": errno.EPERM, "value": None}, "status": None}, None)])
def no_new_privs():
    """no_new_privs is readable (prctl PR_GET_NO_NEW_PRIVS; status NoNewPrivs: since 4.10):
    a dumper must carry it over, seccomp filters of unprivileged tasks depend on it."""
    return _no_new_privs()


def _mdwe_child():
    """Set memory-deny-write-execute (it cannot be undone: in a child) and read it back."""
    seen = {"get": attempt(prctl, PR_GET_MDWE)._asdict()}
    if seen["get"]["errno"] == 0:
        seen["set"] = attempt(prctl, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)._asdict()
        seen["after"] = attempt(prctl, PR_GET_MDWE)._asdict()
    return seen


def _judge_mdwe(seen):
    get = Call(**seen["get"])
    if not get.ok:
        if get.errno == errno.EINVAL:
            return absent("prctl(PR_GET_MDWE) -> EINVAL")
        return undecided(f"prctl(PR_GET_MDWE) -> {get.describe()}")
    done, after = Call(**seen["set"]), Call(**seen["after"])
    if done.ok and after.ok and after.value & PR_MDWE_REFUSE_EXEC_GAIN:
        return present(f"PR_SET_MDWE(REFUSE_EXEC_GAIN) -> PR_GET_MDWE {after.value:#x}")
    return undecided(f"PR_SET_MDWE -> {done.describe()}, then PR_GET_MDWE -> "
                     f"{after.describe()}")


@probe("prctl_mdwe", "security", since="6.3", judge=_judge_mdwe,
       examples=[({"get": {"errno": 0, "value": 0}, "set": {"errno": 0, "value": 0},
                   "after": {"errno": 0, "value": 1}}, True),
                 ({"get": {"errno": errno.EINVAL, "value": None}}, False),
                 ({"get": {"errno": 0, "value": 0}, "set": {"errno": errno.EPERM,
                   "value": None}, "after": {"errno": 0, "value": 0}}, None)])
def prctl_mdwe():
    """Memory-deny-write-execute (systemd's MemoryDenyWriteExecute= on newer kernels) can be
    set and read back: a dumper must carry it (it is not in /proc), and must not make
    write-then-exec memory in a process that has it."""
    return in_child(_mdwe_child)


def _cap_cr():
    return {"cap_last_cap": int(_read("/proc/sys/kernel/cap_last_cap")),
            "held": caps.has("CAP_CHECKPOINT_RESTORE")}


def _judge_cap_cr(seen):
    last = seen["cap_last_cap"]
    number = caps.CAP["CAP_CHECKPOINT_RESTORE"]
    held = "held" if seen["held"] else "not held"
    if last >= number:
        return present(f"cap_last_cap {last} >= {number}; {held} by this process")
    return absent(f"cap_last_cap {last} < {number}: the kernel predates CAP_CHECKPOINT_RESTORE")


@probe("cap_checkpoint_restore", "security", since="5.9", judge=_judge_cap_cr,
       examples=[({"cap_last_cap": 40, "held": True}, True),
                 ({"cap_last_cap": 38, "held": False}, False)])
def cap_checkpoint_restore():
    """The kernel knows CAP_CHECKPOINT_RESTORE (cap 40; kernel.cap_last_cap >= 40): C/R
    without full CAP_SYS_ADMIN (ns_last_pid, clone3 set_tid, map_files)."""
    return _cap_cr()


USERNS_SYSCTLS = {
    "unprivileged_userns_clone": "/proc/sys/kernel/unprivileged_userns_clone",
    "max_user_namespaces": "/proc/sys/user/max_user_namespaces",
    "apparmor_restrict_unprivileged_userns":
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
}


def _userns_sysctls():
    seen = {name: _read_or_none(path) for name, path in USERNS_SYSCTLS.items()}
    seen["userns"] = os.path.exists("/proc/self/ns/user")
    return seen


def _judge_userns(seen):
    if not seen["userns"]:
        return absent("no /proc/self/ns/user (no CONFIG_USER_NS)")
    values = "; ".join(f"{k}={v}" for k, v in seen.items() if k != "userns" and v is not None)
    if seen["max_user_namespaces"] is not None and seen["max_user_namespaces"] == "0":
        return absent(f"user namespaces limited to 0 ({values})")
    if seen["unprivileged_userns_clone"] == "0":
        return absent(f"unprivileged user namespaces disabled ({values})")
    if seen["apparmor_restrict_unprivileged_userns"] not in (None, "0"):
        return absent(f"AppArmor restricts unprivileged user namespaces ({values})")
    return present(f"unprivileged user namespaces allowed ({values})")


@probe("unprivileged_userns_clone", "security", since="3.8", judge=_judge_userns,
       examples=[({"userns": True, "unprivileged_userns_clone": None,
                   "max_user_namespaces": "96365",
                   "apparmor_restrict_unprivileged_userns": None}, True),
                 ({"userns": True, "unprivileged_userns_clone": "0",
                   "max_user_namespaces": "96365",
                   "apparmor_restrict_unprivileged_userns": None}, False),
                 ({"userns": True, "unprivileged_userns_clone": "1",
                   "max_user_namespaces": "0",
                   "apparmor_restrict_unprivileged_userns": None}, False),
                 ({"userns": False}, False)])
def unprivileged_userns_clone():
    """Whether unprivileged users may create user namespaces (ZDTM's uns flavour and rootless
    C/R need it): kernel.unprivileged_userns_clone (Debian/Ubuntu patch), user.
    max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns (Ubuntu)."""
    return _userns_sysctls()
