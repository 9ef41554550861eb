"""Decoding an image directory for a person (``python -m cr_engine show DIR``), like crit."""

import signal

from . import mnt_model, namespaces, seccomp, signals, sysv_ipc
from .images import ImageReader
from .memory import PAGE


def show(directory):
    """The images of ``directory`` decoded into one dict (what --json prints)."""
    reader = ImageReader(directory)
    reader.verify()
    if reader.inventory.get("kind") == "pre-dump":
        return _pre_dump(reader)
    tree = reader.json("pstree.json")
    files = reader.json("files.json")["files"]
    out = {"inventory": reader.inventory, "pstree": tree, "files": files, "processes": []}
    for entry in tree["processes"]:
        pid = entry["pid"]
        if entry["zombie"]:
            out["processes"].append({"pid": pid, "zombie": True,
                                     "exit_status": entry["exit_status"]})
            continue
        core, mm = reader.json(f"core-{pid}.json"), reader.json(f"mm-{pid}.json")
        out["processes"].append({"pid": pid, "core": core, "mm": mm})
    if reader.has(sysv_ipc.IMAGE):
        out["ipc"] = reader.json(sysv_ipc.IMAGE)
    if reader.has(mnt_model.MNT_IMAGE):
        out["mounts"] = reader.json(mnt_model.MNT_IMAGE)
    if reader.has("stats-dump.json"):
        out["stats"] = reader.json("stats-dump.json")
    return out


def _pre_dump(reader):
    """A pre-dump holds memory only: per process, its stored and inherited page runs."""
    inv = reader.inventory
    return {"inventory": inv, "processes": [
        {"pid": pid, "mm": reader.json(f"mm-{pid}.json")} for pid in inv["pids"]
        if reader.has(f"mm-{pid}.json")]}


def _render_pre_dump(decoded):
    inv = decoded["inventory"]
    lines = [f"pre-dump: format {inv['format']} v{inv['version']}, root pid {inv['root_pid']}"
             + (f", parent {inv['parent']}" if inv.get("parent") else "")]
    for p in decoded["processes"]:
        stored = sum(count for _, count in p["mm"]["pagemap"])
        inherited = sum(e - s for s, e, _, _ in p["mm"]["inherited"]) // PAGE
        lines.append(f"  pid {p['pid']}: {stored} pages stored, {inherited} in the parent chain")
    return lines


