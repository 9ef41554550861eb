"""The engine's command line as a user meets it: dump, show, restore (-d, --pidfile),
and a shell job on a real terminal (--shell-job)."""

import json
import os
import pty
import subprocess
import sys
import time

import pytest

from cr_engine import dump
from cr_engine.freezer import FrozenTree
from cr_engine.images import ImageReader
from zdtm_py import leaks

from .engine_subjects import SUBJECT, alive
from .helpers import TOP

SHELL = os.path.join(TOP, "tests", "programs", "shell.py")


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "cr_engine", *map(str, args)], cwd=TOP,
                          capture_output=True, text=True, timeout=60, **kwargs)


def wait_pidfile(path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.005)
    return int(open(path).read())


def test_walkthrough_dump_show_restore(subject, tmp_path):
    s = subject()
    images = tmp_path / "img"
    out = cli("dump", "-t", s.pid, "-D", images, "-v")
    assert out.returncode == 0, out.stderr
    for stage in ("freeze", "frozen", "memory", "pages_written"):
        assert stage in out.stderr
    s.kill()
    shown = cli("show", images)
    assert shown.returncode == 0, shown.stderr
    for fragment in (f"root pid {s.pid}", "process tree:", "memory:", "[stack]", "fds:",
                     "signal handlers:", "SIGTERM"):
        assert fragment in shown.stdout
    decoded = json.loads(cli("show", images, "--json").stdout)
    assert decoded["pstree"]["root"] == s.pid
    assert decoded["processes"][0]["mm"]["pagemap"]
    pidfile = tmp_path / "restored.pid"
    out = cli("restore", "-D", images, "-d", "--pidfile", pidfile, "-v")
    assert out.returncode == 0, out.stderr
    assert "pages_restored" in out.stderr
    assert wait_pidfile(pidfile) == s.pid
    assert alive(s.pid)
    assert s.stop().startswith("alive ")        # re-parented to us (a subreaper): reap it
    os.waitpid(s.pid, 0)


def test_restore_without_detach_waits_for_the_root(subject, tmp_path):
    s = subject()
    images = tmp_path / "img"
    assert cli("dump", "-t", s.pid, "-D", images).returncode == 0
    s.kill()
    pidfile = tmp_path / "restored.pid"
    proc = subprocess.Popen([sys.executable, "-m", "cr_engine", "restore", "-D", str(images),
                             "--pidfile", str(pidfile)], cwd=TOP)
    assert wait_pidfile(pidfile) == s.pid       # written once the tree runs
    assert proc.poll() is None                  # still waiting for the tree
    assert s.stop().startswith("alive ")
    assert proc.wait(timeout=20) == 0           # the root's exit status


