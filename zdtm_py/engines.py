"""Checkpoint/restore engines the suite can run a test program under.

An engine dumps a process tree into an image directory and restores it from
there. The harness only needs two methods, so another engine (a remote one)
is one more class here, or in a module of its own (criu_engine):

    dump(pid, images_dir, leave_running=False, **options) -> stats (dict); options are
                           what a program needs (Program.dump_options), named like
                           CRIU's flags: tcp_established=True, external="mnt[P]:K"
                           (a list when given several times)
    restore(images_dir, **options) -> (root_pid, stats); options: Program.restore_options
                           (none: the call has no keywords but those below); the
                           restored root must be a child of the calling process, so
                           the harness can reap it

Failures raise EngineFailed when the engine reported an error of its own and
EngineCrashed when it raised anything else.
"""

import argparse
import importlib
import traceback

from .errors import EngineCrashed, EngineFailed, EngineUnavailable


class Engine:
    name = None
    checkpoints = True     # False: the run goes straight from start to stop
    incremental = False    # pre_dump(), and dump(parent=..., track_mem=...)

    def check(self):
        """Raise EngineUnavailable when this engine cannot run here."""

    def dump(self, pid, images_dir, *, leave_running=False, fault=None, **options):
        raise NotImplementedError

    def restore(self, images_dir, *, fault=None, **options):
        raise NotImplementedError

    def fault_points(self):
        """The points ``fault=`` can name ("dump:<stage>", "restore:<stage>"), in order;
        empty when the engine cannot fail on purpose."""
        return ()

    def pre_dump(self, pid, images_dir, *, parent=None):
        """Store the memory of a running tree and track what it writes next (dump(...,
        parent=images_dir) stores only that); returns stats.  EngineUnavailable when the
        engine cannot."""
        raise EngineUnavailable(f"engine {self.name} has no pre-dump")

    def __repr__(self):
        return f"<engine {self.name}>"


class NoEngine(Engine):
    """No checkpoint at all: start, then SIGTERM. Validates the test programs themselves."""
    name = "none"
    checkpoints = False


class BuiltinEngine(Engine):
    """The project's own engine, called in-process (``cr_engine.dump`` / ``cr_engine.restore``)."""
    name = "builtin"
    incremental = True
    module_name = "cr_engine"

    def _module(self):
        module = importlib.import_module(self.module_name)   # an import error is a real error
        missing = [f for f in ("dump", "restore", "CRError") if not hasattr(module, f)]
        if missing:
            raise EngineUnavailable(f"engine {self.name}: {self.module_name} has no "
                                    f"{', '.join(missing)} yet")
        return module

    def check(self):
        self._module()

    def _call(self, step, fn, *args, **kwargs):
        module = self._module()
        try:
            return fn(module)(*args, **kwargs)
        except module.CRError as e:
            raise EngineFailed(f"{step} failed: {type(e).__name__}: {e}") from e
        except Exception as e:
            trace = "".join(traceback.format_exception(e)).rstrip()
            raise EngineCrashed(f"{step}: engine crashed: {type(e).__name__}: {e}\n{trace}") from e

    def dump(self, pid, images_dir, *, leave_running=False, fault=None, **options):
        options = _listed(options, LIST_OPTIONS)
        res = self._call(f"dump of pid {pid}", lambda m: m.dump, pid, str(images_dir),
                         leave_running=leave_running, shell_job=False, fault=fault, **options)
        return dict(getattr(res, "stats", None) or {})

    def restore(self, images_dir, *, fault=None, **options):
        options = _listed(options, LIST_OPTIONS)
        res = self._call(f"restore from {images_dir}", self._restore_function, str(images_dir),
                         shell_job=False, fault=fault, **options)
        return res.root_pid, dict(getattr(res, "stats", None) or {})

    def _restore_function(self, module):
        """``module.restore``, its ``external`` given as CRIU's restore spells it
        ("mnt[KEY]:PATH" strings) turned into the {KEY: PATH} it takes, by the engine's
        own parser (a bad one is the engine's error)."""
        def restore(images_dir, *, external=None, **options):
            if external is not None:
                parse = importlib.import_module(f"{self.module_name}.mnt_model")
                options["external"] = parse.restore_externals(external)
            return module.restore(images_dir, **options)
        return restore

    def fault_points(self):
        return importlib.import_module(f"{self.module_name}.faults").POINTS

    def pre_dump(self, pid, images_dir, *, parent=None):
        res = self._call(f"pre-dump of pid {pid}", lambda m: m.pre_dump, pid, str(images_dir),
                         parent=str(parent) if parent else None)
        return dict(getattr(res, "stats", None) or {})


# keywords whose value is a list even when given once (Program options "key=value")
LIST_OPTIONS = ("external",)


def _listed(options, names):
    """``options`` with the values of ``names`` as lists."""
    return {k: [v] if k in names and isinstance(v, str) else v for k, v in options.items()}


def criu_engine(path=None):
    """CRIU: the reference from tools/reference_criu.py's root, or the binary at ``path``."""
    from .criu_engine import CriuEngine     # here: that module builds on Engine above
    return CriuEngine(path)


ENGINES = {BuiltinEngine.name: BuiltinEngine, NoEngine.name: NoEngine, "criu": criu_engine}
TAKES_ARGUMENT = {"criu": "PATH"}      # engines named NAME=ARGUMENT, and what ARGUMENT is
DEFAULT = BuiltinEngine.name


def names():
    return sorted(ENGINES)


def usage():
    """The engine names for a usage line: {builtin,criu[=PATH],none}."""
    return "{" + ",".join(n + (f"[={TAKES_ARGUMENT[n]}]" if n in TAKES_ARGUMENT else "")
                          for n in names()) + "}"


def parse(spec):
    """(name, argument) of ``NAME`` or ``NAME=ARGUMENT`` (argument None without ``=``);
    ValueError for an unknown name or an argument the engine does not take."""
    name, has_argument, argument = spec.partition("=")
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r} (choose from {usage()})")
    if has_argument and name not in TAKES_ARGUMENT:
        raise ValueError(f"engine {name!r} takes no argument ({spec!r})")
    if has_argument and not argument:
        raise ValueError(f"engine {name!r}: {TAKES_ARGUMENT[name]} missing after '=' ({spec!r})")
    return name, (argument if has_argument else None)


def option(spec):
    """``spec`` checked, for a command-line option's ``type=`` (argparse shows the error)."""
    try:
        parse(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def get(spec):
    """A new engine from ``NAME`` or ``NAME=ARGUMENT`` (``criu=/usr/sbin/criu``)."""
    name, argument = parse(spec)
    return ENGINES[name]() if argument is None else ENGINES[name](argument)
