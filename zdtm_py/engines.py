"""Checkpoint/restore engines the suite can run a test program under.

An engine dumps a process tree into an image directory and restores it from
there. The harness only needs two methods, so another engine (CRIU, a remote
one) is one more class here:

    dump(pid, images_dir, leave_running=False, **options) -> stats (dict); options are
                           flags a program needs (Program.dump_options), e.g.
                           tcp_established=True
    restore(images_dir) -> (root_pid, stats); the restored root must be a child
                           of the calling process, so the harness can reap it

Failures raise EngineFailed when the engine reported an error of its own and
EngineCrashed when it raised anything else.
"""

import importlib
import traceback

from .errors import EngineCrashed, EngineFailed, EngineUnavailable


class Engine:
    name = None
    checkpoints = True     # False: the run goes straight from start to stop

    def check(self):
        """Raise EngineUnavailable when this engine cannot run here."""

    def dump(self, pid, images_dir, *, leave_running=False, **options):
        raise NotImplementedError

    def restore(self, images_dir):
        raise NotImplementedError

    def __repr__(self):
        return f"<engine {self.name}>"


class NoEngine(Engine):
    """No checkpoint at all: start, then SIGTERM. Validates the test programs themselves."""
    name = "none"
    checkpoints = False


class BuiltinEngine(Engine):
    """The project's own engine, called in-process (``cr_engine.dump`` / ``cr_engine.restore``)."""
    name = "builtin"
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

    def dump(self, pid, images_dir, *, leave_running=False, **options):
        res = self._call(f"dump of pid {pid}", lambda m: m.dump, pid, str(images_dir),
                         leave_running=leave_running, shell_job=False, **options)
        return dict(getattr(res, "stats", None) or {})

    def restore(self, images_dir):
        res = self._call(f"restore from {images_dir}", lambda m: m.restore, str(images_dir),
                         shell_job=False)
        return res.root_pid, dict(getattr(res, "stats", None) or {})


ENGINES = {cls.name: cls for cls in (BuiltinEngine, NoEngine)}
DEFAULT = BuiltinEngine.name


def names():
    return sorted(ENGINES)


def get(name):
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"unknown engine {name!r} (choose from {', '.join(names())})") from None
