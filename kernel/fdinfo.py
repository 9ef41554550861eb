"""Parse /proc/<pid>/fdinfo/<fd>.

The format is one ``key: value`` per line, with three irregularities this
parser knows about:

* keys that repeat (``tfd:`` per epoll target, ``inotify``/``fanotify`` per
  mark, ``lock:`` per lock): their values are collected in a list;
* lines carrying several ``name:value`` pairs (``tfd: 5 events: 19 ...``,
  ``inotify wd:1 ino:...``): ``fields()`` splits such a value;
* indented continuation lines (io_uring's ``UserFiles:`` and ``UserBufs:``
  lists, SQE dumps): appended, newline-separated, to the previous value.

``read(fd)`` raises OSError like any file access.
"""

import re

_PAIR = re.compile(r"([A-Za-z_][\w-]*):\s*(\S*)")
# keys whose lines begin "<key> name:value ..." (no colon right after the key)
_WORD_KEYS = ("inotify", "fanotify")


def read(fd, pid="self"):
    """The parsed fdinfo of ``fd`` of process ``pid``."""
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return parse(f.read())


def parse(text):
    """{key: value}; a repeated key maps to the list of its values."""
    info, last = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            _append(info, last, line.strip())
            continue
        first = line.split(None, 1)[0] if line.split() else ""
        if first in _WORD_KEYS:
            key, value = first, line[len(first):].strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key, value = key.strip(), value.strip()
        else:
            key, value = line.strip(), ""
        if key in info:
            if not isinstance(info[key], list):
                info[key] = [info[key]]
            info[key].append(value)
        else:
            info[key] = value
        last = key
    return info


def _append(info, key, line):
    value = info[key]
    if isinstance(value, list):
        value[-1] = f"{value[-1]}\n{line}" if value[-1] else line
    else:
        info[key] = f"{value}\n{line}" if value else line


def values(info, key):
    """The values of ``key`` as a list (empty when absent)."""
    value = info.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def fields(value, key=None):
    """Split ``name:value`` pairs of one value into a dict.

    With ``key``, a leading bare token (``tfd: 5 events: ...`` gives the
    value ``5 events: ...``) is stored under ``key``.
    """
    out = {}
    head = value.split(None, 1)
    if key and head and ":" not in head[0]:
        out[key] = head[0]
    for name, val in _PAIR.findall(value):
        out.setdefault(name, val)
    return out


def entries(info, key):
    """Each value of ``key`` split with ``fields`` (for tfd/inotify/fanotify/lock lines)."""
    return [fields(v, key) for v in values(info, key)]
