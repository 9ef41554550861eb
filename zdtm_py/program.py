"""What a test module declares about one test program."""

import dataclasses
import os
import re
from pathlib import Path

WORKDIR = "{workdir}"       # in an engine option's value: the test's directory
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True)
class Program:
    """A ZDTM-protocol C program and how to build and start it.

    ``filename`` / ``dirname``: pass ``--filename=<name>.test`` /
    ``--dirname=<name>.dir`` (paths inside the test's own directory; a dirname
    is not created, the program makes it). ``args``: more options for the
    program. ``cflags`` / ``libs`` / ``extra_sources``: for the compiler.
    ``dump_options`` / ``restore_options``: what the dump / restore must be asked for, as
    engine keywords named like CRIU's flags: a flag name (``"tcp_established"`` is
    ``tcp_established=True``, CRIU's ``--tcp-established``) or ``"key=value"``, whose value
    may hold ``{workdir}``, the test's directory (resolved); a key given several times
    collects its values into a list (engine_options), e.g.
    ``("external=mnt[{workdir}/t.dir/ext]:ext",)``, CRIU's ``--external mnt[...]:ext``.
    ``prebuilt``: ``source`` is a built binary, run as it is (--zdtm-suite).
    ``exclusive``: no other conformance run may overlap this one (zdtm_py.leaks.turn).
    ``requires``: probe names (python -m probes --list) the program needs; the test skips
    with the probe's detail when one is not present.
    ``flavors``: the flavors the program supports ("h": the host's namespaces, "ns": new
    pid, mount, network, IPC and UTS namespaces under an init of their own, "uns": ns
    with all of them in a new user namespace).
    ``known_differences``: ((regex, reason), ...) - lines of the before/after comparison
    (zdtm_py.state) that a known engine gap explains; each must still be seen under the
    bundled engine (a strict expectation, like a strict xfail), and is reported.
    """
    source: Path
    filename: bool = False
    dirname: bool = False
    args: tuple = ()
    cflags: tuple = ()
    libs: tuple = ()
    extra_sources: tuple = ()
    dump_options: tuple = ()
    restore_options: tuple = ()
    known_differences: tuple = ()
    prebuilt: bool = False
    exclusive: bool = False
    requires: tuple = ()
    flavors: tuple = ("h", "ns", "uns")
    start_timeout: float = 20.0
    stop_timeout: float = 20.0

    def __post_init__(self):
        object.__setattr__(self, "source", Path(self.source))
        for name in ("args", "cflags", "libs", "extra_sources", "dump_options",
                     "restore_options", "known_differences", "requires", "flavors"):
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                raise TypeError(f"Program.{name} is a sequence, not {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("dump_options", "restore_options"):
            try:
                engine_options(getattr(self, name), "")
            except (TypeError, ValueError) as e:
                raise type(e)(f"Program.{name}: {e}") from None

    @property
    def interpreted(self):
        """A Python program (its #! line runs it; testcases/lib/zdtmtst.py speaks the
        protocol for it)."""
        return self.source.suffix == ".py"

    @property
    def name(self):
        return self.source.name if self.prebuilt else self.source.stem

    def __str__(self):
        return self.name

    def files(self, workdir):
        """The paths the protocol uses inside ``workdir``."""
        workdir = Path(workdir)
        return {
            "pidfile": workdir / f"{self.name}.pid",
            "outfile": workdir / f"{self.name}.out",
            "filename": workdir / f"{self.name}.test",
            "dirname": workdir / f"{self.name}.dir",
            "launcher_log": workdir / f"{self.name}.launcher.log",
        }

    def engine_options(self, verb, workdir):
        """The keywords of the engine's ``verb`` ("dump" or "restore") for a run in
        ``workdir`` (engine_options)."""
        return engine_options(getattr(self, f"{verb}_options"), workdir)

    def argv(self, binary):
        """The command line; names are relative to the cwd, the test's directory."""
        files = self.files(".")
        argv = [str(binary), f"--pidfile={files['pidfile'].name}",
                f"--outfile={files['outfile'].name}"]
        if self.filename:
            argv.append(f"--filename={files['filename'].name}")
        if self.dirname:
            argv.append(f"--dirname={files['dirname'].name}")
        return argv + [str(a) for a in self.args]


def engine_options(items, workdir):
    """{keyword: value} of dump or restore options: a flag name is True, ``key=value``
    the value with every ``{workdir}`` replaced by ``workdir`` resolved; a key given
    several times gets the list of its values, in order (a flag repeated is one flag).
    TypeError / ValueError for an item that is not a string, a bad name, or a name both
    a flag and a key."""
    where = os.path.realpath(workdir) if workdir else str(workdir)
    out = {}
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"an option is a string (a flag or key=value), not {item!r}")
        name, has_value, value = item.partition("=")
        if not _NAME.match(name):
            raise ValueError(f"bad option {item!r}: a flag name or key=value, the name "
                             f"a Python identifier")
        value = value.replace(WORKDIR, where) if has_value else True
        if name not in out:
            out[name] = value
        elif (value is True) != (out[name] is True):
            raise ValueError(f"option {name!r} given both as a flag and as key=value")
        elif value is not True:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [value]
    return out


def as_program(program, **options):
    """A Program from a Program, a path or a name, with ``options`` applied."""
    if isinstance(program, Program):
        return dataclasses.replace(program, **options) if options else program
    return Program(Path(program), **options)
