#!/usr/bin/python3
"""Reference CRIU for the bench: Debian trixie's criu 4.x run from a private debootstrap root.

Debian bookworm's criu 3.17 fails on kernels >= 6.13 ("vdso: Unexpected rt vDSO area bounds").
trixie's criu 4.1.x works when run from a trixie root entered in a private mount namespace with
pivot_root and /proc, /sys, /dev mounted.  This tool builds that root once (cached) and runs criu
(or any other command) inside it.  Python 3.11 stdlib only; must run as root.

  reference_criu.py setup [--root DIR] [--mirror URL]   build the root once (idempotent, locked)
  reference_criu.py path  [--root DIR]                  print the root if ready (exit 0) else exit 1
  reference_criu.py run   [--root DIR] [--bind-cwd] [--bind PATH]... -- CRIU-ARGS...
                                                         run criu CRIU-ARGS inside the root
  reference_criu.py exec  [--root DIR] [--bind-cwd] [--bind PATH]... -- CMD ARGS...
                                                         run any command inside the root (same
                                                         namespace layout), e.g. a shell that starts
                                                         a test program and dumps it with criu
  reference_criu.py check [--root DIR] [--repeat N]     criu check --all, with wall times

Caveats: the processes criu dumps must live in criu's own mount namespace.  A host process can
be "dumped" from here, but criu then dumps its whole (foreign) mount namespace and the restore
fails.  Every `run`/`exec` creates a fresh namespace, so start the test program with the same
`exec` that dumps it (`exec --bind-cwd -- sh -c './prog </dev/null >log 2>&1 & criu dump -t $!
-D img'`); `run -- restore -d ...` later puts the restored tree into that run's namespace (the
namespace lives on as long as the restored processes do).  Files the program holds open must be
reachable inside: inherited fds >= 3 are closed (keep some with --pass-fd), and stdio should be
redirected inside the namespace, or criu fails with "Can't lookup mount=N for fd=M".
/run is a fresh tmpfs in every invocation (criu's kerndat cache lives only on tmpfs).

Default root: ${CRBENCH_CRIU_ROOT} or ${XDG_CACHE_HOME:-~/.cache}/crbench/criu-trixie.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import glob
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NoReturn

SUITE = "trixie"
STAMP = ".crbench-criu-root.json"  # written inside the root just before it is renamed into place
CRIU = "/usr/sbin/criu"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_INCLUDE = "criu,iproute2,iptables"  # criu Recommends iproute2 (netns), Suggests iptables
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- linux constants --------------------------------------------------------------------------
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 0x2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


def log(msg: str) -> None:
    print(f"[reference_criu] {msg}", file=sys.stderr, flush=True)


def die(msg: str, code: int = 2) -> NoReturn:
    log(f"error: {msg}")
    sys.exit(code)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _b(p: str | None) -> bytes | None:
    return None if p is None else os.fsencode(p)


def sys_mount(src: str | None, dst: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(_b(src), _b(dst), _b(fstype), flags, None), f"mount {src} -> {dst}")


def sys_umount(path: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(_b(path), flags), f"umount {path}")


def sys_unshare_mnt() -> None:
    """New mount namespace with everything made private (== unshare -m --propagation private)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    sys_mount("none", "/", None, MS_REC | MS_PRIVATE)


def sys_pivot_root(new: str, old: str) -> None:
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"pivot_root syscall number unknown on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(nr), _b(new), _b(old)), "pivot_root")


# --- paths ------------------------------------------------------------------------------------
def default_root() -> str:
    env = os.environ.get("CRBENCH_CRIU_ROOT")
    if env:
        return env
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "crbench", "criu-trixie")


def root_ready(root: str) -> bool:
    return os.path.isfile(os.path.join(root, STAMP)) and os.path.isfile(root + CRIU)


def require_root_user() -> None:
    if os.geteuid() != 0:
        die("must run as root (needs CAP_SYS_ADMIN for mount namespaces and pivot_root)")


