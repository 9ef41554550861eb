"""Failure behaviour of the engine: a dump that fails leaves the tree running as it was, a
restore that fails leaves no task behind and the images untouched, bad input gets one clear
line.  Real processes (tests/programs/subject.py), real C/R."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import zlib

import pytest

import cr_engine
from cr_engine import faults

from .engine_subjects import alive, status
from .helpers import TOP


def images_digest(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def assert_untouched(s, before):
    st = status(s.pid)
    assert st["TracerPid"] == "0"
    assert st["State"][0] in "RS"
    assert st["SigBlk"] == before["SigBlk"] and st["SigPnd"] == before["SigPnd"]
    assert s.stop().startswith("alive ")


@pytest.mark.parametrize("kind,what", [
    ("packet_socket", "unsupported: AF_PACKET socket (fd"),
    ("io_uring_linked", "with a linked POLL_ADD request in flight"),
    ("io_uring_no_mmap_readonly", "its rings are in no writable mapping of the process"),
    ("unix_pending_data", "unsupported: data sent on a unix connection that @cr-subject-"),
    ("pidns_unforked", "has no init in the tree (not forked yet, or it exited)"),
    ("userns_alone", "has a user namespace of its own but not a pid namespace whose init"),
    ("epoll_outside", "watches a file (fd number"),
    ("bpf_bloom", "(bloom_filter ''; fd "),
    ("bpf_prog_array", "holds 1 entries: its entries are BPF programs"),
    ("bpf_used_by_prog", "is used by loaded BPF program"),
    ("pty_queued", "): 7 bytes queued at its master"),      # the line's echo, "typed\r\n"
])
def test_dump_of_unsupported_object_fails_and_tree_runs_on(subject, tmp_path, kind, what):
    s = subject(kind)
    before = status(s.pid)
    with pytest.raises(cr_engine.Unsupported) as err:
        cr_engine.dump(s.pid, tmp_path / "img")
    message = str(err.value)
    assert what in message and f"pid {s.pid}" in message
    assert "\n" not in message
    assert not (tmp_path / "img" / "inventory.json").exists()
    assert os.listdir(tmp_path / "img") == []
    assert_untouched(s, before)


@pytest.mark.parametrize("point", [p for p in faults.POINTS if p.startswith("dump:")])
def test_dump_failing_at_any_stage_leaves_tree_running(subject, tmp_path, point):
    s = subject()
    before = status(s.pid)
    with pytest.raises(cr_engine.DumpError, match=f"fault injected at {point}"):
        cr_engine.dump(s.pid, tmp_path / "img", fault=point)
    assert os.listdir(tmp_path / "img") == []
    assert_untouched(s, before)


@pytest.mark.parametrize("point", ["dump:write", "dump:finish"])
def test_leave_running_dump_failing_after_the_thaw_leaves_no_images(subject, tmp_path, point):
    """With --leave-running the images are completed once the tree runs again: a failure
    then removes them, and the tree runs on."""
    s = subject()
    before = status(s.pid)
    with pytest.raises(cr_engine.DumpError, match=f"fault injected at {point}"):
        cr_engine.dump(s.pid, tmp_path / "img", leave_running=True, fault=point)
    assert os.listdir(tmp_path / "img") == []
    assert_untouched(s, before)


@pytest.mark.parametrize("point", [p for p in faults.POINTS if p.startswith("restore:")])
def test_restore_failing_at_any_stage_leaves_nothing(subject, tmp_path, point):
    s = subject()
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()                                  # reap the killed original
    before = images_digest(images)
    stage = point.split(":")[1]
    with pytest.raises(cr_engine.RestoreError) as err:
        cr_engine.restore(images, fault=point)
    assert err.value.stage == stage and str(err.value).startswith(f"{stage}: ")
    assert not any(alive(pid) for pid in dumped.pids)
    assert images_digest(images) == before
    # and the images still restore
    restored = cr_engine.restore(images)
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


@pytest.mark.parametrize("taker", ["file", "socket"])
def test_restore_of_a_unix_address_now_taken_fails_and_leaves_nothing(subject, tmp_path,
                                                                      taker):
    s = subject("unix_listener")
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    path = tmp_path / "listener.sock"
    path.unlink()                             # the dumped socket's file is no obstacle
    held = None
    if taker == "file":
        path.write_text("someone else's")
    else:
        held = socket.socket(socket.AF_UNIX)
        held.bind(str(path))
    before = images_digest(images)
    with pytest.raises(cr_engine.RestoreError) as err:
        cr_engine.restore(images)
    assert f"cannot bind unix socket to {path}: the address is taken" in str(err.value)
    assert not any(alive(pid) for pid in dumped.pids)
    assert images_digest(images) == before
    if held:
        held.close()
    path.unlink()
    restored = cr_engine.restore(images)
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_restore_of_a_file_that_vanished_fails_and_leaves_nothing(subject, tmp_path):
    s = subject("fds")                      # holds tmp_path/locked open (empty)
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    path, away = tmp_path / "locked", tmp_path / "moved away"
    path.rename(away)
    before = images_digest(images)
    with pytest.raises(cr_engine.RestoreError) as err:
        cr_engine.restore(images)
    assert f"cannot open {path}: No such file or directory" in str(err.value)
    assert "\n" not in str(err.value)
    assert not any(alive(pid) for pid in dumped.pids)
    assert images_digest(images) == before
    away.rename(path)                       # the same file again: the images still restore
    restored = cr_engine.restore(images)
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_damaged_pages_are_reported_and_nothing_is_left(subject, tmp_path):
    s = subject()
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    pages = images / f"pages-{s.pid}.img"
    data = bytearray(pages.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pages.write_bytes(bytes(data))
    with pytest.raises(cr_engine.ImageError, match=f"pages-{s.pid}.img: damaged"):
        cr_engine.restore(images)
    assert not any(alive(pid) for pid in dumped.pids)


def test_leave_running_then_restore_reports_pid_in_use(subject, tmp_path):
    s = subject()
    images = tmp_path / "img"
    cr_engine.dump(s.pid, images, leave_running=True)
    assert status(s.pid)["TracerPid"] == "0"
    with pytest.raises(cr_engine.RestoreError, match=f"pid {s.pid} is in use"):
        cr_engine.restore(images)
    assert s.stop().startswith("alive ")


def rewrite_json(images, name, obj):
    """Replace an image file and its inventory entry (a damage the checksums cannot see)."""
    data = json.dumps(obj).encode()
    (images / name).write_bytes(data)
    inventory = json.loads((images / "inventory.json").read_text())
    inventory["files"][name] = {"size": len(data), "crc32": f"{zlib.crc32(data):08x}"}
    (images / "inventory.json").write_text(json.dumps(inventory))


def test_seccomp_filter_the_kernel_refuses_fails_the_restore_cleanly(subject, tmp_path):
    s = subject("seccomp")
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    core = json.loads((images / f"core-{s.pid}.json").read_text())
    core["seccomp_filters"][0]["code"] = "1500000000000000"     # a jump, no return: EINVAL
    rewrite_json(images, f"core-{s.pid}.json", core)
    with pytest.raises(cr_engine.RestoreError) as err:
        cr_engine.restore(images)
    assert err.value.stage == "state"
    assert f"cannot install seccomp filter #0 in thread {s.pid} (Invalid argument)" in \
        str(err.value)
    assert not any(alive(pid) for pid in dumped.pids)


# a dumper inside seccomp (a container's profile, say) can neither read nor suspend filters
UNDER_SECCOMP = ("import sys; from kernel import process; "
                 "process.seccomp_set_filter([(0x06, 0, 0, 0x7FFF0000)]); "  # allow all
                 "from cr_engine.cli import main; sys.exit(main(sys.argv[1:]))")


def test_dump_of_seccomp_by_a_dumper_under_seccomp_fails_and_tree_runs_on(subject, tmp_path):
    s = subject("seccomp")
    before = status(s.pid)
    out = subprocess.run([sys.executable, "-c", UNDER_SECCOMP, "dump", "-t", str(s.pid),
                          "-D", str(tmp_path / "img")], cwd=TOP, capture_output=True, text=True,
                         timeout=60)
    one_line_error(out, f"cannot suspend the seccomp of thread {s.pid}", "CAP_SYS_ADMIN")
    assert os.listdir(tmp_path / "img") == []
    assert_untouched(s, before)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cr_engine", *map(str, args)], cwd=TOP,
                          capture_output=True, text=True, timeout=60)


def one_line_error(out, *fragments):
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_cli_dump_of_missing_pid(tmp_path):
    pid = 1
    while os.path.exists(f"/proc/{pid}"):
        pid += 7919
    one_line_error(cli("dump", "-t", pid, "-D", tmp_path / "img"), f"no process with pid {pid}")


def test_cli_restore_of_empty_directory(tmp_path):
    one_line_error(cli("restore", "-D", tmp_path), "not an image directory")


def test_cli_restore_of_missing_directory(tmp_path):
    one_line_error(cli("restore", "-D", tmp_path / "nope"), "no such images directory")


def test_cli_restore_of_foreign_directory(tmp_path):
    (tmp_path / "inventory.json").write_text(json.dumps({"magic": "something else"}))
    one_line_error(cli("restore", "-D", tmp_path), "foreign inventory")


def test_cli_restore_of_newer_format(subject, tmp_path):
    s = subject()
    images = tmp_path / "img"
    cr_engine.dump(s.pid, images, leave_running=True)
    inventory = json.loads((images / "inventory.json").read_text())
    inventory["version"] += 1
    (images / "inventory.json").write_text(json.dumps(inventory))
    one_line_error(cli("restore", "-D", images), "newer than this engine")
    one_line_error(cli("show", images), "newer than this engine")
