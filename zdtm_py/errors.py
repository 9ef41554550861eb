"""What can go wrong in a conformance run, one exception per kind.

The plugin turns each into a pytest failure whose message is the text of the
exception (no Python traceback): a build error shows the compiler's output, a
failed program its own FAIL line and log tail, an engine failure which step
failed and how. A clean engine failure (the engine said no) and an engine crash
(anything else it raised) are told apart.
"""


class ZdtmError(Exception):
    """Base: the message is the whole report."""


class BuildError(ZdtmError):
    """The test program did not compile."""


class StartFailed(ZdtmError):
    """The program died or hung before it daemonized (no pidfile)."""


class ProgramFailed(ZdtmError):
    """The program did not report PASS (or did not exit when told to)."""


class EngineUnavailable(ZdtmError):
    """The chosen engine cannot be used here (e.g. not implemented yet)."""


class EngineFailed(ZdtmError):
    """The engine reported a clean failure of dump or restore."""


class EngineCrashed(ZdtmError):
    """The engine raised something other than its own error type."""


class StateChanged(ZdtmError):
    """The tree seen from outside (fds, memory map, creds, ...) is not what it was."""
