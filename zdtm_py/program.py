"""What a test module declares about one test program."""

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Program:
    """A ZDTM-protocol C program and how to build and start it.

    ``filename`` / ``dirname``: pass ``--filename=<name>.test`` /
    ``--dirname=<name>.dir`` (paths inside the test's own directory; a dirname
    is not created, the program makes it). ``args``: more options for the
    program. ``cflags`` / ``libs`` / ``extra_sources``: for the compiler.
    ``dump_options``: what the dump must be asked for, by the engine keyword CRIU names as
    a flag (``("tcp_established",)`` is ``--tcp-established``).
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
                     "known_differences", "requires", "flavors"):
            value = getattr(self, name)
            if isinstance(value, (str, Path)):
                raise TypeError(f"Program.{name} is a sequence, not {value!r}")
            object.__setattr__(self, name, tuple(value))

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


def as_program(program, **options):
    """A Program from a Program, a path or a name, with ``options`` applied."""
    if isinstance(program, Program):
        return dataclasses.replace(program, **options) if options else program
    return Program(Path(program), **options)
