"""io_uring: what a checkpoint/restore engine can see of a ring and rebuild.

CRIU does not support io_uring at all; these probes map what the kernel
offers an engine that would: real rings are set up, their fdinfo read,
their memory mapped from the fd, files, buffers, ring fds, personalities
and restrictions registered, and every io_uring_setup() flag tried.

A ring attaches io_uring task state (and, with SQPOLL, a kernel thread) to
the task that creates it, so all of it happens once, in one child process
(``_observe``, memoized); each probe's exercise picks its own observation
out of that.  ``kernel.io_uring_disabled`` (6.6) can forbid rings: 0 allows
them, 1 limits them to CAP_SYS_ADMIN and the ``kernel.io_uring_group``
group, 2 disables them for everyone.
"""

import ctypes
import errno
import functools
import mmap
import os

from kernel import fdinfo
from kernel import io_uring as uring

from .common import closing_fds, vmlinux_btf
from .registry import absent, errname, present, probe, undecided
from .sandbox import ChildFailed, in_child

ENTRIES = 4
SYSCTL = "/proc/sys/kernel/io_uring_disabled"
GROUP_SYSCTL = "/proc/sys/kernel/io_uring_group"



def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _step(fn, *args):
    """Run one step of the child's experiment: its result, or {"errno": e}."""
    try:
        return fn(*args)
    except OSError as e:
        return {"errno": e.errno or errno.EIO}


# --- the experiment, run in a child ------------------------------------------

def _setup(flags=0, **fields):
    params = uring.Params(flags=flags)
    for key, value in fields.items():
        setattr(params, key, value)
    return uring.setup(ENTRIES, params), params


def _flag_attempt(name, base_fd):
    """io_uring_setup() with flag ``name`` (plus what it requires): 0 or the errno."""
    flags = uring.SETUP[name]
    extra = {}
    if name == "SQ_AFF":
        flags |= uring.SETUP["SQPOLL"]
    elif name == "CQSIZE":
        extra["cq_entries"] = ENTRIES * 4
    elif name == "ATTACH_WQ":
        extra["wq_fd"] = base_fd
    elif name == "TASKRUN_FLAG":
        flags |= uring.SETUP["COOP_TASKRUN"]
    elif name == "DEFER_TASKRUN":
        flags |= uring.SETUP["SINGLE_ISSUER"]
    elif name == "HYBRID_IOPOLL":
        flags |= uring.SETUP["IOPOLL"]
    if name in ("NO_MMAP", "REGISTERED_FD_ONLY"):
        flags |= uring.SETUP["NO_MMAP"]
        # the rings and SQEs live in memory the application provides (one page each)
        rings, sqes = mmap.mmap(-1, mmap.PAGESIZE), mmap.mmap(-1, mmap.PAGESIZE)
        extra["cq_off"] = uring.CqringOffsets(user_addr=_address(rings))
        extra["sq_off"] = uring.SqringOffsets(user_addr=_address(sqes))
    try:
        ret, _ = _setup(flags, **extra)
    except OSError as e:
        return e.errno
    if name == "REGISTERED_FD_ONLY":
        # the result is an index in the task's registered-ring table, not an fd
        update = uring.RsrcUpdate(offset=ret)
        try:
            uring.register(ret, uring.UNREGISTER_RING_FDS | uring.REGISTER_USE_REGISTERED_RING,
                           update, 1)
        except OSError:
            pass  # the child's exit releases it anyway
    else:
        os.close(ret)
    return 0


