"""BPF iterator targets, each proven by loading, linking and reading one.

A target exists when the kernel BTF has both the FUNC ``bpf_iter_<t>`` and
the STRUCT ``bpf_iter__<t>``; it is proven by loading a two-instruction
tracing program attached to that FUNC, creating the link and the iterator
fd, and reading the iterator to its end.

A kernel may refuse a registered target: 6.18.44-fc (Firecracker) kernels
answer EPERM from the verifier's attach check for targets whose context
carries map key/value buffers (PTR_TO_BUF: bpf_map_elem, bpf_sk_storage_map,
sockmap) unless the loader is pid 1. Such a target is absent for us.
"""

import errno
import os
import signal

from kernel import bpf, btf

from .common import closing_fds, int_btf_blob, vmlinux_btf
from .registry import Call, absent, attempt, errname, never_merged, present, probe, undecided

MAP_TYPE_ARRAY, MAP_TYPE_SOCKMAP, MAP_TYPE_SK_STORAGE = 2, 15, 24
CGROUP_ITER_SELF_ONLY = 1
LOG_SIZE = 4096
# The verifier's closing line when it stopped before any instruction: the refusal came from
# the attach target, not from the program or a missing capability (those fail before it).
NOTHING_VERIFIED = "processed 0 insns"

NEVER_MERGED_SERIES = ("Kumar Kartikeya Dwivedi, \"Introduce BPF iterators for io_uring "
                       "and epoll\", bpf-next v1 2021-11-16, v2 2021-11-22, v3 2021-12-01")


def _sk_storage_map():
    blob_fd = bpf.btf_load(int_btf_blob())
    try:
        return bpf.map_create(MAP_TYPE_SK_STORAGE, 4, 4, 0, bpf.F_NO_PREALLOC,
                              btf_fd=blob_fd, btf_key_type_id=1, btf_value_type_id=1)
    finally:
        os.close(blob_fd)


# target -> function creating the object its link needs, and how to name it in iter_info
_LINK_TARGETS = {
    "bpf_map_elem": lambda: bpf.map_create(MAP_TYPE_ARRAY, 4, 4, 1),
    "bpf_sk_storage_map": _sk_storage_map,
    "sockmap": lambda: bpf.map_create(MAP_TYPE_SOCKMAP, 4, 4, 1),
}


def _load(func):
    """Load `r0 = 0; exit` for the target FUNC: (Call, tail of the verifier log on failure)."""
    try:
        return Call(0, bpf.prog_load(bpf.PROG_TYPE_TRACING, bpf.RETURN_ZERO,
                                     expected_attach_type=bpf.TRACE_ITER,
                                     attach_btf_id=func, log_size=LOG_SIZE)), ""
    except OSError as e:
        return Call(e.errno or errno.EIO), (e.strerror or "")[-200:]


def exercise_target(target):
    """Observation: which BTF names exist, the errno of each step (0 = ok), and the
    verifier log when the load failed."""
    seen = {"btf": True, "func": None, "ctx": None, "load": None, "link": None,
            "iter": None, "bytes": None, "log": ""}
    try:
        types = vmlinux_btf()
    except OSError:
        seen["btf"] = False
        return seen
    seen["func"] = types.find(f"bpf_iter_{target}", btf.KIND_FUNC)
    seen["ctx"] = types.find(f"bpf_iter__{target}", btf.KIND_STRUCT)
    if not (seen["func"] and seen["ctx"]):
        return seen
    with closing_fds() as fds:
        load, seen["log"] = _load(seen["func"])
        seen["load"] = load.errno
        if not load.ok:
            return seen
        fds.append(load.value)
        info = b""
        if target in _LINK_TARGETS:
            target_fd = _LINK_TARGETS[target]()
            fds.append(target_fd)
            info = bpf.iter_link_info_map(target_fd)
        elif target == "cgroup":
            info = bpf.iter_link_info_cgroup(order=CGROUP_ITER_SELF_ONLY)
        link = attempt(bpf.link_create, load.value, bpf.TRACE_ITER, iter_info=info)
        seen["link"] = link.errno
        if not link.ok:
            return seen
        fds.append(link.value)
        it = attempt(bpf.iter_create, link.value)
        seen["iter"] = it.errno
        if not it.ok:
            return seen
        fds.append(it.value)
        seen["bytes"] = len(bpf.read_all(it.value))
    return seen


