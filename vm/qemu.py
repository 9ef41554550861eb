"""Run one command in a QEMU guest booted with a given kernel over the host's root, or on
the host itself, and tell how it ended.

The guest: q35, the host's root over 9p (read-only) under a tmpfs overlay, the kernel's
console on the first serial port (saved as console.log), the command's output on the
second (output.log, streamed as it comes), its exit status said there by /init, which
then powers off.  No udev, no network but lo, no daemon on the host.

Outcomes: "ok" and "failed" (the command ran; its exit status), "timeout" (no end within
the command's time), "boot-timeout" (the command never started), "panic" (the kernel said
so; the guest boots with panic=-1 and QEMU with -no-reboot, so it ends at once), "crashed"
(QEMU ended with no result and no panic seen).  Kernel warnings in the console are
reported, but for an allowlist of emulation noise.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import initramfs, kernels

QEMU = "qemu-system-x86_64"
WARNING = re.compile(r"(WARNING:|BUG:|Oops|general protection fault|Call Trace:|"
                     r"Kernel panic|kernel BUG|INFO: task .* blocked)")
# TCG artefacts seen with Debian's kernels, not the kernel's fault (notes/machine.md)
ALLOWED = [re.compile(p) for p in (r"exc_debug_kernel",)]
EXIT_CODES = {"timeout": 124, "boot-timeout": 124, "panic": 125, "crashed": 126}
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "CI", "PYTHONPATH",
            "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "XDG_CACHE_HOME", "VIRTUAL_ENV")
POLL = 0.02
RUNS_KEPT = 50                  # consoles of the last runs kept in the cache
MACHINE = os.environ.get("CRBENCH_VM_MACHINE", "q35")
# qboot (in Debian's qemu-system-data) boots a -kernel in milliseconds, SeaBIOS in seconds
FIRMWARE = ["-bios", "/usr/share/qemu/qboot.rom"] if os.path.exists(
    "/usr/share/qemu/qboot.rom") and not os.environ.get("CRBENCH_VM_SEABIOS") else []
# what a short-lived test guest does without: legacy keyboard probing, Spectre-class
# mitigations (slow under emulation), the TSC and timer checks
BOOT_OPTIONS = ("i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd mitigations=off "
                "tsc=reliable no_timer_check edd=off " + os.environ.get("CRBENCH_VM_APPEND", ""))


@dataclass
class Outcome:
    kernel: str
    release: str
    status: str                     # see the module's docstring
    exit_code: int = None           # the command's, when it ran to its end
    output: bytes = b""
    warnings: list = field(default_factory=list)
    accel: str = "none"
    boot_seconds: float = None      # start to the command's start
    command_seconds: float = None
    total_seconds: float = None
    console: str = None             # path of the saved console log

    @property
    def code(self):
        """What `vm run` exits with: the command's status, else EXIT_CODES."""
        return self.exit_code if self.exit_code is not None else EXIT_CODES[self.status]

    def as_dict(self):
        out = dict(self.__dict__)
        out["output"] = self.output.decode(errors="replace")
        return out


def guest_env(extra=None, guest=True):
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith("CRBENCH_")}
    if guest:           # a throwaway kernel: the probes may have modules loaded
        env["CRBENCH_PROBES_LOAD_MODULES"] = "1"
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/root")
    env["TERM"] = "dumb"
    env.update(extra or {})
    return env


def run(kernel, argv, *, cwd=None, env=None, timeout=600.0, boot_timeout=60.0,
        total_timeout=None, memory="2G", cpus=2, share=None, accel=None, logs=None,
        stream=None, progress=None):
    """Run ``argv`` under ``kernel`` (a kernels.Kernel); ``stream(bytes)`` gets the output as
    it comes; ``logs``: a directory to keep console.log in (default: a new one under the
    cache's runs/, the last RUNS_KEPT kept); ``share``: a host directory the guest may
    write (mounted at the same path); ``total_timeout``: for the whole run, boot included."""
    cwd = str(cwd or os.getcwd())
    env = guest_env(env, guest=not kernel.is_host)
    if kernel.is_host:
        return _on_host(kernel, argv, cwd, env, timeout, stream)
    accel = accel or detect_accel(kernel, progress=progress)
    work = Path(tempfile.mkdtemp(prefix="crbench-vm-"))
    limits = (timeout, boot_timeout, total_timeout or timeout + boot_timeout)
    try:
        return _in_guest(kernel, argv, cwd, env, limits, memory, cpus, share, accel, work,
                         Path(logs) if logs else _run_dir(), stream)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _on_host(kernel, argv, cwd, env, timeout, stream):
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        return Outcome(kernel.name, kernel.release, "failed", 127, str(e).encode())
    chunks = []
    deadline = start + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while True:
        data = proc.stdout.read()
        if data:
            chunks.append(data)
            if stream:
                stream(data)
        if proc.poll() is not None and not data:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return Outcome(kernel.name, kernel.release, "timeout", None, b"".join(chunks),
                           total_seconds=time.monotonic() - start)
        time.sleep(POLL)
    took = time.monotonic() - start
    return Outcome(kernel.name, kernel.release, "ok" if proc.returncode == 0 else "failed",
                   proc.returncode, b"".join(chunks), boot_seconds=0.0, command_seconds=took,
                   total_seconds=took)


