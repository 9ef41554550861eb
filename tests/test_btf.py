"""kernel.btf: the builder's blobs read back, and the kernel's BTF parses."""

import os

import pytest

from kernel import bpf, btf


def test_builder_blob_reads_back():
    b = btf.Builder()
    int_id = b.int("int", 4, signed=True)
    struct_id = b.struct("pair", 8, [("a", int_id, 0), ("b", int_id, 4)])
    parsed = btf.BTF(b.blob())
    assert len(parsed) == 2
    assert parsed.find("int", btf.KIND_INT) == int_id
    assert parsed.members(struct_id) == [("a", int_id, 0), ("b", int_id, 32)]


def test_builder_blob_loads_into_the_kernel():
    b = btf.Builder()
    b.int("int", 4, signed=True)
    fd = bpf.btf_load(b.blob(), log_size=4096)
    os.close(fd)


@pytest.mark.skipif(not os.path.exists(btf.VMLINUX), reason="no /sys/kernel/btf/vmlinux")
def test_vmlinux_has_the_map_type_enum():
    types = btf.BTF.vmlinux()
    enum = types.find("bpf_map_type", btf.KIND_ENUM)
    assert types.enum_values(enum)["BPF_MAP_TYPE_HASH"] == 1
    task = types.find("task_struct", btf.KIND_STRUCT)
    assert "pid" in [m[0] for m in types.members(task)]


def test_not_btf_is_rejected():
    with pytest.raises(ValueError, match="not BTF"):
        btf.BTF(b"\0" * 32)


@pytest.mark.skipif(not os.path.exists(btf.VMLINUX), reason="no /sys/kernel/btf/vmlinux")
def test_field_finds_nested_anonymous_and_bit_members():
    types = btf.BTF.vmlinux()
    path = types.field("file", "f_path")
    dentry = types.field("file", "f_path.dentry")
    assert dentry.offset == path.offset + types.field("path", "dentry").offset
    assert dentry.size == 8 and not dentry.bits
    bit = types.field("task_struct", "sched_reset_on_fork")        # unsigned int :1
    assert bit.bits == 1 and bit.offset % 4 == 0
    word = (1 << (bit.bit_offset % 32)).to_bytes(4, "little")
    blob = bytes(bit.offset) + word
    assert bit.value(blob) == 1 and bit.value(bytes(len(blob))) == 0
    with pytest.raises(KeyError, match="task_struct.no_such_member"):
        types.field("task_struct", "no_such_member")


@pytest.mark.skipif(not os.path.exists(btf.VMLINUX), reason="no /sys/kernel/btf/vmlinux")
def test_field_reaches_members_of_anonymous_structs():
    types = btf.BTF.vmlinux()
    if types.find("io_ring_ctx", btf.KIND_STRUCT) is None:
        pytest.skip("no io_uring in this kernel's BTF")
    # struct io_ring_ctx keeps its flags in an unnamed, cache-line aligned struct (5.12+)
    ctx = types.find("io_ring_ctx", btf.KIND_STRUCT)
    if "flags" in [name for name, _, _ in types.members(ctx)]:
        pytest.skip("flags is a direct member of io_ring_ctx in this kernel")
    flags = types.field("io_ring_ctx", "flags")
    assert flags.size == 4 and not flags.bits