def judge_target(seen):
    if not seen["btf"]:
        return undecided("no readable /sys/kernel/btf/vmlinux: targets cannot be named")
    if not seen["func"] or not seen["ctx"]:
        missing = [n for n, k in (("FUNC", "func"), ("STRUCT", "ctx")) if not seen[k]]
        return absent(f"no {' and '.join(missing)} for it in kernel BTF")
    steps = ("load", "link", "iter")
    for step in steps:
        code = seen[step]
        if code:
            name = errname(code)
            if step == "load" and code == errno.EINVAL:
                return absent("program load -> EINVAL: not a registered iterator target")
            if step == "load" and code == errno.EPERM and NOTHING_VERIFIED in seen["log"]:
                return absent(f"program load -> EPERM, verifier: {NOTHING_VERIFIED!r}: this "
                              "kernel refuses programs for this target before looking at "
                              "them (a host restriction, not a privilege or program fault)")
            return undecided(f"{step} -> {name}")
    return present(f"loaded, linked, iterated ({seen['bytes']} bytes)")


def _ok_seen(**over):
    seen = {"btf": True, "func": 7, "ctx": 8, "load": 0, "link": 0, "iter": 0, "bytes": 0,
            "log": ""}
    seen.update(over)
    return seen


EXAMPLES = (
    (_ok_seen(), True),
    (_ok_seen(func=None, load=None, link=None, iter=None, bytes=None), False),
    (_ok_seen(load=errno.EINVAL, link=None, iter=None, bytes=None), False),
    (_ok_seen(load=errno.EPERM, link=None, iter=None, bytes=None), None),
    (_ok_seen(load=errno.EPERM, link=None, iter=None, bytes=None,
              log="bpf: Operation not permitted: processed 0 insns (limit 1000000) "
                  "max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0"), False),
    (_ok_seen(link=errno.EINVAL, iter=None, bytes=None), None),
    (_ok_seen(btf=False), None),
)

# target, merged in
TARGETS = (
    ("task", "5.8"), ("task_file", "5.8"), ("task_vma", "5.12"), ("tcp", "5.9"),
    ("udp", "5.9"), ("unix", "5.15"), ("netlink", "5.8"), ("ipv6_route", "5.8"),
    ("bpf_map", "5.8"), ("bpf_prog", "5.9"), ("bpf_link", "5.19"),
    ("bpf_map_elem", "5.9"), ("bpf_sk_storage_map", "5.9"), ("sockmap", "5.10"),
    ("ksym", "6.0"), ("cgroup", "6.1"), ("kmem_cache", "6.13"), ("dmabuf", "6.16"),
)

for _target, _since in TARGETS:
    probe(f"bpf_iter_{_target}", "bpf_iterators", judge=judge_target, examples=EXAMPLES,
          since=_since, needs="CAP_BPF")(lambda t=_target: exercise_target(t))

# Proposed for CRIU's io_uring and epoll support; probed the same way, so a
# kernel that carries the patches is found.
for _target in ("io_uring_file", "io_uring_buf", "epoll"):
    never_merged(f"bpf_iter_{_target}", "bpf_iterators", proposed=NEVER_MERGED_SERIES,
                 why_absent="", exercise=lambda t=_target: exercise_target(t),
                 judge=judge_target, examples=EXAMPLES)


