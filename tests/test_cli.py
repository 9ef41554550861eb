"""`python -m probes` as users and scripts call it."""

import os

import pytest

from probes import REGISTRY

from .helpers import probes_json, run_probes

FIELDS = {"name", "area", "present", "status", "detail", "criu_name", "since", "proposed",
          "needs"}


@pytest.fixture(scope="module")
def report():
    return probes_json()


def test_json_document(report):
    assert report["schema"] == 1
    assert report["kernel"]["release"] == os.uname().release
    assert len(report["probes"]) == len(REGISTRY)
    for entry in report["probes"]:
        assert FIELDS <= set(entry), entry
        assert entry["present"] in (True, False, None)
        assert entry["status"] in ("present", "absent", "error", "unprivileged")
        assert (entry["status"] == "present") == (entry["present"] is True)
    s = report["summary"]
    assert s["total"] == sum(s[k] for k in ("present", "absent", "error", "unprivileged"))


def test_no_probe_errors_on_this_host(report):
    errors = {p["name"]: p["detail"] for p in report["probes"] if p["status"] != "present"
              and p["present"] is None}
    assert not errors


def test_table_groups_by_area():
    out = run_probes(check=True).stdout
    assert out.splitlines()[0].startswith("Kernel ")
    for title in ("BPF iterators", "Mounts", "Process tree", "Network"):
        assert f"\n{title}\n" in out


def test_feature_exit_status():
    assert run_probes("--feature", "move_mount_set_group").returncode == 0
    assert run_probes("--feature", "bpf_iter_io_uring_file").returncode == 1
    unknown = run_probes("--feature", "no_such_thing")
    assert unknown.returncode == 2 and "unknown feature" in unknown.stderr


def test_feature_accepts_criu_names():
    r = run_probes("--feature", "uffd-noncoop")
    assert r.returncode in (0, 1) and r.stdout.startswith("uffd_noncoop:")


def test_list_names_every_probe_and_alias():
    out = run_probes("--list", check=True).stdout.splitlines()
    assert len(out) == len(REGISTRY)
    assert any("(criu: uffd-noncoop)" in line for line in out)


def test_unprivileged_run_still_reports_every_probe():
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another uid")
    report = probes_json(user=65534)
    assert report["kernel"]["euid"] == 65534
    assert len(report["probes"]) == len(REGISTRY)
    by_status = {p["name"]: p["status"] for p in report["probes"]}
    assert by_status["bpf_iter_task_vma"] == "unprivileged"
    # only probes that declare a capability may answer "unprivileged", and a probe
    # that fails for lack of privilege without declaring it shows up as an error
    assert all(p["needs"] for p in report["probes"] if p["status"] == "unprivileged")
    errors = {p["name"]: p["detail"] for p in report["probes"] if p["status"] == "error"}
    assert not errors
