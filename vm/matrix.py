"""The kernel matrix: the probes and the conformance suite (or a selection) under each
kernel, one after the other, each in its own guest; the results in one directory
(matrix.json, matrix.md, matrix.html - vm.report - and per kernel its console and the
suite's own reports)."""

import json
import sys
import time
from pathlib import Path

from . import kernels, qemu, report

DEFAULT_KERNELS = ("5.10", "6.1", "6.12", kernels.HOST)
DEFAULT_SUITE = ("testcases",)


def _python():
    """Ours: the guest runs it from the host's root, with every package it has."""
    return sys.executable


def run(kernel_names, pytest_args, out_dir, *, suite=True, timeout=3600.0, memory="3G",
        progress=print):
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    top = Path(__file__).resolve().parent.parent
    rows = []
    for name in kernel_names:
        kernel = kernels.get(name, progress=progress)
        here = out_dir / _slug(name)
        here.mkdir(exist_ok=True)
        row = {"kernel": name, "release": kernel.release}
        progress(f"vm matrix: {name} ({kernel.release}): probes")
        probes = qemu.run(kernel, [_python(), "-m", "probes", "--json"], cwd=top,
                          logs=here / "probes", memory=memory, progress=progress)
        row["accel"] = probes.accel
        row["probes"] = _probes_result(probes)
        progress(f"vm matrix: {name}: probes {row['probes']['status']} in "
                 f"{probes.total_seconds:.1f} s (boot {_secs(probes.boot_seconds)})")
        if suite:
            zdtm = here / "zdtm.json"
            zdtm.unlink(missing_ok=True)
            argv = [_python(), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
                    f"--zdtm-report={zdtm}", f"--junitxml={here / 'junit.xml'}",
                    *(pytest_args or DEFAULT_SUITE)]
            progress(f"vm matrix: {name}: pytest {' '.join(argv[3:])}")
            started = time.monotonic()
            ran = qemu.run(kernel, argv, cwd=top, logs=here / "suite", share=out_dir,
                           timeout=timeout, memory=memory, progress=progress,
                           stream=_progress_lines(progress, name))
            (here / "suite.out").write_bytes(ran.output)
            row["suite"] = _suite_result(ran, zdtm, time.monotonic() - started)
            progress(f"vm matrix: {name}: suite {row['suite']['status']} in "
                     f"{row['suite']['seconds']:.0f} s: {_totals(row['suite'])}")
        rows.append(row)
        _write(out_dir, rows)            # what is done so far stays readable
    return _write(out_dir, rows)


def _write(out_dir, rows):
    data = {"schema": "crbench-vm-matrix", "schema_version": 1, "kernels": rows}
    (out_dir / "matrix.json").write_text(json.dumps(data, indent=1) + "\n")
    (out_dir / "matrix.md").write_text(report.markdown(data))
    (out_dir / "matrix.html").write_text(report.html(data))
    return data


def _slug(name):
    return name.replace("/", "_").strip("_.") or "kernel"


def _secs(value):
    return "-" if value is None else f"{value:.1f} s"


def _outcome(out):
    return {"status": out.status, "exit_code": out.exit_code, "warnings": out.warnings,
            "boot_seconds": out.boot_seconds, "command_seconds": out.command_seconds,
            "total_seconds": out.total_seconds, "console": out.console}


def _probes_result(out):
    result = _outcome(out)
    result["results"] = {}
    if out.status == "ok":
        try:
            listing = json.loads(out.output)
        except ValueError:
            result["status"] = "bad output"
            return result
        result["results"] = {p["name"]: {"status": p["status"], "detail": p.get("detail", "")}
                             for p in listing["probes"]}
        result["summary"] = listing.get("summary")
    return result


def _suite_result(out, zdtm, seconds):
    result = _outcome(out)
    result["seconds"] = seconds
    result["tests"], result["totals"] = {}, {}
    try:
        data = json.loads(zdtm.read_text())
    except (OSError, ValueError):
        return result
    result["totals"] = data["totals"]
    result["tests"] = {t["id"]: {"result": t["result"], "reason": t.get("reason")}
                       for t in data["tests"]}
    return result


def _totals(suite):
    t = suite.get("totals") or {}
    return ", ".join(f"{t[k]} {k}" for k in ("passed", "failed", "skipped", "xfailed", "error")
                     if t.get(k)) or "no results"


def _progress_lines(progress, name):
    """The suite's output as progress: its lines of dots, so a long run shows it moves."""
    pending = [b""]

    def stream(data):
        *lines, pending[0] = (pending[0] + data).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace").strip()
            if text.endswith("%]"):
                progress(f"vm matrix: {name}: {text}")
    return stream
