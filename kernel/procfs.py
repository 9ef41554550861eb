"""Small readers of /proc text files the lower layers need."""

import re


def status(pid="self", keys=None):
    """{key: value} of /proc/<pid>/status (only ``keys`` when given)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if keys is None or key in keys:
                found[key] = value.strip()
    return found


def mountinfo(path="/proc/self/mountinfo"):
    """The mount table as a list of dicts (fields of proc(5), octal escapes undone), in
    the order the kernel lists it (a mount after the one it is mounted on)."""
    out = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append({
                "id": int(fields[0]), "parent": int(fields[1]), "dev": fields[2],
                "root": _unescape(fields[3]), "mount_point": _unescape(fields[4]),
                "options": fields[5], "optional": fields[6:sep],
                "fstype": fields[sep + 1], "source": _unescape(fields[sep + 2]),
                "super_options": fields[sep + 3] if len(fields) > sep + 3 else "",
            })
    return out


def _unescape(text):
    """Undo mountinfo's octal escapes (\\040 for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)