def render(decoded):
    """Lines of text for a person."""
    if decoded["inventory"].get("kind") == "pre-dump":
        return _render_pre_dump(decoded)
    inv, tree = decoded["inventory"], decoded["pstree"]
    lines = [f"images: format {inv['format']} v{inv['version']}, kernel {inv.get('kernel')}, "
             f"root pid {tree['root']}"]
    lines.append("")
    lines.append("process tree:")
    procs = {p["pid"]: p for p in tree["processes"]}

    def walk(pid, depth):
        p = procs[pid]
        state = "zombie" if p["zombie"] else ("stopped" if p.get("stopped") else "alive")
        lines.append(f"  {'  ' * depth}{pid}  pgid {p['pgid']} sid {p['sid']}  "
                     f"threads {len(p['threads'])}  {state}")
        for child in p["children"]:
            walk(child, depth + 1)
    walk(tree["root"], 0)
    for proc_image in decoded["processes"]:
        pid = proc_image["pid"]
        lines.append("")
        if proc_image.get("zombie"):
            lines.append(f"pid {pid}: zombie, exit status {proc_image['exit_status']:#x}")
            continue
        core, mm = proc_image["core"], proc_image["mm"]
        lines.append(f"pid {pid} ({core['comm']}): exe {mm['exe']}, cwd {core['cwd']}")
        lines.append("  threads:")
        for t in core["threads"]:
            regs = t["regs"]
            lines.append(f"    {t['tid']:<8} {t['comm']:<16} rip {regs['rip']:#x} "
                         f"rsp {regs['rsp']:#x} blocked {t['sigmask']:#x} "
                         f"pending {len(t['pending'])}")
        lines += seccomp.describe(core)
        lines += namespaces.describe(core.get("namespaces", {}))
        stored, guarded = {}, {}
        for runs, into in ((mm["pagemap"], stored), (mm.get("guards", ()), guarded)):
            for start, count in runs:
                for v in mm["vmas"]:
                    if v["start"] <= start < v["end"]:
                        into[v["start"]] = into.get(v["start"], 0) + count
                        break
        lines.append("  memory:")
        for v in mm["vmas"]:
            what = v.get("path") or v.get("name") or (f"[anon:{v['anon_name']}]"
                                                     if "anon_name" in v else v["kind"])
            if v["kind"] == "shmem":
                what = f"shared anonymous (object {v['shmem']})"
            elif v["kind"] == "sysv":
                what = f"SysV shared memory {v['shmid']}"
            if v["start"] in guarded:
                what += f" ({guarded[v['start']]} guard pages)"
            lines.append(f"    {v['start']:012x}-{v['end']:012x} {v['perms']} "
                         f"{(v['end'] - v['start']) // PAGE:>8} pages {stored.get(v['start'], 0):>8}"
                         f" stored  {what}")
        lines.append("  fds:")
        for e in core["fds"]:
            d = decoded["files"][e["file"]]
            desc = _file_summary(d)
            extra = f" pos {d['pos']}" if "pos" in d else ""
            lines.append(f"    {e['fd']:>4} {d['type']:<5} {desc}  flags {d['flags']:#o}"
                         f"{extra}{' cloexec' if e['cloexec'] else ''}  ({e['file']})")
        if core["sigactions"]:
            lines.append("  signal handlers:")
            for sig, act in sorted(core["sigactions"].items(), key=lambda kv: int(kv[0])):
                lines.append(f"    {_signame(int(sig)):<10} handler {act['handler']:#x} "
                             f"flags {act['flags']:#x} mask {act['mask']:#x}")
        pending = core["pending"] + [p for t in core["threads"] for p in t["pending"]]
        if pending:
            lines.append("  pending signals: " + ", ".join(
                _signame(signals.signo(bytes.fromhex(p))) for p in pending))
        for name, (isec, iusec, vsec, vusec) in core["itimers"].items():
            lines.append(f"  itimer {name}: remaining {vsec + vusec / 1e6:.3f}s, "
                         f"interval {isec + iusec / 1e6:.3f}s")
        for t in core["posix_timers"]:
            isec, insec, vsec, vnsec = t["spec"]
            lines.append(f"  posix timer {t['id']}: clock {t['clock']} signal "
                         f"{_signame(t['signal'])} remaining {vsec + vnsec / 1e9:.3f}s "
                         f"interval {isec + insec / 1e9:.3f}s")
    lines += sysv_ipc.describe(decoded.get("ipc"))
    lines += mnt_model.describe(decoded.get("mounts"))
    if "stats" in decoded:
        lines.append("")
        lines.append("dump statistics:")
        for key, value in decoded["stats"]["times"].items():
            lines.append(f"  {key:<16} {value * 1000:9.2f} ms")
        for key, value in decoded["stats"]["counts"].items():
            lines.append(f"  {key:<16} {value:>12}")
    return lines


def _file_summary(d):
    """What identifies a file description, by kind, for a person."""
    kind = d["type"]
    if kind == "eventfd":
        return f"count {d['count']}{' semaphore' if d['semaphore'] else ''}"
    if kind == "signalfd":
        return f"mask {d['sigmask']:#x}"
    if kind == "timerfd":
        when = (f"expiry {d['expiry'] / 1e9:.3f}s (absolute)" if "expiry" in d
                else f"left {d['remaining'] / 1e9:.3f}s")
        return f"clock {d['clock']} {when} interval {d['interval'] / 1e9:.3f}s ticks {d['ticks']}"
    if kind == "memfd":
        return f"memfd:{d['name']} size {d['size']} seals {d['seals']:#x}"
    if kind == "unlinked":
        return f"{d['path']} (unlinked) size {d['size']}"
    if kind == "unix":
        from .unix_sockets import summary
        return summary(d)
    if kind == "inet":
        from .inet_sockets import summary
        return summary(d)
    if kind == "bpf-map":
        m = d.get("map")
        if m is None:
            return f"map {d['map_id']} (described above)"
        extra = "".join(f" {word}" for word, on in (
            ("frozen", m["frozen"]), ("not held", d.get("held") is False),
            (f"btf {m.get('btf_size')} bytes", m.get("btf_size")),
            (f"pinned {' '.join(m.get('pins', ()))}", m.get("pins"))) if on)
        return (f"map {d['map_id']} {m['map_type']} {m['name']!r} key {m['key_size']} value "
                f"{m['value_size']} max {m['max_entries']} flags {m['map_flags']:#x} "
                f"entries {m.get('entries', 0)}{extra}")
    if kind == "io_uring":
        from .io_uring import summary
        return summary(d)
    if kind == "epoll":
        return "items " + (", ".join(f"{i['tfd']}->{i['target']} {i['events']:#x} "
                                     f"data {i['data']:#x}{' ready' if i.get('ready') else ''}"
                                     for i in d["items"]) or "none")
    return d.get("path") or f"{kind}:[{d.get('inode')}]"


def _signame(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIGRT{sig - 34}" if sig > 34 else str(sig)
