"""The harness's run modes (--iters, --leave-running, --fault, the state comparison and known
differences) with the bundled engine on real programs, and zdtm_py.state on real processes."""

import os
import subprocess
import sys

from zdtm_py import leaks, state

from .test_zdtm_harness import CONFTEST, PASSING, run_suite, suite, suite_file  # noqa: F401

pytest_plugins = ["pytester"]

# a program whose tree changes after the checkpoint unless told not to: it opens /dev/null
# once it has been restored (its parent's pid file tells the launcher's pid)
OPENS_LATE = r"""
#include <fcntl.h>
#include <unistd.h>
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_daemon();
	while (access("open-now", F_OK))
		usleep(1000);
	open("/dev/null", O_RDONLY);
	test_waitsig();
	pass();
	return 0;
}
"""


def test_snapshot_differences_tell_fds_and_maps():
    child = subprocess.Popen([sys.executable, "-c", (
        "import mmap, sys, time\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline(); f = open('/dev/null'); m = mmap.mmap(-1, 1 << 20)\n"
        "print('ok', flush=True); time.sleep(60)")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        before = state.snapshot(child.pid)
        assert state.differences(before, state.snapshot(child.pid)) == []
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "ok\n"
        diff = state.differences(before, state.snapshot(child.pid))
        assert any(line.startswith(f"pid {child.pid}: fd ") and "-> /dev/null flags" in line
                   for line in diff), diff
        assert any(line.startswith(f"pid {child.pid}: map + ") for line in diff), diff
    finally:
        child.kill()
        child.wait()


def test_snapshot_merges_adjacent_equal_areas_and_ignores_inodes():
    snap = state.snapshot(os.getpid())
    me = snap["processes"][os.getpid()]
    for a, b in zip(me["maps"], me["maps"][1:]):
        assert not (a[1] == b[0] and a[2:] == b[2:]), (a, b)
    assert not any("pipe:[" in kind or "socket:[" in kind for kind in me["fds"].values())


COUNTING = """
def test_cycle(zdtm):
    outcome = zdtm.run(HERE / "passing.c")
    print("DUMPS", len(outcome.dumps), "RESTORES", len(outcome.restores))
"""


def test_iters_and_leave_running_modes(suite):
    suite_file(suite, {"passing": PASSING}, COUNTING)
    result = run_suite(suite, "--iters", "3", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DUMPS 3 RESTORES 3*"])
    result = run_suite(suite, "--leave-running", "--iters", "2", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DUMPS 2 RESTORES 0*"])


def test_fault_mode_fails_every_stage_and_goes_on(suite):
    suite_file(suite, {"passing": PASSING}, COUNTING)
    result = run_suite(suite, "--fault", "all", "-s")
    result.assert_outcomes(passed=1)
    # a dump per failing restore, then the real round; failing dumps are not counted
    result.stdout.fnmatch_lines(["*DUMPS 6 RESTORES 6*"])
    result = run_suite(suite, "--fault", "dump:nowhere")
    result.stdout.fnmatch_lines(["*--fault: unknown point(s) dump:nowhere*"])
    assert result.ret != 0


# the bundled engine, whose restore returns once the restored program has opened its file:
# the comparison right after it then sees the change every time
OPENED_BY_RESTORE = """
import os, time
from zdtm_py import engines

class Builtin(engines.BuiltinEngine):
    def restore(self, images_dir, *, fault=None):
        root, stats = super().restore(images_dir, fault=fault)
        deadline = time.monotonic() + 10
        told = os.path.exists(f"/proc/{root}/cwd/open-now")
        while told and not os.path.exists(f"/proc/{root}/fd/3") and time.monotonic() < deadline:
            time.sleep(0.001)
        return root, stats

engines.ENGINES["builtin"] = Builtin
"""
GO = """
def go(zdtm):
    return lambda: (zdtm.workdir / "open-now").touch()
"""


def test_state_change_after_restore_fails_with_a_diff(suite):
    suite.makepyfile(conftest=CONFTEST + OPENED_BY_RESTORE)
    suite_file(suite, {"opens_late": OPENS_LATE}, GO + """
def test_changes(zdtm):
    zdtm.run(HERE / "opens_late.c", between=go(zdtm))
""")
    result = run_suite(suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the tree after restore 1 differs from the tree before the "
                                 "dump:*", "*fd 3: (none) -> /dev/null flags *"])


def test_known_difference_is_reported_and_must_show(suite):
    suite.makepyfile(conftest=CONFTEST + OPENED_BY_RESTORE)
    suite_file(suite, {"opens_late": OPENS_LATE, "passing": PASSING}, GO + """
KNOWN = ((r"fd 3: \\(none\\) -> /dev/null", "opens a file after the restore, on purpose"),)
def test_known(zdtm):
    outcome = zdtm.run(Program(HERE / "opens_late.c", known_differences=KNOWN),
                       between=go(zdtm))
    assert "opens a file after the restore, on purpose" in outcome.known[0]

def test_known_but_not_seen(zdtm):
    zdtm.run(Program(HERE / "passing.c", known_differences=KNOWN))
""")
    result = run_suite(suite)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*known difference * never showed: the gap is closed, remove "
                                 "the declaration*"])


def test_leaked_mount_fails_the_test(suite, zdtm_run_lock, monkeypatch):
    suite_file(suite, {"passing": PASSING}, """
import subprocess
def test_mounts(zdtm):
    (zdtm.workdir / "mnt").mkdir()
    def mount():
        subprocess.run(["mount", "-t", "tmpfs", "none", str(zdtm.workdir / "mnt")], check=True)
    try:
        zdtm.run(HERE / "passing.c", between=mount)
    finally:
        subprocess.run(["umount", str(zdtm.workdir / "mnt")])
""")
    # alone: the host's mount table, which other runs compare, gets a mount for a while
    # (the suite it runs has a lock of its own: ours is held)
    monkeypatch.setenv("ZDTM_RUN_LOCK", str(suite.path / "run.lock"))
    with leaks.turn(zdtm_run_lock, exclusive=True):
        result = run_suite(suite, "--no-state-check")      # which would see the mount first
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test left behind mounts: */mnt*"])


def test_exclusive_programs_run_alone(suite):
    suite_file(suite, {"passing": PASSING}, """
import time, pytest
@pytest.mark.parametrize("n", range(6))
def test_alone(zdtm, n):
    exclusive = n % 3 == 0
    def busy():     # inside the run's turn: log how long it lasted
        t0 = time.monotonic()
        time.sleep(0.3)
        with open(HERE / "turns.log", "a") as f:
            f.write(f"{n} {int(exclusive)} {t0} {time.monotonic()}\\n")
    zdtm.run(Program(HERE / "passing.c", exclusive=exclusive), between=busy)
""")
    result = run_suite(suite, "-n", "2")
    result.assert_outcomes(passed=6)
    turns = [line.split() for line in suite.path.joinpath("turns.log").read_text().splitlines()]
    turns = [(int(n), x == "1", float(a), float(b)) for n, x, a, b in turns]
    overlaps = [(t[0], u[0]) for t in turns for u in turns if t[0] < u[0]
                and t[2] < u[3] and u[2] < t[3]]
    assert overlaps, "the two workers never overlapped: the check proves nothing"
    assert not [(a, b) for a, b in overlaps if a % 3 == 0 or b % 3 == 0], overlaps


def test_a_program_declares_the_features_it_needs(suite):
    suite_file(suite, {"passing": PASSING}, """
def test_needs(zdtm):
    zdtm.run(Program(HERE / "passing.c", requires=("bpf_iter_io_uring_file",)))
""")
    result = run_suite(suite, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*requires bpf_iter_io_uring_file: absent*"])


def test_the_ns_flavor_runs_a_program_as_pid_2_under_an_init_of_its_own(suite):
    suite_file(suite, {"where": WHERE}, """
def test_where(zdtm):
    zdtm.run(HERE / "where.c")
    print("FLAVOR", zdtm.flavor, open(zdtm.workdir / "where.out").read().replace(chr(10), " "))
""")
    result = run_suite(suite, "--flavor", "h,ns", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*FLAVOR ns*pid 2 in its namespace, hostname zdtm-ns*PASS*"])
    result = run_suite(suite, "--flavor", "xx")
    assert result.ret == 4 and "--flavor: unknown xx" in result.stderr.str()


def test_the_uns_flavor_adds_a_user_namespace_and_is_checked_by_its_own_pids(suite):
    suite_file(suite, {"where": WHERE}, """
def test_where(zdtm):
    zdtm.run(HERE / "where.c")
    print("FLAVOR", zdtm.flavor, open(zdtm.workdir / "where.out").read().replace(chr(10), " "))
""")
    result = run_suite(suite, "--flavor", "uns", "--iters", "2", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*FLAVOR uns*pid 2 in its namespace, hostname zdtm-ns, "
                                 "uid map 0 0 1 / 1 100001 65535*PASS*"])


# a program telling where it runs: its pid in its namespace, the host name, its uid map
WHERE = r"""
#include <stdio.h>
#include <unistd.h>
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	char host[64] = "", map[128] = "";
	unsigned a, b, c, d, e, f;
	FILE *m;
	int n = 0;
	test_init(argc, argv);
	gethostname(host, sizeof(host));
	m = fopen("/proc/self/uid_map", "r");
	if (m) {
		n = fscanf(m, "%u %u %u %u %u %u", &a, &b, &c, &d, &e, &f);
		fclose(m);
	}
	if (n == 6)
		snprintf(map, sizeof(map), "%u %u %u / %u %u %u", a, b, c, d, e, f);
	else if (n >= 3)
		snprintf(map, sizeof(map), "%u %u %u", a, b, c);
	test_msg("pid %d in its namespace, hostname %s, uid map %s\n", (int)getpid(), host, map);
	test_daemon();
	test_waitsig();
	pass();
	return 0;
}
"""
