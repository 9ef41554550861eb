"""BPF maps: the kinds user space can fill and read back (arrays, hashes, per-CPU and LRU
maps, LPM tries, queues and stacks, frozen maps, maps of maps, maps with BTF, bloom filters,
ring buffers), one map held through several descriptions by two processes, and maps pinned
in a bpf filesystem.

Creating or opening a map needs CAP_BPF (or CAP_SYS_ADMIN) in the initial user namespace:
in a user namespace of its own (the uns flavor) the programs' first bpf() call
(BPF_MAP_CREATE) fails with EPERM (seen on 6.18 with kernel.unprivileged_bpf_disabled=2,
the default), so they run in the h and ns flavors only."""

from pathlib import Path

import pytest

from kernel.mount import MNT_DETACH, umount2
from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent

BPF_FLAVORS = ("h", "ns")


PROGRAMS = [
    Program(HERE / "bpf_maps_basic.c", flavors=BPF_FLAVORS),
    Program(HERE / "bpf_lpm_queue_stack.c", flavors=BPF_FLAVORS),
    Program(HERE / "bpf_frozen.c", flavors=BPF_FLAVORS),
    # a frozen queue or stack can only be peeked from user space (its check pops with a
    # program, after the restore)
    Program(HERE / "bpf_frozen_queue.c", flavors=BPF_FLAVORS),
    Program(HERE / "bpf_map_in_map.c", flavors=BPF_FLAVORS),
    Program(HERE / "bpf_btf.c", flavors=BPF_FLAVORS),
    Program(HERE / "bpf_shared.c", flavors=BPF_FLAVORS),
    # its bpf filesystem is mounted in the mount namespace the program runs in: in the ns
    # flavor's private one the engine would have to carry that mount too (issue 10); in
    # the host's, every other h-flavor run would see the mount come and go (exclusive)
    Program(HERE / "bpf_pinned.c", dirname=True, flavors=("h",), exclusive=True),
    engine_lacks(Program(HERE / "bpf_bloom.c", flavors=BPF_FLAVORS,
                         requires=("bpf_map_bloom_filter",)),
                 "a bloom filter's bits cannot be read back from user space (lookups only "
                 "test membership), so the dump refuses one", 7),
    Program(HERE / "bpf_ringbuf.c", flavors=BPF_FLAVORS,
            requires=("bpf_map_ringbuf", "bpf_map_user_ringbuf")),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_bpf(zdtm, program):
    try:
        zdtm.run(program)
    finally:
        # a program that mounted on its --dirname unmounts at its end; when its restore
        # failed it is gone, and in the h flavor its mount would outlive the test
        if program.dirname:
            mount_point = program.files(zdtm.workdir)["dirname"]
            if mount_point.is_mount():
                umount2(mount_point, MNT_DETACH)
