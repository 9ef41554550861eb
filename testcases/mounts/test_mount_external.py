"""External mounts: a mount the tree shares with the outside world, declared at the dump
and bound again at the restore from the path the restore names (CRIU's ``--external
mnt[...]:...``; docs/plans/issue-10-mounts.md, 2.10).

The fixture makes two tmpfs mounts in this process's mount namespace (the host's), in a
directory of their own under the session's temporary directory (not the test's: mounts
there are leaks; under /tmp, which the ns and uns roots bind): outside-a and outside-b,
the same source, options and "data", but a "marker" naming each.  The test runs alone
(zdtm.alone()) from before the mounts are made until they are gone: other runs compare
the host's mount table (the h flavor), and their restores bind paths of the host's
namespace (/tmp in ns and uns) that these mounts sit below.  mnt_external binds outside-a at ``D/ext`` in its own mount
namespace, keeps a file of it open and a child's cwd there; the dump declares that mount
external (key ``outside``), the restore binds outside-b for the key.  The program checks
what both copies have alike, and the test checks from outside, after each restore, that
every process of the tree which has a mount at ``D/ext`` sees outside-b's marker there: the
restore bound the path it was given, not the one dumped.
"""

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from zdtm_py import Program, reaper

HERE = Path(__file__).parent
NAME = "mnt_external"
KEY = "outside"
SOURCE = "mnt-external"         # the program checks it: the same for both copies
POINT = f"{NAME}.dir/ext"       # under the test's directory


@pytest.fixture
def outside(zdtm, tmp_path_factory):
    """(outside-a, outside-b): tmpfs mounts of the host's namespace, made and unmounted
    (whatever happened; lazily: a tree still alive keeps its own copies) while no other
    run can see them."""
    base = tmp_path_factory.mktemp("mnt-external-outside")
    made = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(zdtm.alone())
        stack.callback(_unmount, made)
        for copy in ("a", "b"):
            path = base / f"outside-{copy}"
            path.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=755", SOURCE,
                            str(path)], check=True)
            made.append(path)
            subprocess.run(["mount", "--make-shared", str(path)], check=True)
            (path / "data").write_text("shared")
            (path / "marker").write_text(copy)
            (path / "probe").mkdir()
        yield made[0], made[1]


def _unmount(paths):
    for path in reversed(paths):
        subprocess.run(["umount", "-l", str(path)], check=False)


def program(flavor, outside_a, outside_b, propagation=""):
    # the point is in the mount namespace of the program (its own, mnt_prepare): the
    # root's in the h flavor; in ns and uns the root is the init (namespace 0, the private
    # root it pivoted into) and the program's is namespace 1.  Both see the test's
    # directory at the same path (the init's root binds the host's /tmp).
    at = "" if flavor == "h" else "@1"
    return Program(HERE / f"{NAME}.c", dirname=True, requires=("mntns",),
                   args=(f"--outside={outside_a}",) +
                   ((f"--propagation={propagation}",) if propagation else ()),
                   dump_options=(f"external=mnt[{{workdir}}/{POINT}{at}]:{KEY}",),
                   restore_options=(f"external=mnt[{KEY}]:{outside_b}",))


def bound_copy(root, point):
    """{pid: the marker at ``point``} of each process of the tree rooted at ``root``
    whose mount namespace has a mount there."""
    seen = {}
    for pid in reaper.tree([root]):
        try:
            with open(f"/proc/{pid}/mountinfo") as f:
                points = [line.split()[4] for line in f]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if point in points:
            seen[pid] = Path(f"/proc/{pid}/root{point}/marker").read_text()
    return seen


@pytest.mark.parametrize("propagation", ["", "slave", "shared"],
                         ids=["private", "slave", "shared"])
def test_mount_external(zdtm, zdtm_flavor, outside, propagation):
    """Private: bound from the path given.  Slave and shared (the h flavor: the program
    clones the outside's mount before it makes its namespace): after each restore a mount
    made on the path given shows in the tree; shared, a mount made in the tree shows on
    the path given too."""
    if propagation and zdtm_flavor != "h":
        pytest.skip("the outside's mount is reached from the host's namespace only (h)")
    point = os.path.join(os.path.realpath(zdtm.workdir), POINT)
    restored = []

    def after_restore(root):
        seen = bound_copy(root, point)
        assert seen and set(seen.values()) == {"b"}, \
            f"after restore {len(restored) + 1}: the marker at {point} per pid: {seen}"
        if propagation:
            _propagates(next(iter(seen)), point, outside[1], propagation == "shared")
        restored.append(seen)

    outcome = zdtm.run(program(zdtm_flavor, *outside, propagation),
                       after_restore=after_restore)
    assert len(restored) == len(outcome.restores)
    assert (outside[0] / "marker").read_text() == "a", "outside-a was changed"


def _propagates(pid, point, path, both_ways):
    """A tmpfs mounted on ``path``/probe shows at ``point``/probe in ``pid``'s namespace
    (and, ``both_ways``, one mounted there by a process in it shows on ``path``)."""
    def shows(where, mountinfo):
        with open(mountinfo) as f:
            return any(line.split()[4] == where for line in f)

    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "probe-out", f"{path}/probe"],
                   check=True)
    try:
        assert shows(f"{point}/probe", f"/proc/{pid}/mountinfo"), \
            f"a mount on {path}/probe does not show at {point}/probe in pid {pid}"
    finally:
        subprocess.run(["umount", f"{path}/probe"], check=True)
    assert not shows(f"{point}/probe", f"/proc/{pid}/mountinfo"), "its umount did not"
    if not both_ways:
        return
    subprocess.run(["nsenter", "-t", str(pid), "-m", "mount", "-t", "tmpfs", "-o",
                    "size=4k", "probe-in", f"{point}/probe"], check=True)
    try:
        assert shows(f"{path}/probe", "/proc/self/mountinfo"), \
            f"a mount at {point}/probe in pid {pid} does not show on {path}/probe"
    finally:
        subprocess.run(["nsenter", "-t", str(pid), "-m", "umount", f"{point}/probe"],
                       check=True)
