"""The probe table: names, areas, CRIU aliases, coverage."""

import re

import pytest

from probes import REGISTRY, resolve
from probes.registry import AREAS

# `criu check --feature` names (CRIU 4.2) - all of them apply to x86-64.
CRIU_FEATURES = """
mnt_id mem_dirty_track aio_remap timerfd tun tun_ns userns fdinfo_lock seccomp_suspend
seccomp_filters loginuid cgroupns autofs tcp_half_closed compat_cr uffd uffd-noncoop
can_map_vdso sk_ns sk_unix_file net_diag_raw nsid link_nsid kcmp_epoll timens
external_net_ns clone3_set_tid newifindex nftables has_ipt_legacy pidfd_store ns_pid
apparmor_stacking network_lock_nftables sockopt_buf_lock memfd_hugetlb move_mount_set_group
openat2 get_rseq_conf ipv6_freebind pagemap_scan overlayfs_maps timer_cr_ids breakpoints
pagemap_scan_guard_pages
""".split()


def test_there_are_at_least_60_probes():
    assert len(REGISTRY) >= 60


def test_names_are_snake_case_and_areas_known():
    for name, p in REGISTRY.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert p.area in AREAS


def test_every_criu_feature_name_resolves():
    assert len(CRIU_FEATURES) == 45
    missing = [n for n in CRIU_FEATURES if _resolves(n) is None]
    assert not missing, f"criu check --feature names without a probe: {missing}"


def test_criu_names_map_one_to_one():
    by_criu = {}
    for p in REGISTRY.values():
        if p.criu_name:
            assert p.criu_name not in by_criu, p.criu_name
            by_criu[p.criu_name] = p.name
    assert set(by_criu) == set(CRIU_FEATURES), "criu_name must be one of CRIU's names"


@pytest.mark.parametrize("alias,name", [("uffd-noncoop", "uffd_noncoop"),
                                        ("uffd_noncoop", "uffd_noncoop"),
                                        ("mem_dirty_track", "soft_dirty"),
                                        ("ns_pid", "nspid")])
def test_criu_aliases(alias, name):
    assert resolve(alias) == name


def test_unknown_name_is_a_key_error():
    with pytest.raises(KeyError):
        resolve("no_such_feature")


def _resolves(name):
    try:
        return resolve(name)
    except KeyError:
        return None
