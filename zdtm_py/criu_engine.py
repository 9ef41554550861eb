"""CRIU as an engine of the suite: ``--engine criu`` (the reference CRIU) or
``--engine criu=PATH`` (a criu binary of the host).

The reference is Debian trixie's CRIU 4.1 in the debootstrap root that
tools/reference_criu.py builds.  That tool runs criu in a private mount
namespace pivoted into the root, and criu can only dump processes of its own
mount namespace, so each test program would have to start in there.  Here the
root's criu runs in the caller's mount namespace instead, through the root's
own dynamic loader and libraries (``ld.so --library-path ROOT/usr/lib/... criu``):
the criu binary and everything it links are the root's, while the programs,
the images and criu all share the host's mounts, so programs start as under
every other engine and no namespace has to outlive a step.  What that changes:
helpers criu execs (iptables-restore for its default network lock) come from
the host's PATH, not from the root (see NETWORK_LOCK).

CRIU writes its log (dump.log / restore.log) and statistics (stats-dump /
stats-restore) into the image directory; a failure raises EngineFailed with
the log's error lines and tail.  CRIU has no fault points here (``--fault``
skips), and its flags for what every engine carries unasked are COMMON_FLAGS.
"""

import functools
import glob
import importlib.util
import os
import signal
import subprocess
from pathlib import Path

from .engines import Engine
from .errors import EngineCrashed, EngineFailed, EngineUnavailable
from .launch import tail

REFERENCE_TOOL = Path(__file__).resolve().parent.parent / "tools" / "reference_criu.py"
SETUP_HINT = "as root: python tools/reference_criu.py setup"
TIMEOUT = 120.0          # seconds for one criu command
ERROR_LINES = 5          # CRIU's first "Error (" lines, quoted before the log's tail

# The reference's default network lock (iptables) would exec iptables-restore from the host's
# PATH: the host has none, and the root's own cannot run outside the root (its libraries are
# the root's).  So it takes no lock; this only matters for --tcp-established dumps, which
# CRIU 4.1.1 cannot make on kernels >= 6.16 anyway (it reads SO_PASSCRED, refused on inet
# sockets).  Its libnftables lock (`--network-lock nftables`) would work here and is the way
# to a real one.
NETWORK_LOCK = ("--network-lock", "skip")

# Every engine here carries what the programs hold without being asked; CRIU dumps and
# restores file locks only with --file-locks (ZDTM's lock tests ask for it in their .desc);
# without locks it changes nothing.
COMMON_FLAGS = ("--file-locks",)


@functools.cache
def reference_tool():
    """tools/reference_criu.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("reference_criu", REFERENCE_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_command(root):
    """The argv prefix that runs the root's criu with the root's loader and libraries (the
    loader sits in the multiarch library directory: usr/lib/x86_64-linux-gnu)."""
    loaders = sorted(glob.glob(os.path.join(root, "usr/lib/*-linux-gnu*/ld-linux*.so.*")))
    if not loaders:
        raise EngineUnavailable(f"engine criu: no dynamic loader in {root}/usr/lib/*-linux-gnu "
                                f"(rebuild the root, {SETUP_HINT} --force)")
    # --inhibit-cache: never fall back to the host's libraries through /etc/ld.so.cache
    return [loaders[0], "--inhibit-cache", "--library-path", os.path.dirname(loaders[0]),
            root + reference_tool().CRIU]


def option_flags(options):
    """CRIU flags for dump or restore options named by their flag: tcp_established=True
    is --tcp-established; a value other than True/False/None becomes the flag's argument,
    a list one flag per item (external=["mnt[/a]:a", "mnt[/b]:b"] is --external
    mnt[/a]:a --external mnt[/b]:b, as CRIU spells them on dump and restore alike)."""
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                flags += [flag, str(item)]
        elif value not in (False, None):
            flags += [flag, str(value)]
    return flags


# --- CRIU's stats images: service magic, stats magic, u32 size, then one protobuf message
STATS_HEADER = 12
DUMP_STATS_FIELDS = {1: "freezing_time", 2: "frozen_time", 3: "memdump_time",
                     4: "memwrite_time", 5: "pages_scanned", 6: "pages_skipped_parent",
                     7: "pages_written", 8: "irmap_resolve", 9: "pages_lazy", 10: "page_pipes",
                     11: "page_pipe_bufs", 12: "shpages_scanned",
                     13: "shpages_skipped_parent", 14: "shpages_written"}
RESTORE_STATS_FIELDS = {1: "pages_compared", 2: "pages_skipped_cow", 3: "forking_time",
                        4: "restore_time", 5: "pages_restored"}


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _protobuf_fields(data):
    """{field number: int or bytes} of a message holding varints and nested messages only."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            fields[number], pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return fields


