"""Compile test programs on demand, cached by content.

A program is compiled with the system C compiler together with the protocol
library (testcases/lib/*.c). The result lives in
``~/.cache/crbench/zdtm-build/<key>/<name>``, where the key is the sha256 of
the compiler's identity, the flags and every input file (sources, the library
and the headers next to them). Builds run in a temporary directory that is
renamed into place, so parallel workers never see half a binary: the first
rename wins, a later builder drops its copy and uses the winner's.
"""

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import BuildError

LIB_DIR = Path(__file__).resolve().parent.parent / "testcases" / "lib"
CC = "gcc"
CFLAGS = ("-O2", "-g", "-Wall", "-Werror", "-D_GNU_SOURCE", "-pthread")


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "crbench" / "zdtm-build"


@functools.cache
def compiler_identity(cc=CC):
    """The compiler's path and version banner: a new compiler means new binaries."""
    path = shutil.which(cc)
    if path is None:
        raise BuildError(f"C compiler {cc!r} not found (./crbench setup installs gcc)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    machine = subprocess.run([path, "-dumpmachine"], capture_output=True, text=True, check=True)
    return f"{os.path.realpath(path)}\n{version.stdout.splitlines()[0]}\n{machine.stdout.strip()}"


def _inputs(sources, lib_dir):
    """Every file the build reads: the sources, the library, headers next to both and in
    the suite's other folders (a program may include one of theirs: "../fds/fdinfo.h")."""
    files = list(sources) + sorted(lib_dir.glob("*.c"))
    for folder in dict.fromkeys([lib_dir] + [s.parent for s in sources]):
        files += sorted(folder.glob("*.h")) + sorted(folder.parent.glob("*/*.h"))
    return list(dict.fromkeys(files))


def build_key(sources, cflags, libs, lib_dir=LIB_DIR, cc=CC):
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "compiler": compiler_identity(cc), "cflags": [*CFLAGS, *cflags], "libs": list(libs),
        "sources": [str(s) for s in sources],
    }, sort_keys=True).encode())
    for path in _inputs(sources, lib_dir):
        digest.update(str(path).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build(source, *, extra_sources=(), cflags=(), libs=(), lib_dir=LIB_DIR, cc=CC, cache=None):
    """The path of the compiled program for ``source``, building it when not cached."""
    sources = [Path(source).resolve(), *(Path(s).resolve() for s in extra_sources)]
    for path in sources:
        if not path.is_file():
            raise BuildError(f"no such test source: {path}")
    cache = Path(cache) if cache is not None else cache_root()
    final = cache / build_key(sources, cflags, libs, lib_dir, cc)
    binary = final / sources[0].stem
    if binary.is_file():
        return binary

    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        cmd = [cc, *CFLAGS, *cflags, "-fdiagnostics-color=never", f"-I{lib_dir}",
               f"-I{sources[0].parent}", "-o", str(tmp / binary.name),
               *map(str, sources), *map(str, sorted(lib_dir.glob("*.c"))), *libs]
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              check=False)
        (tmp / "build.log").write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise BuildError(f"building {sources[0].name} failed:\n$ {' '.join(cmd)}\n"
                             f"{proc.stdout}{proc.stderr}".rstrip())
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not binary.is_file():    # not a lost race: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return binary
