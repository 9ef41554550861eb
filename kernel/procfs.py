"""Small readers of /proc text files the lower layers need."""


def status(pid="self", keys=None):
    """{key: value} of /proc/<pid>/status (only ``keys`` when given)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if keys is None or key in keys:
                found[key] = value.strip()
    return found
