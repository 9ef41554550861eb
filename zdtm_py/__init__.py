"""The conformance harness and its pytest plugin.

Modules, one job each:
  program   Program: what a test module declares about a C test program
  build     compiling programs with the protocol library, cached by content
  launch    starting a program by the ZDTM protocol, stopping it, its verdict
  reaper    the child subreaper, process trees, reaping and clean-up
  engines   the engine interface, its registry (--engine NAME[=ARG]) and engines builtin, none
  criu_engine  CRIU as an engine: the reference from tools/reference_criu.py, or criu=PATH
  runner    one run: start -> dump -> reap -> restore -> stop -> verdict
  errors    one exception per kind of failure
  plugin    pytest options, the ``zdtm`` fixture, the ``requires`` marker
  report    pytest plugin: a line per area, ``--zdtm-report`` JSON summary and Markdown table
  known_gaps  engine_lacks(): a program the bundled engine does not carry yet
"""

from .known_gaps import engine_lacks
from .program import Program

__all__ = ["Program", "engine_lacks"]
