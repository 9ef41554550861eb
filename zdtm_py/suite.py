"""``--zdtm-suite DIR``: a directory of prebuilt ZDTM-protocol binaries (CRIU's
test/zdtm/static once built, or any other) run as pytest items, through the same runner,
engines and modes as testcases/.

What each binary needs comes from, first to last:
  1. ``DIR/zdtm-suite.toml`` (tomllib, nothing evaluated)::

        [defaults]
        args = []                         # for every test, after --pidfile/--outfile
        [tests.file_read00]
        filename = true                   # --filename=file_read00.test
        dirname = false                   # --dirname=NAME.test (a directory it makes)
        args = ["--opt=1"]
        dump_options = ["tcp_established"]  # flags or "key=value" ({workdir}: the test's
        restore_options = []              # directory), as Program.dump_options
        requires = ["tcp_repair"]         # probes (python -m probes --list; CRIU's names too)
        expect_failure = "why"            # a strict xfail under every checkpointing engine
        skip = "why"

  2. ``DIR/NAME.desc``, CRIU's per-test description, read with ast.literal_eval:
     'flavor' (a test without 'h' is skipped: only the host flavor runs here), 'opts'
     (--tcp-established becomes a dump option), 'feature' (probes), 'flags' ('crfail':
     C/R is expected to fail; 'noauto': skipped, as CRIU's runner does);
  3. the binary itself: a ZDTM program that declares TEST_OPTION(filename, ...) or
     TEST_OPTION(dirname, ...) carries that option's name as a string, so it gets
     --filename / --dirname (CRIU's Makefiles say the same with their TST_FILE/TST_DIR
     lists, which a directory of binaries no longer has).
"""

import ast
import dataclasses
import os
import tomllib
from pathlib import Path

import pytest

from .program import Program

DECLARATIONS = "zdtm-suite.toml"
ELF = b"\x7fELF"
CRIU_OPTS = {"--tcp-established": "tcp_established"}


def pytest_addoption(parser):
    parser.getgroup("zdtm").addoption(
        "--zdtm-suite", metavar="DIR", default=None,
        help="run the prebuilt ZDTM-protocol binaries in DIR as tests (declarations in "
             f"DIR/{DECLARATIONS} or CRIU's NAME.desc files)")


def pytest_configure(config):
    directory = config.getoption("zdtm_suite")
    if directory:
        if not os.path.isdir(directory):
            raise pytest.UsageError(f"--zdtm-suite: {directory} is not a directory")
        # the suite replaces the default test paths (testpaths, or the current directory);
        # paths given on the command line run beside it
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args = [str(Path(directory).resolve())]
        else:
            config.args.append(str(Path(directory).resolve()))


def pytest_collect_file(file_path, parent):
    directory = parent.config.getoption("zdtm_suite")
    if not directory or file_path.parent != Path(directory).resolve():
        return None
    if not os.access(file_path, os.X_OK) or not _is_elf(file_path):
        return None
    return SuiteBinary.from_parent(parent, path=file_path)


def _is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == ELF


class SuiteBinary(pytest.File):
    """One prebuilt binary: one test (the host flavor), a pytest.Function so that it gets
    the ``zdtm`` fixture like any test of testcases/."""

    def collect(self):
        decl = declaration(self.path)
        item = pytest.Function.from_parent(self, name=self.path.name, callobj=_run_binary)
        item.zdtm_declaration = decl
        item.user_properties.append(("zdtm_area", self.path.parent.name))
        if decl.skip:
            item.add_marker(pytest.mark.skip(reason=decl.skip))
        if decl.expect_failure:
            item.add_marker(pytest.mark.xfail(
                "config.getoption('engine') != 'none'", strict=True,
                reason=f"declared: {decl.expect_failure}"))
        yield item


def _run_binary(zdtm, request):
    zdtm.run(request.node.zdtm_declaration.program)


@dataclasses.dataclass
class Declaration:
    program: Program
    expect_failure: str = ""
    skip: str = ""


def declaration(binary):
    """What the suite says of ``binary`` (see the module's docstring)."""
    binary = Path(binary)
    name = binary.name
    toml = _toml(binary.parent)
    entry = {**toml.get("defaults", {})}
    entry.update(toml.get("tests", {}).get(name, {}))
    desc = _desc(binary)
    requires = list(entry.get("requires", ()))
    dump_options = list(entry.get("dump_options", ()))
    expect, skip = entry.get("expect_failure", ""), entry.get("skip", "")
    if desc:
        flavors = str(desc.get("flavor", "h ns uns")).split()
        flags = str(desc.get("flags", "")).split()
        if "h" not in flavors:
            skip = skip or f"{name}.desc: flavors {' '.join(flavors)} (only h runs here)"
        if "noauto" in flags:
            skip = skip or f"{name}.desc: noauto (CRIU's runner skips it too)"
        if "crfail" in flags:
            expect = expect or f"{name}.desc: crfail (C/R is expected to fail)"
        requires += str(desc.get("feature", "")).split()
        dump_options += [CRIU_OPTS[o] for o in str(desc.get("opts", "")).split()
                         if o in CRIU_OPTS]
    needs = _option_names(binary)
    program = Program(binary, prebuilt=True, requires=tuple(dict.fromkeys(requires)),
                      filename=entry.get("filename", "filename" in needs),
                      dirname=entry.get("dirname", "dirname" in needs),
                      args=tuple(entry.get("args", ())),
                      dump_options=tuple(dict.fromkeys(dump_options)),
                      restore_options=tuple(entry.get("restore_options", ())))
    return Declaration(program, expect, skip)


def _toml(directory):
    path = Path(directory) / DECLARATIONS
    if not path.exists():
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise pytest.UsageError(f"{path}: {e}") from None


def _desc(binary):
    path = binary.with_name(binary.name + ".desc")
    if not path.exists():
        return {}
    try:
        value = ast.literal_eval(path.read_text())
    except (ValueError, SyntaxError) as e:
        raise pytest.UsageError(f"{path}: not a literal dict ({e})") from None
    if not isinstance(value, dict):
        raise pytest.UsageError(f"{path}: not a dict")
    return value


def _option_names(binary):
    """Which of --filename / --dirname the program declares (their names are strings in
    it)."""
    data = Path(binary).read_bytes()
    return {name for name in ("filename", "dirname") if b"\0" + name.encode() + b"\0" in data}