def mounts_under(path: str) -> list[str]:
    """Mount points at or below path in this mount namespace, deepest first."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            # mountinfo escapes space, tab, newline and backslash as \ooo
            raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line.split()[4])
            mp = os.fsdecode(raw)
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: str) -> None:
    """rm -rf that first detaches anything mounted inside, so it can never wander into /proc."""
    for mp in mounts_under(path):
        log(f"unmounting leftover mount {mp}")
        sys_umount(mp, MNT_DETACH)
    if mounts_under(path):
        die(f"refusing to delete {path}: mounts remain inside it")
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


# --- setup ------------------------------------------------------------------------------------
def _deb822_paragraphs(text: str):
    para: dict[str, str] = {}
    key = None
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if para:
                yield para
            para, key = {}, None
            continue
        if raw[0] in " \t" and key:
            para[key] += " " + raw.strip()
            continue
        if ":" in raw:
            key, val = raw.split(":", 1)
            key = key.strip().lower()
            para[key] = val.strip()


def apt_source_entries() -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every enabled `deb` entry in the host's apt sources."""
    entries = []
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for fn in files:
        try:
            text = open(fn, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):  # [ option=value ... ]
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 2:
                entries.append((words[0], [words[1]], words[2:]))
    for fn in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(fn, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for p in _deb822_paragraphs(text):
            if p.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in p.get("types", "").split():
                continue
            for uri in p.get("uris", "").split():
                entries.append((uri, p.get("suites", "").split(), p.get("components", "").split()))
    return entries


def mirror_candidates() -> list[str]:
    """Debian main-archive mirrors from the host's apt sources (not security, not 3rd party)."""
    out: list[str] = []
    for uri, suites, comps in apt_source_entries():
        if not uri.startswith(("http://", "https://", "file:/")):
            continue
        if "security" in uri or not suites or all("security" in s for s in suites):
            continue
        if comps and "main" not in comps:
            continue
        uri = uri.rstrip("/")
        if uri not in out:
            out.append(uri)
    if FALLBACK_MIRROR not in out:
        out.append(FALLBACK_MIRROR)
    return out


def apt_proxy_env() -> dict[str, str]:
    """http(s)_proxy from apt's configuration, for debootstrap's wget and our own probe."""
    env: dict[str, str] = {}
    if not shutil.which("apt-config"):
        return env
    for scheme in ("http", "https"):
        var = f"{scheme}_proxy"
        if os.environ.get(var):
            continue
        r = subprocess.run(["apt-config", "shell", "P", f"Acquire::{scheme}::Proxy"],
                           capture_output=True, text=True)
        val = r.stdout.strip()
        if val.startswith("P="):
            val = val[2:].strip("'\"")
            if val and val.upper() != "DIRECT" and val.lower() != "false":
                env[var] = val
    return env


def probe_mirror(uri: str, suite: str) -> tuple[bool, str]:
    import urllib.error  # imported here: urllib.request alone costs ~15 ms of start-up
    import urllib.request

    url = f"{uri}/dists/{suite}/Release"
    if uri.startswith("file:"):
        p = url[len("file:"):]
        return os.path.isfile(p), "file"
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status == 200, f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except Exception as e:  # noqa: BLE001 - any network failure means "not this one"
        return False, str(getattr(e, "reason", e))


def pick_mirror(explicit: str | None, suite: str) -> str:
    cands = [explicit.rstrip("/")] if explicit else mirror_candidates()
    for uri in cands:
        ok, why = probe_mirror(uri, suite)
        log(f"mirror {uri}: dists/{suite}/Release -> {'OK' if ok else 'unusable'} ({why})")
        if ok:
            return uri
    die(f"no usable Debian mirror for {suite} among {cands} (pass --mirror URL)")


def ensure_debootstrap() -> str:
    for p in (shutil.which("debootstrap"), "/usr/sbin/debootstrap"):
        if p and os.path.isfile(p):
            return p
    log("debootstrap missing: apt-get install -y debootstrap")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"]
    if subprocess.run(cmd, env=env).returncode != 0:
        log("install failed; running apt-get update and retrying")
        subprocess.run(["apt-get", "update"], env=env, check=False)
        if subprocess.run(cmd, env=env).returncode != 0:
            die("could not install debootstrap")
    p = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.isfile(p):
        die("debootstrap still not found after install")
    return p


def _private_ns_preexec() -> None:
    # debootstrap mounts /proc, /sys, ... inside the target: keep them in a throw-away namespace
    # so an interrupted build can never leave mounts behind in the caller's namespace.
    sys_unshare_mnt()
    # if setup itself is SIGKILLed, stop debootstrap too (its children keep the inherited lock
    # fd open, so a new setup waits for them before it removes the half-built directory)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            _reap_orphans(pgid, block=False)
            time.sleep(0.1)


def _reap_orphans(pgid: int, block: bool = True) -> None:
    """We are a child subreaper during setup: collect debootstrap's orphaned children."""
    deadline = time.monotonic() + (15 if block else 0)
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _report_existing(root: str, include: str | None) -> int:
    try:
        info = json.load(open(os.path.join(root, STAMP)))
    except (OSError, ValueError):
        info = {}
    have = set(info.get("include", "criu").split(","))
    missing = sorted(set((include or "criu").split(",")) - have)
    if missing:
        log(f"root {root} was built without {','.join(missing)}; "
            f"rerun setup with --force --include={include} to rebuild it")
        return 1
    log(f"root already set up: {root} ({info.get('criu_version', '?')})")
    print(root)
    return 0


def cmd_setup(args) -> int:
    require_root_user()
    root = os.path.abspath(args.root)
    parent, name = os.path.split(root)
    os.makedirs(parent, exist_ok=True)
    if root_ready(root) and not args.force:
        return _report_existing(root, args.include)
    lock_path = os.path.join(parent, f".{name}.lock")
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another setup holds {lock_path}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if root_ready(root) and not args.force:  # built by whoever held the lock
            return _report_existing(root, args.include)
        # we hold the lock, so any temp dir left beside the root is from an interrupted build
        for stale in glob.glob(os.path.join(parent, f".{name}.tmp-*")):
            log(f"removing interrupted build {stale}")
            remove_tree(stale)
        debootstrap = ensure_debootstrap()
        proxy = apt_proxy_env()  # apt's Acquire::http(s)::Proxy, if any, for probe and wget
        if proxy:
            log(f"using apt's proxy settings: {proxy}")
            os.environ.update(proxy)
        mirror = pick_mirror(args.mirror, SUITE)
        tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
        os.chmod(tmp, 0o755)
        include = args.include or DEFAULT_INCLUDE
        cmd = [debootstrap, "--variant=minbase", f"--include={include}"]
        if os.path.isfile(KEYRING):
            cmd.append(f"--keyring={KEYRING}")
        cmd += [SUITE, tmp, mirror]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
        log("running: " + " ".join(cmd))
        t0 = time.monotonic()
        ok = False
        old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        try:
            proc = subprocess.Popen(cmd, env=env, preexec_fn=_private_ns_preexec,
                                    start_new_session=True, pass_fds=(lock.fileno(),))
            try:
                rc = proc.wait()
            except BaseException:
                log("interrupted: stopping debootstrap")
                _kill_group(proc.pid)
                raise
            finally:
                _reap_orphans(proc.pid)
            if rc != 0:
                log(f"debootstrap failed with status {rc} (log: {tmp}/debootstrap/debootstrap.log)")
                log_file = os.path.join(tmp, "debootstrap", "debootstrap.log")
                if os.path.isfile(log_file):
                    tail = open(log_file, errors="replace").read().splitlines()[-30:]
                    print("\n".join(tail), file=sys.stderr)
                return 1
            log(f"debootstrap done in {time.monotonic() - t0:.0f} s")
            if not os.path.isfile(tmp + CRIU):
                log(f"{CRIU} missing in the new root")
                return 1
            # free the downloaded .debs and apt lists (~55 MB; the root is only used to run
            # criu: `exec -- apt-get update` brings the lists back if a package must be added)
            for pat in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin",
                        "var/lib/apt/lists/*_*", "run/criu.kdat*"):
                for f in glob.glob(os.path.join(tmp, pat)):
                    os.unlink(f)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "run", "--root", tmp,
                                "--no-stamp-check", "--", "--version"],
                               capture_output=True, text=True)
            version = r.stdout.strip()
            if r.returncode != 0:
                log(f"criu --version failed in the new root: {r.stdout}{r.stderr}")
                return 1
            log(f"new root runs: {version!r}")
            info = {"suite": SUITE, "mirror": mirror, "include": include,
                    "criu_version": version, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "host_kernel": platform.release()}
            with open(os.path.join(tmp, STAMP), "w") as f:
                json.dump(info, f, indent=1)
            if os.path.lexists(root):  # --force, or a dir that was never finished by us
                old = tempfile.mkdtemp(prefix=f".{name}.tmp-old-", dir=parent)
                os.rename(root, os.path.join(old, "root"))
                os.rename(tmp, root)
                remove_tree(old)
            else:
                os.rename(tmp, root)
            ok = True
            log(f"root ready: {root}")
            print(root)
            return 0
        finally:
            signal.signal(signal.SIGTERM, old_term)
            if not ok and os.path.lexists(tmp):
                log(f"removing incomplete build {tmp}")
                remove_tree(tmp)


