"""Real answers on real kernels: what the probes must say where it is certain.

Expectations come from ../shared/notes/kernel-interfaces.md (verified on the
6.18 development host; the others are Debian's kernels, checked in the VM
matrix).  A kernel not in the table is skipped: nothing is certain there.
"""

import os
import re

import pytest

import probes

# probe -> expected presence, per kernel major.minor
EXPECTED = {
    "6.18": {
        "bpf_iter_task": True, "bpf_iter_task_vma": True, "bpf_iter_unix": True,
        "bpf_iter_kmem_cache": True, "bpf_iter_dmabuf": True,
        "bpf_iter_io_uring_file": False, "bpf_iter_io_uring_buf": False,
        "bpf_iter_epoll": False, "caba": False, "task_diag": False,
        "statmount": True, "listmount": True, "soft_dirty": False,
        "move_mount_set_group": True, "mount_setattr": True, "pagemap_scan": True,
        "procmap_query": True, "pidfd_get_info": True, "uffd_wp_async": True,
        "clone3_set_tid": True, "timens": True, "tcp_repair": True, "so_peek_off_tcp": True,
        "memfd_secret": True, "io_uring_setup": True, "overlayfs_maps": True,
        "move_mount_beneath": True, "statmount_supported_mask": True, "ns_get_id": True,
        "listns": False,
    },
    "6.12": {"bpf_iter_task_vma": True, "statmount": True, "pidfd_get_info": False,
             "bpf_iter_kmem_cache": False, "caba": False, "procmap_query": True},
    "6.1": {"bpf_iter_task_vma": True, "statmount": False, "procmap_query": False,
            "pagemap_scan": False, "caba": False, "move_mount_set_group": True},
    "5.10": {"bpf_iter_task_vma": False, "bpf_iter_unix": False, "statmount": False,
             "mount_setattr": False, "caba": False},
}


def kernel_series():
    return re.match(r"(\d+\.\d+)", os.uname().release).group(1)


CASES = sorted(EXPECTED.get(kernel_series(), {}).items())


@pytest.mark.skipif(not CASES, reason=f"no certain answers recorded for kernel {kernel_series()}")
@pytest.mark.skipif(os.geteuid() != 0, reason="the certain answers are those of a root prober")
@pytest.mark.parametrize("name,expected", CASES or [("none", None)])
def test_certain_answer(name, expected):
    result = probes.check(name)
    assert result.present is expected, f"{name}: {result.status} - {result.detail}"
