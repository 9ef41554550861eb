"""Random process trees (randtree.py writes them, randtree.c runs them): forks, exits,
zombies, sessions and groups scattered by re-parenting to child subreapers; each tree is
dumped, restored and compared.  200 trees: 140 in the host's pid namespace (exact pids),
30 under an init of their own, 30 in a user namespace too."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

from . import randtree

HERE = Path(__file__).parent
SEEDS = {"h": range(0, 140), "ns": range(140, 170), "uns": range(170, 200)}
# the trees the dump refuses, by seed: what makes them, each a known gap
REFUSED = {}


def _seeds(flavor):
    return [engine_lacks(seed, REFUSED[seed], 9, id=str(seed)) if seed in REFUSED else seed
            for seed in SEEDS[flavor]]


def _program(seed):
    return Program(HERE / "randtree.c", args=(f"--script={randtree.script(seed)}",),
                   requires=("child_subreaper",))


@pytest.mark.zdtm_flavors("h")
@pytest.mark.parametrize("seed", _seeds("h"))
def test_random_tree(zdtm, seed):
    zdtm.run(_program(seed))


@pytest.mark.zdtm_flavors("ns")
@pytest.mark.parametrize("seed", _seeds("ns"))
def test_random_tree_ns(zdtm, seed):
    zdtm.run(_program(seed))


@pytest.mark.zdtm_flavors("uns")
@pytest.mark.parametrize("seed", _seeds("uns"))
def test_random_tree_uns(zdtm, seed):
    zdtm.run(_program(seed))