# --- entering the root ------------------------------------------------------------------------
def enter_root(root: str, binds: list[str], devtmpfs: bool = False) -> str:
    """In the calling process: new private mount namespace, root with /proc /sys /dev (and the
    requested bind mounts) mounted, pivot_root into it.  Returns the directory to work in."""
    cwd = os.getcwd()
    sys_unshare_mnt()
    sys_mount(root, root, None, MS_BIND | MS_REC)  # pivot_root needs the new root to be a mount
    for d in ("proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    sys_mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # a private tmpfs /run per invocation: criu keeps its kerndat cache (/run/criu.kdat) only on
    # tmpfs, and concurrent invocations do not share lock/pid files in the cached root
    os.makedirs(root + "/run", exist_ok=True)
    sys_mount("tmpfs", root + "/run", "tmpfs", MS_NOSUID | MS_NODEV)
    os.chmod(root + "/run", 0o755)
    os.makedirs(root + "/run/lock", exist_ok=True)
    os.chmod(root + "/run/lock", 0o1777)
    sys_mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # cgroup hierarchies (v1 or v2) as the host has them mounted: criu reads them on dump/restore
    if os.path.ismount("/sys/fs/cgroup"):
        sys_mount("/sys/fs/cgroup", root + "/sys/fs/cgroup", None, MS_BIND | MS_REC)
    if devtmpfs:
        sys_mount("devtmpfs", root + "/dev", "devtmpfs", MS_NOSUID)
        for d in ("pts", "shm"):
            os.makedirs(os.path.join(root, "dev", d), exist_ok=True)
        sys_mount("devpts", root + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC)
        sys_mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV)
    else:
        sys_mount("/dev", root + "/dev", None, MS_BIND | MS_REC)
    for src in binds:
        src = os.path.realpath(src)
        if not os.path.exists(src):
            raise FileNotFoundError(f"--bind {src}: no such file or directory")
        dst = root + src
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.exists(dst):
                open(dst, "a").close()
        sys_mount(src, dst, None, MS_BIND | MS_REC)
    os.chdir(root)
    sys_pivot_root(".", ".")  # old root ends up stacked under the new one ...
    sys_umount(".", MNT_DETACH)  # ... and is detached here
    os.chdir("/")
    try:
        os.chdir(cwd)  # only exists inside if it was bound (or is part of the trixie tree)
    except OSError:
        pass
    return os.getcwd()


