"""vm/: real guests under QEMU (TCG here) booted with Debian's 6.1 kernel, fetched once into
the cache; the host kernel leg runs in-process.  Each guest takes a few seconds."""

import json
import os
import subprocess
import sys

import pytest

from vm import initramfs, kernels, qemu, report

from .helpers import TOP

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"),
                                reason="qemu-system-x86 is not installed")


@pytest.fixture(scope="module")
def kernel():
    return kernels.get("6.1", progress=lambda text: None)


def vm(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "vm", *args], cwd=TOP, capture_output=True,
                          text=True, timeout=timeout)


def test_a_command_runs_with_its_output_and_status(kernel):
    got = qemu.run(kernel, ["sh", "-c", "uname -r; echo to stderr >&2; exit 3"], cwd=TOP)
    assert (got.status, got.code) == ("failed", 3)
    assert got.output.decode().split() == [kernel.release, "to", "stderr"]
    assert got.accel in ("tcg", "kvm") and 0 < got.boot_seconds < got.total_seconds
    assert got.warnings == []


def test_the_guest_sees_the_hosts_root_writable_only_in_its_overlay(kernel, tmp_path):
    readme = os.path.join(TOP, "README.md")
    first = open(readme).readline()
    hidden = tmp_path / "not-in-the-guest"          # /tmp is the guest's own (but our cwd)
    hidden.touch()
    got = qemu.run(kernel, ["sh", "-c", f"head -1 {readme}; echo changed > {readme}; "
                                        f"cat {readme}; test -e {hidden} || echo hidden"],
                   cwd=TOP)
    assert got.status == "ok"
    assert got.output.decode() == first + "changed\nhidden\n"
    assert open(readme).readline() == first


def test_a_share_is_written_through(kernel, tmp_path):
    got = qemu.run(kernel, ["sh", "-c", f"echo out > {tmp_path}/result; ls /lib/modules"],
                   cwd=TOP, share=tmp_path)
    assert got.status == "ok" and (tmp_path / "result").read_text() == "out\n"
    assert kernel.release in got.output.decode()        # modprobe works in there


def test_user_namespaces_work_in_the_guest(kernel):
    got = qemu.run(kernel, ["unshare", "-U", "-r", "id", "-u"], cwd=TOP)
    assert (got.status, got.output.decode().strip()) == ("ok", "0")


def test_a_timeout_a_panic_and_a_failure_are_three_outcomes(tmp_path):
    hung = vm("run", "--kernel", "6.1", "--timeout", "3", "--", "sleep", "60")
    assert hung.returncode == 124 and "timed out" in hung.stderr
    panic = vm("run", "--kernel", "6.1", "--logs", str(tmp_path), "--", "sh", "-c",
               "echo c > /proc/sysrq-trigger")
    assert panic.returncode == 125 and "kernel panic" in panic.stderr
    assert "Kernel panic - not syncing: sysrq triggered crash" in \
        (tmp_path / "console.log").read_text()
    failed = vm("run", "--kernel", "6.1", "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7 and "exit 7" in failed.stderr


def test_the_host_leg_and_bad_kernels():
    host = vm("run", "--kernel", "host", "--json", "--", "sh", "-c", "uname -r; exit 4")
    assert host.returncode == 4
    out = json.loads(host.stdout)
    assert (out["status"], out["output"].strip()) == ("failed", os.uname().release)
    bad = vm("run", "--kernel", "4.19", "--", "true")
    assert bad.returncode == 126 and "unknown kernel '4.19'" in bad.stderr


def test_modules_come_with_what_they_need_first(kernel):
    names = [name for name, _ in initramfs.modules(kernel.modules)]
    for first, then in (("virtio_ring", "virtio_pci"), ("9pnet", "9pnet_virtio"),
                        ("netfs", "9p"), ("9pnet", "9p")):
        if first in names:
            assert names.index(first) < names.index(then)
    assert {"9p", "9pnet_virtio", "overlay"} <= set(names)


def test_the_matrix_of_the_probes_shows_what_differs(tmp_path):
    got = vm("matrix", "--kernels", "6.1,host", "--no-suite", "--out", str(tmp_path),
             timeout=300)
    assert got.returncode == 0, got.stderr
    data = json.loads((tmp_path / "matrix.json").read_text())
    guest, host = data["kernels"]
    assert guest["probes"]["status"] == host["probes"]["status"] == "ok"
    # statmount (6.8) and PAGEMAP_SCAN (6.7) are newer than 6.1, the host has them
    for probe in ("statmount", "pagemap_scan"):
        assert guest["probes"]["results"][probe]["status"] == "absent"
        assert host["probes"]["results"][probe]["status"] == "present"
    md = (tmp_path / "matrix.md").read_text()
    assert "| `statmount` | absent | present |" in md
    page = (tmp_path / "matrix.html").read_text()
    assert page.startswith("<!doctype html>") and "statmount" in page


def test_the_report_renders_probes_and_tests_with_reasons():
    data = {"kernels": [
        {"kernel": "a", "release": "1", "accel": "tcg",
         "probes": {"status": "ok", "summary": {"present": 1, "absent": 1, "error": 0},
                    "results": {"p1": {"status": "present", "detail": ""},
                                "p2": {"status": "absent", "detail": "ENOSYS"}}},
         "suite": {"status": "failed", "seconds": 10, "totals": {"passed": 1, "failed": 1},
                   "tests": {"t1": {"result": "failed", "reason": "state differs"},
                             "t2": {"result": "passed", "reason": None}}}},
        {"kernel": "b", "release": "2", "accel": "none",
         "probes": {"status": "ok", "summary": {"present": 2, "absent": 0, "error": 0},
                    "results": {"p1": {"status": "present", "detail": ""},
                                "p2": {"status": "present", "detail": ""}}},
         "suite": {"status": "ok", "seconds": 5, "totals": {"passed": 2},
                   "tests": {"t1": {"result": "passed", "reason": None},
                             "t2": {"result": "passed", "reason": None}}}}]}
    md = report.markdown(data)
    assert "## Probes that differ between kernels (1 of 2)" in md
    assert "| `p2` | absent | present |" in md and "- `p2` on a: ENOSYS" in md
    assert "| `t1` | failed | passed |" in md and "- `t1` on a: state differs" in md
    page = report.html(data)
    assert "title='state differs'" in page and "class='same'" in page


@pytest.mark.parametrize("series", ["5.10", "6.12"])
def test_the_other_debian_kernels_run_a_command_and_say_its_status(series):
    got = vm("run", "--kernel", series, "--json", "--", "sh", "-c", "uname -r; exit 5",
             timeout=600)
    out = json.loads(got.stdout)
    assert got.returncode == 5 and out["status"] == "failed"
    assert out["output"].strip() == out["release"] and out["release"].startswith(series + ".")
    assert os.path.exists(out["console"])               # kept under the cache's runs/


def test_a_kernel_image_by_path_and_a_whole_run_timeout(kernel):
    got = vm("run", "--kernel", str(kernel.image), "--modules", str(kernel.modules), "--json",
             "--", "uname", "-r")
    assert got.returncode == 0 and json.loads(got.stdout)["output"].strip() == kernel.release
    late = vm("run", "--kernel", "6.1", "--total-timeout", "4", "--", "sleep", "60")
    assert late.returncode == 124 and "timed out" in late.stderr
