"""Known engine gaps, declared where a test module lists its programs."""

import pytest

import probes

BUILTIN = "config.getoption('engine') == 'builtin'"
# when a gap shows, as a condition on the command line (pytest evaluates it, no eval of ours)
WHEN = {
    "always": BUILTIN,
    # the gap is in the restore: --leave-running (no restore) passes
    "restore": f"{BUILTIN} and not config.getoption('leave_running')",
    # the gap shows when a tree already dumped once while running (its queues read) is
    # dumped again and restored: after a dump that failed on purpose (--fault), snapshots
    "dumped again": f"{BUILTIN} and (bool(config.getoption('fault')) or "
                    f"config.getoption('snapshots'))",
    # ... or only frozen once (and thawed) before: pre-dumps too
    "frozen again": f"{BUILTIN} and (bool(config.getoption('fault')) or "
                    f"config.getoption('pre_dump') > 0 or config.getoption('snapshots'))",
    # the dump has to spend something of the running tree (an io_uring ring's SQEs, to take
    # out what only the ring holds): refused with --leave-running (snapshots too), and a
    # dump that failed on purpose after that step left the tree changed
    "spends": f"{BUILTIN} and (config.getoption('leave_running') or "
              f"bool(config.getoption('fault')) or config.getoption('snapshots'))",
}


def engine_lacks(program, what, issue, id=None, when="always", kernel_lacks=(), more=()):
    """``program`` as a pytest parameter that the bundled engine does not carry yet: a strict
    xfail under ``--engine builtin`` (it must start passing once the gap is closed), a plain
    test under every other engine (``--engine none`` checks the program itself).  ``id``
    names a variant of a program run with other arguments; ``when`` (a WHEN key) narrows
    the gap to the modes it shows in; ``kernel_lacks`` (probe names) to the kernels where
    one of them is not present.  ``more``: further gaps of the program, (what, issue, when,
    kernel_lacks) each; the first that shows is the one reported."""
    marks = [_gap(what, issue, when, kernel_lacks)] + [_gap(*gap) for gap in more]
    return pytest.param(program, id=id or program.name, marks=marks)


def _gap(what, issue, when="always", kernel_lacks=()):
    shows = WHEN[when]
    if kernel_lacks:
        lacking = [name for name in kernel_lacks if probes.check(name).status != "present"]
        shows = f"({shows}) and {bool(lacking)}"
        if lacking:
            what = f"{what}; this kernel lacks {', '.join(lacking)}"
    return pytest.mark.xfail(shows, strict=True, reason=f"engine: {what} (issue {issue})")