def close_inherited_fds(keep: list[int]) -> None:
    """Close every fd >= 3 but `keep`.  Descriptors inherited from the caller point at files on
    the caller's mounts, which criu cannot resolve inside the new namespace ("Can't lookup
    mount=N for fd=M"): a test program started by `exec` must not carry them into a dump."""
    keep_set = set(keep)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep_set:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd in keep_set:
        os.set_inheritable(fd, True)


def inner_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_", "PYTHON"))}
    env["PATH"] = INNER_PATH
    return env


def resolve_root(args) -> str:
    root = os.path.abspath(args.root)
    if not getattr(args, "no_stamp_check", False) and not root_ready(root):
        die(f"no reference criu root at {root}; run: {sys.argv[0]} setup", 3)
    return root


def collect_binds(args) -> list[str]:
    binds = list(args.bind or [])
    if args.bind_cwd:
        binds.append(os.getcwd())
    return binds


def cmd_run(args, exec_any: bool) -> int:
    require_root_user()
    root = resolve_root(args)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if exec_any:
        if not argv:
            die("exec needs a command after --")
    else:
        argv = [CRIU] + argv
    binds = collect_binds(args)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        enter_root(root, binds, args.devtmpfs)
    except OSError as e:
        die(f"entering {root}: {e}", 125)
    close_inherited_fds(args.pass_fd or [])
    try:
        os.execvpe(argv[0], argv, inner_env())
    except OSError as e:
        die(f"exec {argv[0]} inside the root: {e}", 127)


