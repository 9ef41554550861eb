"""The runner: a crashing or failing probe is reported, never fatal."""

import errno

from probes.registry import Call, Probe, by_errno
from probes.runner import ABSENT, ERROR, PRESENT, UNPRIVILEGED, run_one

JUDGE = by_errno("thing()", present_on=(0,), absent_on=("ENOSYS",))


def make(exercise, needs=None):
    return Probe(name="t", area="files", exercise=exercise, judge=JUDGE, examples=(),
                 needs=needs)


def test_present_and_absent():
    assert run_one(make(lambda: Call(0))).status == PRESENT
    assert run_one(make(lambda: Call(errno.ENOSYS))).status == ABSENT


def test_crash_is_an_error_with_its_location():
    r = run_one(make(lambda: 1 // 0))
    assert (r.status, r.present) == (ERROR, None)
    assert "ZeroDivisionError" in r.detail and "test_runner.py" in r.detail


def test_unexpected_oserror_is_an_error():
    def boom():
        raise OSError(errno.EBUSY, "busy")
    r = run_one(make(boom))
    assert r.status == ERROR and "EBUSY" in r.detail


def test_missing_capability_turns_a_negative_answer_into_unprivileged():
    r = run_one(make(lambda: Call(errno.EPERM), needs="CAP_BPF"), cap_mask=0)
    assert r.status == UNPRIVILEGED and r.present is None
    assert "needs CAP_BPF" in r.detail


def test_present_stays_present_without_capability():
    assert run_one(make(lambda: Call(0), needs="CAP_BPF"), cap_mask=0).status == PRESENT


def test_sys_admin_grants_split_capabilities():
    from kernel import caps
    assert caps.has("CAP_BPF", 1 << caps.CAP["CAP_SYS_ADMIN"])
    assert not caps.has("CAP_NET_ADMIN", 1 << caps.CAP["CAP_SYS_ADMIN"])
