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
