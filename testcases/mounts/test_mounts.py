"""Mounts: a tree's mount namespaces and what is mounted in them.

Several mount namespaces in one tree (shared between processes or not); mount and
superblock options (tmpfs size, inodes, mode, owner; ro, nosuid, nodev, noexec, atime
modes, nosymfollow) seen by behaviour; binds of directories and files, recursive binds,
overmounts and hidden mounts that processes still use; propagation (shared peer groups
spanning namespaces, slave chains, private and unbindable mounts, groups whose members
bind different subtrees) checked by mounting probes in each member and seeing where they
show (docs/plans/issue-10-mounts.md, 3.3); tmpfs content (holes, modes, owners, links,
xattrs, special files, times); binds whose source was removed; pivot_root and chroot;
proc, sysfs, devpts and mqueue instances of the tree's own namespaces.

Every program makes a mount namespace of its own first (all private) and mounts under
its --dirname only, so nothing reaches the host and parallel runs never meet.
"""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent


# every program makes mount namespaces of its own; those that check propagation read the
# peer groups and masters in mountinfo
BASE = ("mntns",)
PROPAGATION = BASE + ("mountinfo_propagation",)
PTY = ("pty_locked", "tty_gexcl", "tty_gpkt")
# the program compares how a mapping's /proc/PID/maps line relates to the overlay before
# and after: where maps shows the layer's inode, a copied-up file's changes
OVERLAY_GAP = ("a copied-up file's overlay inode number changes (the upper's origin names a "
               "lower inode the restore makes anew), which /proc/PID/maps shows where the "
               "kernel lacks overlayfs_maps", 10)


def _program(name, requires=BASE, **options):
    return Program(HERE / f"{name}.c", dirname=True, requires=requires, **options)


PROGRAMS = [
    _program("mnt_ns_shared"),
    _program("mnt_options", requires=BASE + ("mount_setattr",)),
    _program("mnt_binds"),
    _program("mnt_overmount"),
    _program("mnt_shared_peers", requires=PROPAGATION),
    _program("mnt_slave_chain", requires=PROPAGATION),
    _program("mnt_private_unbindable", requires=PROPAGATION),
    _program("mnt_peers_width", requires=PROPAGATION),
    _program("mnt_tmpfs_content", requires=BASE + ("tmpfs_user_xattr",)),
    _program("mnt_deleted_root"),
    _program("mnt_pivot_chroot"),
    # in a user namespace: overlay mounted by its root (5.11), its xattrs user.overlay.* on
    # the tmpfs upper (6.6)
    engine_lacks(_program("mnt_overlay", requires=BASE + ("overlayfs",), flavors=("h", "ns")),
                 *OVERLAY_GAP, kernel_lacks=("overlayfs_maps",)),
    engine_lacks(_program("mnt_overlay", requires=BASE + ("overlayfs_userns",
                                                          "tmpfs_user_xattr"),
                          flavors=("uns",)),
                 *OVERLAY_GAP, id="mnt_overlay_userns", kernel_lacks=("overlayfs_maps",)),
    # its own pid, network and IPC namespaces: only under an init of its own
    _program("mnt_pseudo_fs", flavors=("ns", "uns")),
    _program("mnt_proc_masks", flavors=("ns", "uns")),
    # ptys of a devpts instance of its own, and of ours (its index must be free at restore:
    # no other conformance run meanwhile)
    _program("mnt_devpts_ptys", requires=BASE + PTY, flavors=("ns", "uns")),
    _program("pty_host", requires=PTY, flavors=("h",), exclusive=True),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_mounts(zdtm, program):
    zdtm.run(program)


# the programs that propagate, again with the engine's fallback for kernels without
# MOVE_MOUNT_SET_GROUP (5.15): each group's members cloned from a helper made first
WITHOUT_SET_GROUP = [p for p in PROGRAMS if isinstance(p, Program) and
                     "mountinfo_propagation" in p.requires]


@pytest.mark.parametrize("program", WITHOUT_SET_GROUP, ids=str)
def test_mounts_without_set_group(zdtm, program, monkeypatch):
    monkeypatch.setenv("CR_ENGINE_MOUNT_SET_GROUP", "0")
    zdtm.run(program)
