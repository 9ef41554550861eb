"""The ZDTM protocol for test programs written in Python: the C protocol library, built as
a shared object by the harness (zdtm_py.launch, which names it in ZDTM_LIB) and called
through ctypes, so a Python program
starts, daemonizes, enters the flavor's namespaces, waits for SIGTERM and reports exactly as
the C ones do.

    import zdtmtst
    zdtmtst.init()          # parses --pidfile/--outfile..., forks; the child goes on
    ...set up...
    zdtmtst.daemon()        # ready: the launcher writes the pidfile
    zdtmtst.waitsig()       # until SIGTERM (the dump and restore happen meanwhile)
    ...check..., zdtmtst.fail("what") per problem, zdtmtst.passed() if none
"""

import ctypes
import os
import sys

try:
    _lib = ctypes.CDLL(os.environ["ZDTM_LIB"])
except KeyError:
    sys.exit("zdtmtst: ZDTM_LIB (the protocol library the harness builds) is not set")
_lib.test_msg.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_lib.zdtm_py_fail.argtypes = [ctypes.c_char_p]


def init(argv=None):
    argv = sys.argv if argv is None else argv
    args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    _lib.test_init(len(argv), args)


def daemon():
    _lib.test_daemon()


def waitsig():
    _lib.test_waitsig()


def msg(text):
    _lib.test_msg(b"%s\n", text.encode())


def fail(what):
    _lib.zdtm_py_fail(what.encode())


def passed():
    _lib.zdtm_py_pass()