@pytest.fixture
def shell(tmp_path, zdtm_run_lock):
    """A job-control shell on a fresh pseudo-terminal (of the host's devpts: held with the
    run lock shared, so that a conformance run of a host pty, alone, keeps its index)."""
    with leaks.turn(zdtm_run_lock, exclusive=False):
        master, slave = pty.openpty()
        slave_path = os.ttyname(slave)
        os.close(slave)
        proc = subprocess.Popen([sys.executable, SHELL, slave_path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=TOP)

        def run(*argv):
            proc.stdin.write(json.dumps([str(a) for a in argv]) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())
        run.pid, run.tty = proc.pid, slave_path
        yield run
        proc.stdin.close()
        proc.kill()
        proc.wait()
        os.close(master)


def test_shell_job_needs_the_flag_and_comes_back_on_the_terminal(shell, tmp_path,
                                                                   zdtm_subreaper):
    result = tmp_path / "result"
    job = shell("&", sys.executable, SUBJECT, "plain", result)["pid"]
    deadline = time.monotonic() + 20
    while not result.exists():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    tty_nr = int(open(f"/proc/{job}/stat").read().rpartition(")")[2].split()[4])
    assert tty_nr and os.readlink(f"/proc/{job}/fd/0") == shell.tty
    images = tmp_path / "img"
    refused = cli("dump", "-t", job, "-D", images)
    assert refused.returncode == 1 and "use --shell-job" in refused.stderr
    assert alive(job)
    dumped = cli("dump", "-t", job, "-D", images, "--shell-job")
    assert dumped.returncode == 0, dumped.stderr
    assert not alive(job)
    refused = cli("restore", "-D", images)
    assert refused.returncode == 1 and "--shell-job" in refused.stderr
    pidfile = tmp_path / "pid"
    done = shell(sys.executable, "-m", "cr_engine", "restore", "-D", images, "--shell-job",
                 "-d", "--pidfile", pidfile)
    assert done["status"] == 0
    assert wait_pidfile(pidfile) == job
    stat = open(f"/proc/{job}/stat").read().rpartition(")")[2].split()
    assert int(stat[3]) == shell.pid                      # the shell's session
    assert int(stat[4]) == tty_nr                         # the same controlling terminal
    assert os.readlink(f"/proc/{job}/fd/0") == shell.tty
    os.remove(result)
    os.kill(job, 15)
    deadline = time.monotonic() + 20
    while not (result.exists() and result.read_text().startswith("alive")):
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.requires("uffd_wp_async")     # pre-dumps track writes (6.7)
def test_pre_dump_and_an_incremental_dump(subject, tmp_path):
    s = subject()
    out = cli("pre-dump", "-t", s.pid, "-D", tmp_path / "pre", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["stats"]["counts"]["pages_written"] > 0
    assert alive(s.pid)
    shown = cli("show", tmp_path / "pre")
    assert shown.returncode == 0, shown.stderr
    assert f"pre-dump: format cr_engine-images v3, root pid {s.pid}" in shown.stdout
    assert f"pid {s.pid}: " in shown.stdout and "pages stored, 0 in the parent chain" in \
        shown.stdout
    out = cli("dump", "-t", s.pid, "-D", tmp_path / "img", "--prev-images-dir",
              tmp_path / "pre", "--json")
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)["stats"]["counts"]
    assert counts["pages_inherited"] > counts["pages_written"]
    s.kill()
    pidfile = tmp_path / "restored.pid"
    out = cli("restore", "-D", tmp_path / "img", "-d", "--pidfile", pidfile)
    assert out.returncode == 0, out.stderr
    assert wait_pidfile(pidfile) == s.pid
    assert s.stop().startswith("alive ")
    os.waitpid(s.pid, 0)


def test_a_leave_running_dump_reports_its_downtime(subject, tmp_path):
    """downtime runs from the first thread's stop to the last one's release: it holds the
    freeze and the thaw that ``frozen`` leaves out, in what the CLI prints and in the
    image's stats alike."""
    s = subject()
    out = cli("dump", "-t", s.pid, "-D", tmp_path / "img", "--leave-running", "--json")
    assert out.returncode == 0, out.stderr
    times = json.loads(out.stdout)["stats"]["times"]
    assert times["downtime"] >= times["frozen"] > 0
    stored = json.loads((tmp_path / "img" / "stats-dump.json").read_text())["times"]
    assert stored["downtime"] == times["downtime"] and stored["frozen"] == times["frozen"]
    assert s.stop().startswith("alive ")


@pytest.mark.parametrize("leave_running", [True, False])
def test_images_are_completed_after_the_thaw_only_with_leave_running(subject, tmp_path,
                                                                      monkeypatch,
                                                                      leave_running):
    """What does not read the tree (JSON files, CRCs) is left out of its downtime when it
    runs on; a tree that is killed is killed only once its images are complete."""
    s = subject()
    images, seen = tmp_path / "img", {}

    def watching(name, real):
        def watched(tree):
            seen[name] = sorted(os.listdir(images))
            return real(tree)
        return watched
    monkeypatch.setattr(FrozenTree, "thaw", watching("thaw", FrozenTree.thaw))
    monkeypatch.setattr(FrozenTree, "kill", watching("kill", FrozenTree.kill))
    dump(s.pid, images, leave_running=leave_running)
    if leave_running:
        assert seen["thaw"] == [f"pages-{s.pid}.img"]     # what the process wrote itself
        assert s.stop().startswith("alive ")
    else:
        assert {"inventory.json", f"core-{s.pid}.json", "pstree.json"} <= set(seen["kill"])
    ImageReader(images).verify()        # every size and CRC, the pages' too


def test_track_mem_needs_leave_running(subject, tmp_path):
    s = subject()
    out = cli("dump", "-t", s.pid, "-D", tmp_path / "img", "--track-mem")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: --track-mem needs --leave-running (a killed tree " \
                                 "has nothing to track)"
    assert alive(s.pid)


@pytest.mark.parametrize("kind", ["plain", "private_root"])
def test_the_prober_is_not_run_while_the_tree_is_frozen(subject, tmp_path, kind):
    """Importing and running the probes takes some 200 ms: a dump asks what it needs of
    them before it freezes the tree (a tree in a mount namespace of its own), or nothing
    (a tree in ours) - never inside the frozen window."""
    s = subject(kind)
    probe = f"""
import sys
import time
import cr_engine
from cr_engine import dump
from cr_engine.freezer import FrozenTree
from cr_engine.images import ImageReader
freeze = FrozenTree.freeze
def watched(self):
    tree = freeze(self)
    print("at freeze:", "probes" in sys.modules)
    return tree
FrozenTree.freeze = watched
cr_engine.dump({s.pid}, {str(tmp_path / "img")!r}, leave_running=True)
print("after dump:", "probes" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=TOP, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    own = kind == "private_root"
    assert f"at freeze: {own}" in out.stdout and f"after dump: {own}" in out.stdout, \
        out.stdout
    assert s.stop(s.pid).startswith("alive ")