def command_line(kernel, initrd, console, output, *, memory, cpus, share, accel):
    argv = [QEMU, "-machine", MACHINE, *FIRMWARE, "-m", memory, "-smp", str(cpus), "-nodefaults",
            "-display", "none", "-no-reboot", "-kernel", str(kernel.image), "-initrd",
            str(initrd), "-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init " + BOOT_OPTIONS,
            "-serial", f"file:{console}", "-serial", f"file:{output}",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap"]
    if accel == "kvm":
        argv += ["-accel", "kvm", "-cpu", "host"]
    else:
        argv += ["-accel", "tcg,thread=multi", "-cpu", os.environ.get("CRBENCH_VM_CPU", "max")]
    if share:
        argv += ["-virtfs", f"local,path={share},mount_tag=crbench_share,security_model=none"]
    return argv


def _run_dir():
    """A new directory for a run's console under the cache; older runs' go."""
    runs = kernels.cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for old in sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)[:-RUNS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))


def _in_guest(kernel, argv, cwd, env, limits, memory, cpus, share, accel, work, logs,
              stream):
    timeout, boot_timeout, total_timeout = limits
    start = time.monotonic()
    initrd = work / "initrd.cpio"
    initrd.write_bytes(initramfs.build(_modules(kernel.modules), argv, cwd, env, share,
                                       kernel.modules))
    console, output = work / "console.log", work / "output.log"
    output.touch()
    qemu = subprocess.Popen(command_line(kernel, initrd, console, output, memory=memory,
                                         cpus=cpus, share=share, accel=accel),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    out = Outcome(kernel.name, kernel.release, "crashed", accel=accel)
    buf, started, ended, status = b"", None, None, None
    with open(output, "rb") as tail:        # made above, read as QEMU appends
        while True:
            gone = qemu.poll() is not None
            buf, shown, saw_start = _scan(buf + tail.read(), out, started is not None)
            now = time.monotonic()
            if saw_start:
                started, out.boot_seconds = now, now - start
            if stream and shown:
                stream(shown)
            if out.exit_code is not None and ended is None:
                ended = now
            if gone:
                break
            if started is None and now - start > boot_timeout:
                status = "boot-timeout"
            elif started is not None and ended is None and now - started > timeout:
                status = "timeout"
            elif now - start > total_timeout:
                status = "timeout" if started is not None else "boot-timeout"
            if status:
                qemu.kill()
                qemu.wait()
                break
            time.sleep(POLL)
    qemu_err = qemu.stderr.read().decode(errors="replace").strip()
    out.total_seconds = time.monotonic() - start
    if started is not None:
        out.command_seconds = (ended or time.monotonic()) - started
    text = console.read_text(errors="replace") if console.exists() else ""
    out.warnings = [line.strip() for line in text.splitlines() if WARNING.search(line)
                    and not any(a.search(line) for a in ALLOWED)]
    if status:
        out.status = status
    elif out.exit_code is not None:
        out.status = "ok" if out.exit_code == 0 else "failed"
    elif "Kernel panic" in text:
        out.status = "panic"
    else:
        out.status = "crashed"
        if qemu_err:
            out.warnings.append(f"qemu: {qemu_err}")
    if logs and console.exists():
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(console, logs / "console.log")
        out.console = str(logs / "console.log")
    return out


def _scan(buf, out, running):
    """Find /init's markers in ``buf`` (``running``: the command's start was seen before);
    returns (what to keep for later, the command's output in it, whether it started)."""
    shown, started = [], False
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        text = line.rstrip(b"\r").decode(errors="replace")
        if text == initramfs.START:
            running = started = True
        elif text.startswith(initramfs.EXIT + " "):
            out.exit_code = int(text.split()[1])
        elif running:
            out.output += line + b"\n"
            shown.append(line + b"\n")
    return buf, b"".join(shown), started


@functools.cache
def _modules(directory):
    return initramfs.modules(directory)


# acceleration ------------------------------------------------------------------------------
def detect_accel(kernel, probe_timeout=8.0, progress=None):
    """"kvm" when a guest really boots under KVM here (a broken /dev/kvm hangs QEMU, as on
    this kind of host), else "tcg"; the verdict is kept per host kernel and QEMU."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    verdicts = kernels.cache_dir() / "accel.json"
    key = f"{os.uname().release} {shutil.which(QEMU)}"
    try:
        known = json.loads(verdicts.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    if progress:
        progress(f"vm: does KVM boot a guest here? (once; up to {probe_timeout:g} s)")
    probe = run(kernel, ["true"], timeout=probe_timeout, boot_timeout=probe_timeout,
                accel="kvm", cwd="/")
    known[key] = "kvm" if probe.status == "ok" else "tcg"
    verdicts.parent.mkdir(parents=True, exist_ok=True)
    verdicts.write_text(json.dumps(known, indent=1))
    return known[key]
