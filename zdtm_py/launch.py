"""Start a test program by the ZDTM protocol, stop it, and read its verdict.

The program runs with its own directory as cwd, its launcher's stdout and
stderr going to a file there (never a pipe back to pytest: a pipe whose other
end is outside the test tree would be part of what gets checkpointed).
"""

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import build, reaper
from .errors import ProgramFailed, StartFailed

TAIL_LINES = 25


@dataclass
class Started:
    program: object
    workdir: Path
    pid: int            # the test's daemon: the root of the tree to checkpoint
    files: dict


def tail(path, lines=TAIL_LINES):
    """The last ``lines`` lines of a file, or a note that it does not exist."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return f"({Path(path).name} does not exist)"
    rows = text.rstrip("\n").splitlines()
    cut = rows[-lines:]
    return ("...\n" if len(rows) > lines else "") + "\n".join(cut) if cut else "(empty)"


def log_file(files):
    """The program's log: the outfile, or its .inprogress if it never finished."""
    out = files["outfile"]
    inprogress = out.with_name(out.name + ".inprogress")
    return out if out.exists() or not inprogress.exists() else inprogress


def _logs(files):
    log = log_file(files)
    return (f"--- {log.name} (last lines) ---\n{tail(log)}\n"
            f"--- {files['launcher_log'].name} ---\n{tail(files['launcher_log'])}")


# what testcases/lib makes of them
# Python test programs speak the protocol through the C library built as a shared object
PYTHON_LIB = build.LIB_DIR / "python" / "zdtmtst_py.c"
PYTHON_LIB_ENV = "ZDTM_LIB"
FLAVOR_ENV = {"h": {}, "ns": {"ZDTM_NEWNS": "1"},
              "uns": {"ZDTM_NEWNS": "1", "ZDTM_USERNS": "1"}}


def start(program, binary, workdir, tracker, flavor="h"):
    """Start ``binary`` (in the namespaces ``flavor`` says) and wait for its pidfile;
    returns Started with the daemon's pid (in the ns flavors: its namespace's init)."""
    workdir = Path(workdir)
    files = program.files(workdir)
    env = {k: v for k, v in os.environ.items() if k not in FLAVOR_ENV["uns"]}
    env.update(FLAVOR_ENV[flavor])
    if program.interpreted:             # the protocol library, for testcases/lib/zdtmtst.py
        env[PYTHON_LIB_ENV] = str(build.build(PYTHON_LIB, cflags=("-shared", "-fPIC")))
    with open(files["launcher_log"], "wb") as log:
        launcher = subprocess.Popen(program.argv(binary), cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, close_fds=True,
                                    env=env)
    tracker.watch(launcher.pid)
    try:
        rc = launcher.wait(timeout=program.start_timeout)
    except subprocess.TimeoutExpired:
        # the launcher and its test stay watched: the tracker's clean-up kills them
        raise StartFailed(f"{program.name}: no pidfile after {program.start_timeout:g}s "
                          f"(test_daemon() never called?)\n{_logs(files)}") from None
    tracker.forget(launcher.pid)
    if rc != 0:
        how = f"exited with {rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
        raise StartFailed(f"{program.name}: launcher {how} before the test daemonized\n"
                          f"{_logs(files)}")
    try:
        pid = int(files["pidfile"].read_text().strip())
    except (OSError, ValueError) as e:
        raise StartFailed(f"{program.name}: bad pidfile: {e}\n{_logs(files)}") from None
    tracker.watch(pid)
    return Started(program, workdir, pid, files)


def describe_status(status):
    if status is None:
        return "reaped elsewhere (no status)"
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}" + (" (core dumped)" if os.WCOREDUMP(status) else "")
    return f"wait status {status:#x}"


def stop(started, root, tracker):
    """SIGTERM the test's root ``root`` and wait for it; returns its wait status."""
    program = started.program
    if not reaper.kill(root, signal.SIGTERM):
        raise ProgramFailed(f"{program.name}: pid {root} was gone before SIGTERM\n"
                            f"{_logs(started.files)}")
    try:
        status = reaper.wait_exit(root, program.stop_timeout)
    except TimeoutError:
        raise ProgramFailed(f"{program.name}: pid {root} did not exit within "
                            f"{program.stop_timeout:g}s of SIGTERM\n{_logs(started.files)}") from None
    tracker.forget(root)
    return status


def verdict(started, status):
    """Pass when the outfile's last line ends with PASS and no line says FAIL; else
    ProgramFailed with the program's FAIL and ERR lines and the log tails."""
    log = log_file(started.files)
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        lines = []
    failed = [ln for ln in lines if "FAIL:" in ln]
    if (lines and lines[-1].rstrip().endswith("PASS") and not failed
            and log == started.files["outfile"]):
        return "\n".join(lines)
    reasons = [ln for ln in lines if "FAIL:" in ln or "ERR:" in ln]
    if not reasons:
        reasons = ["no PASS" + ("" if log == started.files["outfile"]
                                else f" ({log.name}: the outfile was never completed)")]
    raise ProgramFailed(f"{started.program.name}: " + "\n".join(reasons) +
                        f"\n(the test's root {describe_status(status)})\n{_logs(started.files)}")