# The engine's collectors (cr_engine/collect.py): what a dump reads by iterator on this
# kernel, each loaded as the dump loads it and its answer compared with /proc's.
def exercise_vma_collector():
    """The engine's VMA collector (task_vma iterator, VmFlags table learned here) loads and
    answers as smaps does for a stopped child with one VMA per flag."""
    from cr_engine import collect, proc, vmflags
    seen = {"way": None, "reason": None, "vmas": 0, "equal": None}
    collector = collect.VmaCollector("bpf")
    try:
        seen["way"], seen["reason"] = collector.way, collector.reason
        if collector.way != "bpf":
            return seen
        pid = os.fork()
        if pid == 0:
            try:
                vmflags._make_vmas()
                os.kill(os.getpid(), signal.SIGSTOP)
            finally:
                os._exit(0)
        try:
            os.waitpid(pid, os.WUNTRACED)
            got, want = collector.collect([pid])[pid], proc.smaps(pid)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        seen["vmas"], seen["from_smaps"] = len(want), collector.fell_back
        seen["equal"] = [_vma_fields(v) for v in got] == [_vma_fields(v) for v in want]
    finally:
        collector.close()
    return seen


def _vma_fields(v):
    return (v.start, v.end, v.perms, v.offset, v.dev, v.inode, v.name, sorted(v.flags))


def judge_collector(seen):
    if seen["way"] != "bpf":
        return absent(f"the engine reads {seen['way']}: {seen['reason']}")
    if not seen["equal"]:
        return undecided(f"loaded, but its answer differs from /proc's ({seen})")
    what = f"{seen['vmas']} VMAs" if "vmas" in seen else f"{seen['tasks']} tasks"
    if seen.get("from_smaps"):              # a VMA the iterator could not name exactly
        what += " (that process read from smaps: the collector's own fallback)"
    return present(f"loaded; equal to /proc on {what}")


def exercise_task_collector():
    """The engine's task collector (task iterator at BTF offsets) loads and its records of
    this process equal what rt_sigaction and PR_GET_TID_ADDRESS answer."""
    import ctypes
    import threading

    from cr_engine import collect, signals
    from kernel.libc import syscall
    from kernel.process import PR_GET_TID_ADDRESS
    seen = {"way": None, "reason": None, "tasks": 0, "equal": None}
    collector = collect.TaskCollector("bpf")
    try:
        seen["way"], seen["reason"] = collector.way, collector.reason
        if collector.way != "bpf":
            return seen
        me = os.getpid()
        records = collector.collect([me])
        raw, old = {}, ctypes.create_string_buffer(signals.SIGACTION.size)
        for sig in range(1, signals.NSIG + 1):
            syscall("rt_sigaction", sig, None, old, 8)
            raw[sig] = signals.SIGACTION.unpack(old.raw)
        address = ctypes.c_uint64()
        syscall("prctl", PR_GET_TID_ADDRESS, ctypes.byref(address), 0, 0, 0)
        mine = records.get(threading.get_native_id())
        seen["tasks"] = len(records)
        seen["equal"] = bool(records.get(me)) and mine is not None and \
            signals.actions_image(records[me].actions) == signals.actions_image(raw) and \
            mine.tid_address == address.value
    finally:
        collector.close()
    return seen


_COLLECTOR_EXAMPLES = (
    ({"way": "bpf", "reason": None, "vmas": 47, "equal": True}, True),
    ({"way": "smaps", "reason": "no bpf_iter_task_vma in the kernel's BTF", "vmas": 0,
      "equal": None}, False),
    ({"way": "bpf", "reason": None, "vmas": 47, "equal": False}, None),
)
probe("collect_vmas_bpf", "bpf_iterators", judge=judge_collector, since="5.12",
      needs="CAP_BPF", examples=_COLLECTOR_EXAMPLES)(exercise_vma_collector)
probe("collect_tasks_bpf", "bpf_iterators", judge=judge_collector, since="5.8",
      needs="CAP_BPF", examples=(
          ({"way": "bpf", "reason": None, "tasks": 1, "equal": True}, True),
          ({"way": "injected", "reason": "the kernel's BTF lacks struct cred", "tasks": 0,
            "equal": None}, False)))(exercise_task_collector)