def read_stats(path, step):
    """The dump or restore statistics CRIU wrote, shaped like the builtin engine's:
    {"times": {stage: seconds}, "counts": {name: n}}; {} when the file is missing or odd."""
    number, names = (1, DUMP_STATS_FIELDS) if step == "dump" else (2, RESTORE_STATS_FIELDS)
    try:
        data = Path(path).read_bytes()
        size = int.from_bytes(data[8:STATS_HEADER], "little")
        entry = _protobuf_fields(data[STATS_HEADER:STATS_HEADER + size]).get(number, b"")
        raw = _protobuf_fields(entry)
    except (OSError, ValueError, IndexError):
        return {}
    stats = {"times": {}, "counts": {}}
    for field, value in raw.items():
        name = names.get(field, f"field_{field}")
        if name.endswith("_time"):     # microseconds
            stats["times"][name[:-len("_time")]] = value / 1e6
        else:
            stats["counts"][name] = value
    return stats


def log_report(log):
    """CRIU's error lines (the cause, before its clean-up buries it) and the log's tail."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    errors = [ln for ln in lines if "Error (" in ln][:ERROR_LINES]
    return "\n".join(errors + [f"--- {Path(log).name} (last lines) ---", tail(log)])


def criu_environment():
    """Ours without LD_* variables (they would reach the root's loader and libraries)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


class CriuEngine(Engine):
    """CRIU's command line: ``criu dump -t PID`` and ``criu restore -d``."""
    name = "criu"

    def __init__(self, path=None):
        self.path = path        # a host criu binary; None: the reference from its root

    def __repr__(self):
        return f"<engine criu {self.path or 'reference'}>"

    @functools.cached_property
    def command(self):
        """The argv that runs criu; raises EngineUnavailable when there is none."""
        if self.path is not None:
            if not os.access(self.path, os.X_OK):
                raise EngineUnavailable(f"engine criu: {self.path} is not an executable file")
            return [self.path]
        if not REFERENCE_TOOL.is_file():
            raise EngineUnavailable(f"engine criu: no {REFERENCE_TOOL} to find the reference "
                                    "CRIU (pass --engine criu=PATH)")
        root = reference_tool().default_root()
        if not reference_tool().root_ready(root):
            raise EngineUnavailable(f"engine criu: the reference CRIU is not set up in {root} "
                                    f"({SETUP_HINT})")
        return reference_command(root)

    def check(self):
        if os.geteuid() != 0:
            raise EngineUnavailable("engine criu: needs root")
        try:
            proc = subprocess.run(self.command + ["check"], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=TIMEOUT,
                                  env=criu_environment())
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EngineUnavailable(f"engine criu: `criu check` did not run: {e}") from None
        if proc.returncode != 0:
            said = (proc.stdout + proc.stderr).strip().splitlines()
            errors = [ln for ln in said if "Error" in ln] or said[-3:]
            raise EngineUnavailable(f"engine criu: `criu check` failed here (exit "
                                    f"{proc.returncode}): " + " | ".join(errors[:3]))

    def _run(self, step, what, args, images_dir):
        """Run ``criu STEP ARGS`` with its log in the image directory; raise on failure."""
        log = images_dir / f"{step}.log"
        argv = self.command + [step, "-D", str(images_dir), "-o", log.name, "-v4",
                               *COMMON_FLAGS, *args]
        # criu's own output (before its log is open) goes to a file, never a pipe back to
        # pytest: a restored tree forked from criu must not hold our end of anything
        output = images_dir / f"criu-{step}.out"
        with open(output, "wb") as out:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=TIMEOUT,
                                      env=criu_environment())
            except subprocess.TimeoutExpired:
                raise EngineFailed(f"criu {what}: no answer within {TIMEOUT:g}s\n"
                                   f"{log_report(log)}") from None
            except OSError as e:
                raise EngineCrashed(f"criu {what}: could not run {argv[0]}: {e}") from None
        said = output.read_text(errors="replace").strip()
        said = f"--- criu's output ---\n{said}\n" if said else ""
        if proc.returncode < 0:
            raise EngineCrashed(f"criu {what}: killed by {signal.Signals(-proc.returncode).name}"
                                f"\n{said}{log_report(log)}")
        if proc.returncode != 0:
            raise EngineFailed(f"criu {what} failed (exit {proc.returncode}):\n"
                               f"{said}{log_report(log)}")

    def _no_fault(self, fault):
        if fault is not None:       # fault_points() is empty: the runner never asks
            raise EngineUnavailable(f"engine criu: no fault injection ({fault})")

    def dump(self, pid, images_dir, *, leave_running=False, fault=None, **options):
        self._no_fault(fault)
        images_dir = Path(images_dir)
        args = ["-t", str(pid)] + (["--leave-running"] if leave_running else [])
        if self.path is None:
            args += NETWORK_LOCK
        self._run("dump", f"dump of pid {pid}", args + option_flags(options), images_dir)
        return read_stats(images_dir / "stats-dump", "dump")

    def restore(self, images_dir, *, fault=None, **options):
        self._no_fault(fault)
        # -d: criu returns once the tree runs; the root, criu's child until then, is
        # re-parented to the nearest child subreaper: the pytest worker
        images_dir = Path(images_dir)
        pidfile = images_dir / "restored.pid"
        self._run("restore", f"restore from {images_dir}",
                  ["-d", "--pidfile", str(pidfile)] + option_flags(options), images_dir)
        try:
            root = int(pidfile.read_text().strip())
        except (OSError, ValueError) as e:
            raise EngineFailed(f"criu restore from {images_dir}: no root pid: {e}") from None
        return root, read_stats(images_dir / "stats-restore", "restore")
