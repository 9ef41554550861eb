"""What a probe is, the table of all probes, and the verdict vocabulary.

A probe has two halves kept apart on purpose:

* ``exercise()`` really uses the kernel interface and returns an
  *observation*: a ``Call`` (errno and value of one attempt) or any
  JSON-able structure of several;
* ``judge(observation)`` is a pure function from that observation to a
  ``Verdict``.

Every probe carries ``examples`` of observations with the verdict they must
produce; the unit tests check every judge against them, so the decision
logic of every probe is tested without needing the kernel that would
produce those observations.
"""

import errno
import os
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

# Areas, in the order the report shows them.
AREAS = (
    "bpf_iterators", "bpf", "bpf_maps", "mounts", "process_tree", "memory", "ptrace",
    "files", "io_uring", "network", "namespaces", "security",
)


class Call(NamedTuple):
    """The result of one attempt: errno 0 with a value, or the errno seen."""
    errno: int = 0
    value: Any = None

    @property
    def ok(self):
        return self.errno == 0

    def describe(self):
        if self.ok:
            return "0" if self.value is None else f"{self.value}"
        return errname(self.errno)


def errname(code):
    """An errno as its name for details: "ok" for 0, "not tried" for None."""
    if code is None:
        return "not tried"
    if code == 0:
        return "ok"
    return errno.errorcode.get(code) or _EXTRA_ERRNO_NAMES.get(code, str(code))


def attempt(fn, *args, **kwargs):
    """Run ``fn`` and turn its result or OSError into a Call."""
    try:
        return Call(0, fn(*args, **kwargs))
    except OSError as e:
        return Call(e.errno or errno.EIO)


class Verdict(NamedTuple):
    present: Optional[bool]   # None: could not decide
    detail: str
    data: Optional[dict] = None


def present(detail, **data):
    return Verdict(True, detail, data or None)


def absent(detail, **data):
    return Verdict(False, detail, data or None)


def undecided(detail, **data):
    return Verdict(None, detail, data or None)


def errnos(*names):
    """errno numbers from names, e.g. errnos('EINVAL', 'ENOSYS')."""
    return frozenset(0 if n == 0 else getattr(errno, n, None) or _EXTRA_ERRNO[n] for n in names)


_EXTRA_ERRNO = {"ENOTSUPP": 524}  # kernel-internal, leaks from bpf() and others
_EXTRA_ERRNO_NAMES = {v: k for k, v in _EXTRA_ERRNO.items()}


def by_errno(what, present_on=(0,), absent_on=("ENOSYS",)):
    """A judge for one Call: errno in present_on -> present, absent_on -> absent."""
    yes, no = errnos(*present_on), errnos(*absent_on)

    def judge(call):
        seen = f"{what} -> {call.describe()}"
        if call.errno in yes:
            return present(seen)
        if call.errno in no:
            return absent(seen)
        return undecided(f"unexpected: {seen}")
    return judge


@dataclass(frozen=True)
class Probe:
    name: str
    area: str
    exercise: Callable[[], Any]
    judge: Callable[[Any], Verdict]
    examples: tuple                     # ((observation, expected present), ...)
    doc: str = ""
    since: Optional[str] = None         # kernel version it was merged in
    proposed: Optional[str] = None      # for never-merged interfaces: the series
    criu_name: Optional[str] = None     # `criu check --feature` name
    aliases: tuple = ()
    needs: Optional[str] = None         # capability the exercise needs
    extra: dict = field(default_factory=dict)


REGISTRY: dict = {}
ALIASES: dict = {}


def register(p: Probe):
    for key in (p.name, p.criu_name, *p.aliases):
        if key and (key in REGISTRY or key in ALIASES):
            raise ValueError(f"probe name {key!r} registered twice")
    if p.area not in AREAS:
        raise ValueError(f"probe {p.name}: unknown area {p.area!r}")
    REGISTRY[p.name] = p
    for alias in (p.criu_name, *p.aliases):
        if alias and alias != p.name:
            ALIASES[alias] = p.name
            ALIASES[alias.replace("-", "_")] = p.name
    return p


def probe(name, area, *, judge, examples, since=None, proposed=None, criu_name=None,
          aliases=(), needs=None):
    """Decorator: register the decorated function as ``name``'s exercise."""
    def wrap(exercise):
        register(Probe(name=name, area=area, exercise=exercise, judge=judge,
                       examples=tuple(examples), doc=(exercise.__doc__ or "").strip(),
                       since=since, proposed=proposed, criu_name=criu_name,
                       aliases=tuple(aliases), needs=needs))
        return exercise
    return wrap


def never_merged(name, area, *, proposed, why_absent, criu_name=None, exercise=None,
                 judge=None, examples=None):
    """Register a probe for an interface that was proposed but never merged.

    Without an exercise it is absent by construction, and the detail says
    why nothing can be run; with one, it is absent unless a kernel really
    carries the patches.
    """
    if exercise is None:
        def exercise():
            return None

        def judge(_observation):
            return absent(why_absent)
        examples = [(None, False)]
    register(Probe(name=name, area=area, exercise=exercise, judge=judge,
                   examples=tuple(examples), doc=why_absent, proposed=proposed,
                   criu_name=criu_name))


def resolve(name):
    """Canonical probe name for a name or alias; KeyError when unknown."""
    key = name.strip()
    if key in REGISTRY:
        return key
    for candidate in (key, key.replace("-", "_")):
        if candidate in ALIASES:
            return ALIASES[candidate]
    raise KeyError(name)


def is_root():
    return os.geteuid() == 0