def _address(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def _map_rings(fd, params):
    """mmap SQ ring, CQ ring and SQEs from the ring fd; read the sizes back."""
    sq_size = params.sq_off.array + params.sq_entries * 4
    cq_size = params.cq_off.cqes + params.cq_entries * uring.CQE_SIZE
    single = bool(params.features & uring.FEAT["SINGLE_MMAP"])
    if single:
        sq_size = cq_size = max(sq_size, cq_size)
    seen = {"single_mmap": single}
    maps = []
    try:
        sq = mmap.mmap(fd, sq_size, offset=uring.OFF_SQ_RING)
        maps.append(sq)
        cq = sq if single else mmap.mmap(fd, cq_size, offset=uring.OFF_CQ_RING)
        if not single:
            maps.append(cq)
        sqes = mmap.mmap(fd, params.sq_entries * uring.SQE_SIZE, offset=uring.OFF_SQES)
        maps.append(sqes)
        seen["sq_ring_entries"] = int.from_bytes(
            sq[params.sq_off.ring_entries:params.sq_off.ring_entries + 4], "little")
        seen["cq_ring_entries"] = int.from_bytes(
            cq[params.cq_off.ring_entries:params.cq_off.ring_entries + 4], "little")
        seen["expected"] = [params.sq_entries, params.cq_entries]
        return seen
    finally:
        for m in maps:
            m.close()


def _register_files_and_buffers(fd):
    """Sparse file table (FILES2 + RSRC_REGISTER_SPARSE), one file, one buffer."""
    seen = {}
    table = uring.RsrcRegister(nr=ENTRIES, flags=uring.RSRC_REGISTER_SPARSE)
    try:
        uring.register(fd, uring.REGISTER_FILES2, table, ctypes.sizeof(table))
        seen["sparse"] = 0
    except OSError as e:
        seen["sparse"] = e.errno
    with closing_fds() as opened:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        opened += [read_end, write_end]
        if seen["sparse"] == 0:
            fd_array = (ctypes.c_int * 1)(read_end)
            update = uring.FilesUpdate(offset=0, fds=ctypes.addressof(fd_array))
            seen["update"] = _errno_of(uring.register, fd, uring.REGISTER_FILES_UPDATE,
                                       update, 1)
        else:
            fd_array = (ctypes.c_int * 1)(read_end)
            seen["update"] = _errno_of(uring.register, fd, uring.REGISTER_FILES, fd_array, 1)
    # the buffer stays mapped until the child exits (a ctypes view pins the mmap object)
    page = mmap.mmap(-1, mmap.PAGESIZE)
    iov = uring.Iovec(_address(page), mmap.PAGESIZE)
    seen["buffers"] = _errno_of(uring.register, fd, uring.REGISTER_BUFFERS, iov, 1)
    seen["fdinfo"] = fdinfo.read(fd)
    return seen


def _errno_of(fn, *args):
    try:
        fn(*args)
        return 0
    except OSError as e:
        return e.errno


def _register_ring_fd(fd):
    update = uring.RsrcUpdate(offset=0xffffffff, data=fd)  # -1: any free slot
    count = uring.register(fd, uring.REGISTER_RING_FDS, update, 1)
    slot = update.offset
    uring.register(fd, uring.UNREGISTER_RING_FDS, uring.RsrcUpdate(offset=slot), 1)
    return {"registered": count, "slot": slot}


def _personality(fd):
    ident = uring.register(fd, uring.REGISTER_PERSONALITY, None, 0)
    uring.register(fd, uring.UNREGISTER_PERSONALITY, None, ident)
    return {"id": ident}


def _restrictions():
    """A ring born disabled, restricted to NOP SQEs and no register ops, then enabled."""
    fd, _ = _setup(uring.SETUP["R_DISABLED"])
    try:
        allow_nop = uring.Restriction(opcode=uring.RESTRICTION_SQE_OP, op=0)
        seen = {"restrict": _errno_of(uring.register, fd, uring.REGISTER_RESTRICTIONS,
                                      allow_nop, 1)}
        seen["enable"] = _errno_of(uring.register, fd, uring.REGISTER_ENABLE_RINGS, None, 0)
        # a register op that was not allowed must now be refused
        seen["probe_after"] = _errno_of(uring.probe, fd)
        return seen
    finally:
        os.close(fd)


def _read_ctx(fd):
    """The engine's view of a ring: struct io_ring_ctx read through the BPF kernel reader
    (kernel/kread.py) at the BTF's offsets; what it found next to what the ring is."""
    from kernel import btf, kread
    try:
        with kread.KernelReader() as reader:
            _, ctx = reader.files(os.getpid())[fd]
            types = btf.BTF.vmlinux()
            size = types.size(types.find("io_ring_ctx", btf.KIND_STRUCT))
            data = reader.read_one(ctx, size)
            if data is None:
                return {"error": "the context could not be read"}
            return {name: types.field("io_ring_ctx", name).value(data)
                    for name in ("flags", "sq_entries", "cq_entries")}
    except kread.Unavailable as e:
        return {"unavailable": e.strerror}
    except KeyError as e:
        return {"error": f"BTF lacks {e}"}
    except OSError as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _experiment():
    obs = {"disabled": _read_int(SYSCTL), "group": _read_int(GROUP_SYSCTL)}
    try:
        fd, params = _setup()
    except OSError as e:
        obs["setup"] = e.errno
        return obs
    obs["setup"] = 0
    try:
        obs["features"] = params.features
        obs["entries"] = [params.sq_entries, params.cq_entries]
        last_op, ops = uring.probe(fd)
        obs["opcodes"] = {"last_op": last_op, "ops": ops}
    except OSError as e:
        obs["opcodes"] = {"errno": e.errno}
    try:
        obs["mmap"] = _step(_map_rings, fd, params)
        obs["files"] = _step(_register_files_and_buffers, fd)
        obs["ring_fds"] = _step(_register_ring_fd, fd)
        obs["personality"] = _step(_personality, fd)
        obs["restrictions"] = _step(_restrictions)
        obs["flags"] = {name: _flag_attempt(name, fd) for name in uring.SETUP_FLAGS}
        obs["ctx"] = _read_ctx(fd)
    finally:
        os.close(fd)
    return obs


@functools.lru_cache(maxsize=1)
def _observe():
    """Everything the io_uring probes look at, from one child (run once per process).

    A failed child is remembered too, so the probes do not each retry it.
    """
    try:
        return in_child(_experiment, timeout=5.0)
    except (ChildFailed, OSError) as e:
        return {"setup": None, "disabled": _read_int(SYSCTL), "group": _read_int(GROUP_SYSCTL),
                "failed": f"{type(e).__name__}: {e}"}


def _part(key):
    """An exercise returning the setup outcome and the observation under ``key``."""
    def exercise():
        obs = _observe()
        return {"setup": obs["setup"], "disabled": obs["disabled"], "group": obs["group"],
                "failed": obs.get("failed"), key: obs.get(key)}
    return exercise


# --- judging ----------------------------------------------------------------

def _no_ring(seen):
    """The verdict when no ring could be set up, else None."""
    code = seen["setup"]
    if code == 0:
        return None
    if code is None:
        return undecided(f"io_uring experiment child failed: {seen.get('failed')}")
    disabled = seen.get("disabled")
    if code == errno.ENOSYS:
        return absent("io_uring_setup -> ENOSYS (no CONFIG_IO_URING)")
    if code == errno.EPERM and disabled == 2:
        return absent("io_uring_setup -> EPERM: disabled by kernel.io_uring_disabled=2")
    if code == errno.EPERM and disabled == 1:
        return undecided("io_uring_setup -> EPERM: kernel.io_uring_disabled=1 limits rings to "
                         f"CAP_SYS_ADMIN and group {seen.get('group')}")
    return undecided(f"io_uring_setup -> {errname(code)}")


def _sysctl_note(seen):
    disabled = seen.get("disabled")
    if disabled is None:
        return "no kernel.io_uring_disabled sysctl"
    meaning = {0: "rings allowed", 1: f"rings only for group {seen.get('group')} or "
                                      "CAP_SYS_ADMIN", 2: "rings disabled"}
    return f"kernel.io_uring_disabled={disabled} ({meaning.get(disabled, '?')})"


def _judge_setup(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    return present(f"ring set up; {_sysctl_note(seen)}", io_uring_disabled=seen["disabled"])


def _ok(**over):
    seen = {"setup": 0, "disabled": 0, "group": -1}
    seen.update(over)
    return seen


NO_RING_EXAMPLES = [
    (_ok(setup=errno.ENOSYS), False),
    (_ok(setup=errno.EPERM, disabled=2), False),
    (_ok(setup=errno.EPERM, disabled=1), None),
    (_ok(setup=errno.ENOMEM), None),
    (_ok(setup=None, failed="ChildFailed: probe child timed out after 5.0s"), None),
]


@probe("io_uring_setup", "io_uring", since="5.1", judge=_judge_setup,
       examples=[(_ok(), True), (_ok(disabled=None), True)] + NO_RING_EXAMPLES)
def io_uring_setup():
    """io_uring_setup(2) creates a ring; reports kernel.io_uring_disabled (6.6)."""
    return _part("setup")()


def _judge_opcodes(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    got = seen["opcodes"]
    if "errno" in got:
        if got["errno"] == errno.EINVAL:
            return absent("IORING_REGISTER_PROBE -> EINVAL")
        return undecided(f"IORING_REGISTER_PROBE -> {errname(got['errno'])}")
    names = [uring.opcode_name(op) for op in got["ops"]]
    return present(f"{len(names)} opcodes supported, last op {got['last_op']} "
                   f"({uring.opcode_name(got['last_op'])})", opcodes=names)


def _judge_ctx(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    got = seen["ctx"]
    if "unavailable" in got:
        return absent(f"no kernel reader: {got['unavailable']}")
    if "error" in got:
        return undecided(got["error"])
    want = {"flags": 0, "sq_entries": ENTRIES, "cq_entries": 2 * ENTRIES}
    if got != want:
        return undecided(f"read {got}, the ring is {want}: offsets wrong?")
    return present("flags, sizes read from struct io_ring_ctx match the ring")


@probe("io_uring_ctx_readable", "io_uring", since="5.8", judge=_judge_ctx,
       examples=[(_ok(ctx={"flags": 0, "sq_entries": 4, "cq_entries": 8}), True),
                 (_ok(ctx={"unavailable": "no BTF"}), False),
                 (_ok(ctx={"flags": 9, "sq_entries": 4, "cq_entries": 8}), None),
                 (_ok(ctx={"error": "BTF lacks 'io_ring_ctx.sq_entries'"}), None)]
       + NO_RING_EXAMPLES)
def io_uring_ctx_readable():
    """What the engine's io_uring dump needs beyond fdinfo: a ring's struct io_ring_ctx
    (setup flags, submitter, registered files, personalities...) read with a BPF task_file
    iterator at the offsets of the kernel's BTF, checked against a ring of known setup."""
    return _part("ctx")()


def _judge_request_fd(seen):
    if not seen["btf"]:
        return absent("no kernel BTF")
    if not seen["field"]:
        return absent("struct io_kiocb has no cqe.fd")
    return present("struct io_kiocb keeps the SQE's fd (cqe.fd)")


@probe("io_uring_request_fd", "io_uring", since="6.0", judge=_judge_request_fd,
       examples=[({"btf": True, "field": True}, True), ({"btf": True, "field": False}, False),
                 ({"btf": False}, False)])
def io_uring_request_fd():
    """A request in flight keeps the fd its SQE named (struct io_kiocb's cqe.fd, in the
    kernel's BTF): what the engine submits a request again with after a restore."""
    try:
        types = vmlinux_btf()
    except OSError:
        return {"btf": False}
    try:
        types.field("io_kiocb", "cqe.fd")
    except KeyError:
        return {"btf": True, "field": False}
    return {"btf": True, "field": True}


def _judge_opcode(name):
    def judge(seen):
        verdict = _judge_opcodes(seen)
        if not verdict.present:
            return verdict
        if uring.OPCODES.index(name) in seen["opcodes"]["ops"]:
            return present(f"IORING_OP_{name} supported")
        return absent(f"IORING_OP_{name} not among the supported opcodes")
    return judge


@probe("io_uring_fixed_fd_install", "io_uring", since="6.8",
       judge=_judge_opcode("FIXED_FD_INSTALL"),
       examples=[(_ok(opcodes={"last_op": 62, "ops": [0, 54]}), True),
                 (_ok(opcodes={"last_op": 52, "ops": [0, 52]}), False),
                 (_ok(opcodes={"errno": errno.EFAULT}), None)] + NO_RING_EXAMPLES)
def io_uring_fixed_fd_install():
    """IORING_OP_FIXED_FD_INSTALL (6.8): a fixed-file slot becomes an fd of the submitter;
    how the engine dumps a file only a ring holds (a direct descriptor)."""
    return _part("opcodes")()


@probe("io_uring_msg_ring", "io_uring", since="5.18", judge=_judge_opcode("MSG_RING"),
       examples=[(_ok(opcodes={"last_op": 62, "ops": [0, 40]}), True),
                 (_ok(opcodes={"last_op": 36, "ops": [0, 36]}), False),
                 (_ok(opcodes={"errno": errno.EFAULT}), None)] + NO_RING_EXAMPLES)
def io_uring_msg_ring():
    """IORING_OP_MSG_RING (5.18): a ring posts a CQE into another; how the engine gives a
    restored ring its completions without submissions and its overflow list back."""
    return _part("opcodes")()


@probe("io_uring_opcodes", "io_uring", since="5.6", judge=_judge_opcodes,
       examples=[(_ok(opcodes={"last_op": 62, "ops": [0, 1, 62]}), True),
                 (_ok(opcodes={"errno": errno.EINVAL}), False),
                 (_ok(opcodes={"errno": errno.EFAULT}), None)] + NO_RING_EXAMPLES)
def io_uring_opcodes():
    """IORING_REGISTER_PROBE: the SQE opcodes this kernel supports (data: their names)."""
    return _part("opcodes")()


def _judge_features(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    names = uring.feature_names(seen["features"])
    if not names:
        return undecided("io_uring_params.features is 0")
    return present(f"{len(names)} feature bits: {', '.join(names)}", features=names)


@probe("io_uring_features", "io_uring", since="5.4", judge=_judge_features,
       examples=[(_ok(features=0x3ffff), True), (_ok(features=0), None)] + NO_RING_EXAMPLES)
def io_uring_features():
    """io_uring_params.features after setup (IORING_FEAT_*; data: the bit names)."""
    return _part("features")()


FDINFO_KEYS = ("UserFiles", "UserBufs", "CqOverflowList", "SqThread", "PollList")


def _judge_fdinfo(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    files = seen["files"]
    if "errno" in files:
        return undecided(f"registering files/buffers -> {errname(files['errno'])}")
    info = files["fdinfo"]
    keys = [k for k in info if k not in ("pos", "flags", "mnt_id", "ino")]
    if not keys:
        return absent("ring fdinfo shows nothing beyond pos/flags/mnt_id")
    notable = [k for k in FDINFO_KEYS if k in info]
    lists = []
    for key in ("UserFiles", "UserBufs"):
        lines = info.get(key, "").split("\n")[1:]
        if lines:
            lists.append(f"{key} lists {len(lines)}")
    missing = [k for k in FDINFO_KEYS if k not in info]
    detail = f"{len(keys)} keys incl. {', '.join(notable) or 'none of ' + ', '.join(FDINFO_KEYS)}"
    if lists:
        detail += f"; {', '.join(lists)}"
    if missing:
        detail += f"; no {', '.join(missing)}"
    return present(detail, keys=keys)


_FDINFO_OK = {"sparse": 0, "update": 0, "buffers": 0, "fdinfo": {
    "pos": "0", "SqMask": "0x3", "SqThread": "-1", "UserFiles": "4\n0: pipe:[1]",
    "UserBufs": "1\n0: 0x7f0000000000/4096", "PollList": "", "CqOverflowList": ""}}


@probe("io_uring_fdinfo", "io_uring", since="5.3", judge=_judge_fdinfo,
       examples=[(_ok(files=_FDINFO_OK), True),
                 (_ok(files={"sparse": 0, "update": 0, "buffers": 0,
                             "fdinfo": {"pos": "0", "flags": "02", "mnt_id": "1"}}), False),
                 (_ok(files={"errno": errno.ENOMEM}), None)] + NO_RING_EXAMPLES)
def io_uring_fdinfo():
    """The ring's fdinfo (SqMask .. UserFiles, UserBufs, PollList, CqOverflowList): the only
    non-BPF view of registered files and buffers. One file and one buffer are registered
    first, so the lists are not empty. Data: the keys seen."""
    return _part("files")()


def _judge_files_sparse(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    files = seen["files"]
    if "errno" in files:
        return undecided(f"registering files -> {errname(files['errno'])}")
    if files["sparse"] == errno.EINVAL:
        return absent("IORING_REGISTER_FILES2 with IORING_RSRC_REGISTER_SPARSE -> EINVAL")
    if files["sparse"]:
        return undecided(f"IORING_REGISTER_FILES2 -> {errname(files['sparse'])}")
    update = "a file installed in slot 0" if files["update"] == 0 else \
        f"IORING_REGISTER_FILES_UPDATE -> {errname(files['update'])}"
    return present(f"sparse table of {ENTRIES} slots registered; {update}")


@probe("io_uring_register_files_sparse", "io_uring", since="5.19", judge=_judge_files_sparse,
       examples=[(_ok(files=_FDINFO_OK), True),
                 (_ok(files={"sparse": errno.EINVAL, "update": 0}), False),
                 (_ok(files={"sparse": errno.ENOMEM, "update": 0}), None)] + NO_RING_EXAMPLES)
def io_uring_register_files_sparse():
    """IORING_REGISTER_FILES2 + IORING_RSRC_REGISTER_SPARSE: an empty fixed-file table that
    a restorer fills slot by slot (IORING_REGISTER_FILES_UPDATE)."""
    return _part("files")()


def _judge_mmap(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    got = seen["mmap"]
    if "errno" in got:
        if got["errno"] in (errno.EINVAL, errno.ENODEV):
            return absent(f"mmap of the ring fd -> {errname(got['errno'])}")
        return undecided(f"mmap of the ring fd -> {errname(got['errno'])}")
    read = [got["sq_ring_entries"], got["cq_ring_entries"]]
    if read != got["expected"]:
        return undecided(f"mapped rings read entries {read}, expected {got['expected']}")
    how = "one mapping for both rings" if got["single_mmap"] else "separate SQ/CQ mappings"
    return present(f"SQ ring, CQ ring and SQEs mapped from the fd ({how}); "
                   f"ring_entries read back {read}")


@probe("io_uring_mmap", "io_uring", since="5.1", judge=_judge_mmap,
       examples=[(_ok(mmap={"single_mmap": True, "sq_ring_entries": 4, "cq_ring_entries": 8,
                            "expected": [4, 8]}), True),
                 (_ok(mmap={"single_mmap": True, "sq_ring_entries": 0, "cq_ring_entries": 0,
                            "expected": [4, 8]}), None),
                 (_ok(mmap={"errno": errno.EINVAL}), False),
                 (_ok(mmap={"errno": errno.EACCES}), None)] + NO_RING_EXAMPLES)
def io_uring_mmap():
    """A ring's memory can be mapped by anyone holding its fd (IORING_OFF_SQ_RING,
    IORING_OFF_CQ_RING, IORING_OFF_SQES): how a dumper reads unconsumed SQEs and CQEs."""
    return _part("mmap")()


def _judge_register(what, key, field):
    def judge(seen):
        verdict = _no_ring(seen)
        if verdict:
            return verdict
        got = seen[key]
        if "errno" in got:
            if got["errno"] == errno.EINVAL:
                return absent(f"{what} -> EINVAL")
            return undecided(f"{what} -> {errname(got['errno'])}")
        return present(f"{what} -> {field} {got[field]}")
    return judge


@probe("io_uring_register_ring_fds", "io_uring", since="5.18",
       judge=_judge_register("IORING_REGISTER_RING_FDS", "ring_fds", "slot"),
       examples=[(_ok(ring_fds={"registered": 1, "slot": 0}), True),
                 (_ok(ring_fds={"errno": errno.EINVAL}), False),
                 (_ok(ring_fds={"errno": errno.EBUSY}), None)] + NO_RING_EXAMPLES)
def io_uring_register_ring_fds():
    """IORING_REGISTER_RING_FDS: a ring registered in the task's ring table (used without
    an fd: invisible in /proc/pid/fd), then unregistered."""
    return _part("ring_fds")()


@probe("io_uring_register_personality", "io_uring", since="5.6",
       judge=_judge_register("IORING_REGISTER_PERSONALITY", "personality", "id"),
       examples=[(_ok(personality={"id": 1}), True),
                 (_ok(personality={"errno": errno.EINVAL}), False),
                 (_ok(personality={"errno": errno.ENOMEM}), None)] + NO_RING_EXAMPLES)
def io_uring_register_personality():
    """IORING_REGISTER_PERSONALITY: credentials registered under an id that SQEs can use
    (state a dumper must find and a restorer re-create)."""
    return _part("personality")()


def _judge_restrictions(seen):
    verdict = _no_ring(seen)
    if verdict:
        return verdict
    got = seen["restrictions"]
    if "errno" in got:
        if got["errno"] == errno.EINVAL:
            return absent("io_uring_setup(IORING_SETUP_R_DISABLED) -> EINVAL")
        return undecided(f"io_uring_setup(IORING_SETUP_R_DISABLED) -> {errname(got['errno'])}")
    if got["restrict"] == errno.EINVAL:
        return absent("IORING_REGISTER_RESTRICTIONS -> EINVAL")
    if got["restrict"] or got["enable"]:
        return undecided(f"IORING_REGISTER_RESTRICTIONS -> {errname(got['restrict'])}, "
                         f"IORING_REGISTER_ENABLE_RINGS -> {errname(got['enable'])}")
    enforced = "enforced (PROBE refused: EACCES)" if got["probe_after"] == errno.EACCES \
        else f"after enabling PROBE -> {errname(got['probe_after'])}"
    return present(f"restricted an R_DISABLED ring and enabled it; {enforced}")


@probe("io_uring_restrictions", "io_uring", since="5.10", judge=_judge_restrictions,
       examples=[(_ok(restrictions={"restrict": 0, "enable": 0, "probe_after": errno.EACCES}),
                  True),
                 (_ok(restrictions={"restrict": errno.EINVAL, "enable": errno.EBADFD,
                                    "probe_after": 0}), False),
                 (_ok(restrictions={"errno": errno.EINVAL}), False),
                 (_ok(restrictions={"restrict": errno.EFAULT, "enable": 0,
                                    "probe_after": 0}), None)] + NO_RING_EXAMPLES)
def io_uring_restrictions():
    """IORING_REGISTER_RESTRICTIONS on an IORING_SETUP_R_DISABLED ring, then
    IORING_REGISTER_ENABLE_RINGS (restrictions are ring state a restorer must re-apply)."""
    return _part("restrictions")()


# --- io_uring_setup() flags, one probe each ------------------------------------

FLAG_SINCE = {
    "IOPOLL": "5.1", "SQPOLL": "5.1", "SQ_AFF": "5.1", "CQSIZE": "5.5", "CLAMP": "5.6",
    "ATTACH_WQ": "5.6", "R_DISABLED": "5.10", "SUBMIT_ALL": "5.18", "COOP_TASKRUN": "5.19",
    "TASKRUN_FLAG": "5.19", "SQE128": "5.19", "CQE32": "5.19", "SINGLE_ISSUER": "6.0",
    "DEFER_TASKRUN": "6.1", "NO_MMAP": "6.5", "REGISTERED_FD_ONLY": "6.5", "NO_SQARRAY": "6.6",
    "HYBRID_IOPOLL": "6.13", "CQE_MIXED": "6.18", "SQE_MIXED": "6.19",
}
FLAG_WITH = {"SQ_AFF": "SQPOLL", "TASKRUN_FLAG": "COOP_TASKRUN",
             "DEFER_TASKRUN": "SINGLE_ISSUER", "HYBRID_IOPOLL": "IOPOLL",
             "REGISTERED_FD_ONLY": "NO_MMAP"}


def _judge_flag(name):
    label = f"IORING_SETUP_{name}" + (f" (with {FLAG_WITH[name]})" if name in FLAG_WITH else "")

    def judge(seen):
        verdict = _no_ring(seen)
        if verdict:
            return verdict
        code = seen["flags"][name]
        if code == 0:
            return present(f"{label} accepted")
        if code == errno.EINVAL:
            return absent(f"{label} -> EINVAL")
        return undecided(f"{label} -> {errname(code)}")
    return judge


def _flag_exercise(name):
    def exercise():
        seen = _part("flags")()
        seen["flags"] = {name: (seen["flags"] or {}).get(name)}
        return seen
    needs = f" together with IORING_SETUP_{FLAG_WITH[name]}, which it requires" \
        if name in FLAG_WITH else ""
    exercise.__doc__ = f"io_uring_setup() with IORING_SETUP_{name}{needs}: accepted or EINVAL."
    return exercise


for _flag in uring.SETUP_FLAGS:
    _examples = [(_ok(flags={_flag: 0}), True), (_ok(flags={_flag: errno.EINVAL}), False),
                 (_ok(flags={_flag: errno.ENOMEM}), None)] + NO_RING_EXAMPLES
    probe(f"io_uring_setup_{_flag.lower()}", "io_uring", since=FLAG_SINCE[_flag],
          judge=_judge_flag(_flag), examples=_examples)(_flag_exercise(_flag))
