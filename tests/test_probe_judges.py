"""Every probe's decision logic, checked against the examples it declares.

The examples are observations (an errno, or a dict of what several steps
saw) with the verdict the judge must reach; this runs every judge on every
example without needing the kernels that would produce them.
"""

import pytest

from probes import REGISTRY
from probes.registry import Verdict

CASES = [(p.name, i, obs, want) for p in REGISTRY.values()
         for i, (obs, want) in enumerate(p.examples)]


@pytest.mark.parametrize("name,index,observation,expected", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_judge_reaches_declared_verdict(name, index, observation, expected):
    verdict = REGISTRY[name].judge(observation)
    assert isinstance(verdict, Verdict)
    assert verdict.present is expected, f"{name}: {observation!r} -> {verdict}"
    assert verdict.detail or REGISTRY[name].proposed, f"{name}: a verdict must say what it saw"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_probe_declares_both_outcomes(name):
    p = REGISTRY[name]
    outcomes = {want for _, want in p.examples}
    if p.proposed and p.exercise() is None:
        assert outcomes == {False}  # never merged and nothing to exercise
        return
    assert True in outcomes, f"{name}: no example of a present verdict"
    assert outcomes - {True}, f"{name}: no example of an absent or undecided verdict"