def _one_check(root: str, binds: list[str], devtmpfs: bool, criu_args: list[str]):
    """Fork; the child enters the root and times criu as a grandchild.  Returns
    (exit status, inner seconds, end-to-end seconds)."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 125
        try:
            os.close(r)
            enter_root(root, binds, devtmpfs)
            env = inner_env()
            t1 = time.monotonic()
            gpid = os.fork()
            if gpid == 0:
                try:
                    close_inherited_fds([])
                    os.execve(CRIU, [CRIU] + criu_args, env)
                finally:
                    os._exit(127)
            _, st = os.waitpid(gpid, 0)
            inner = time.monotonic() - t1
            os.write(w, f"{inner:.6f}".encode())
            code = os.waitstatus_to_exitcode(st)
            code = code if code >= 0 else 128 - code
        except BaseException as e:  # noqa: BLE001
            print(f"[reference_criu] error in namespace child: {e}", file=sys.stderr)
        finally:
            os._exit(code)
    os.close(w)
    _, st = os.waitpid(pid, 0)
    total = time.monotonic() - t0
    data = b""
    while chunk := os.read(r, 64):
        data += chunk
    os.close(r)
    inner = float(data) if data else float("nan")
    code = os.waitstatus_to_exitcode(st)
    return (code if code >= 0 else 128 - code), inner, total


def cmd_check(args) -> int:
    require_root_user()
    root = resolve_root(args)
    binds = collect_binds(args)
    criu_args = ["check", "--all"] + list(args.extra or [])
    results = []
    for i in range(max(1, args.repeat)):
        code, inner, total = _one_check(root, binds, args.devtmpfs, criu_args)
        results.append((code, inner, total))
        print(f"[reference_criu] run {i + 1}: criu {' '.join(criu_args)} -> exit {code}; "
              f"criu wall {inner:.3f} s (inside the root), end-to-end {total:.3f} s "
              f"(incl. namespace setup)", flush=True)
    if len(results) > 2:
        rest = results[1:]  # the first run warms caches
        print(f"[reference_criu] median of runs 2..{len(results)}: "
              f"criu {statistics.median(x[1] for x in rest):.3f} s, "
              f"end-to-end {statistics.median(x[2] for x in rest):.3f} s", flush=True)
    bad = [c for c, _, _ in results if c != 0]
    return bad[-1] if bad else 0


def cmd_path(args) -> int:
    root = os.path.abspath(args.root)
    if root_ready(root):
        print(root)
        return 0
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add_root(p):
        p.add_argument("--root", default=default_root(),
                       help="trixie root directory (default: %(default)s)")

    def add_ns(p):
        p.add_argument("--bind", action="append", metavar="PATH",
                       help="bind-mount host PATH at the same path inside the root (repeatable)")
        p.add_argument("--bind-cwd", action="store_true",
                       help="bind-mount the current directory at the same path inside the root")
        p.add_argument("--devtmpfs", action="store_true",
                       help="mount a fresh devtmpfs (+devpts, shm) on /dev instead of binding "
                            "the host's /dev")
        p.add_argument("--pass-fd", action="append", type=int, metavar="FD",
                       help="keep this inherited fd open (all fds >= 3 are closed otherwise)")
        p.add_argument("--no-stamp-check", action="store_true", help=argparse.SUPPRESS)

    p = sub.add_parser("setup", help="build the trixie root with criu (once)")
    add_root(p)
    p.add_argument("--mirror", help="Debian mirror URL (default: from the host's apt sources)")
    p.add_argument("--include", default=None,
                   help=f"comma-separated packages to install (default: {DEFAULT_INCLUDE}); "
                        "an existing root lacking one of them is reported, not rebuilt, "
                        "unless --force")
    p.add_argument("--force", action="store_true", help="rebuild even if the root is ready")

    p = sub.add_parser("path", help="print the root if it is set up")
    add_root(p)

    p = sub.add_parser("run", help="run criu ARGS inside the root")
    add_root(p)
    add_ns(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- criu arguments")

    p = sub.add_parser("exec", help="run any command inside the root")
    add_root(p)
    add_ns(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")

    p = sub.add_parser("check", help="criu check --all inside the root, with timings")
    add_root(p)
    add_ns(p)
    p.add_argument("--repeat", type=int, default=1,
                   help="run N times; with N > 2 also print the median of runs 2..N")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="-- extra criu check arguments")

    args = ap.parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130


def _dispatch(args) -> int:
    if getattr(args, "extra", None) and args.extra[0] == "--":
        args.extra = args.extra[1:]
    if args.cmd == "setup":
        return cmd_setup(args)
    if args.cmd == "path":
        return cmd_path(args)
    if args.cmd == "run":
        return cmd_run(args, exec_any=False)
    if args.cmd == "exec":
        return cmd_run(args, exec_any=True)
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
