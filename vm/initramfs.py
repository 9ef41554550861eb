"""The guest's initramfs: busybox, the kernel modules the guest needs (with what they
depend on, in load order, decompressed), and an /init that mounts the host's root over 9p
with a tmpfs overlay on it, runs the command in there and reports how it ended.

Built per run in memory as a newc cpio (no compression: the kernel takes it as it is);
only the modules part depends on the kernel.
"""

import lzma
import os
import re
import stat
from pathlib import Path

BUSYBOX = "/bin/busybox"        # Debian's busybox-static
# what the guest needs of a kernel's modules: the PCI transport, the host's root (9p over
# virtio), a writable layer over it
WANTED = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
START, EXIT = "CRBENCH-VM-START", "CRBENCH-VM-EXIT"      # what /init says on the output port


class InitramfsError(Exception):
    pass


# modules ------------------------------------------------------------------------------------
def _module_name(path):
    name = path.name
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if name.endswith(suffix):
            return name[:-len(suffix)].replace("-", "_")
    return None


def _module_bytes(path):
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise InitramfsError(f"{path.name}: compressed in a way this builder does not read")


def _depends(data):
    found = re.search(rb"(?:^|\x00)depends=([^\x00]*)", data)
    return [d.replace("-", "_") for d in found.group(1).decode().split(",") if d] \
        if found else []


def modules(directory, wanted=WANTED):
    """[(name, bytes)] of ``wanted`` and what they depend on, dependencies first; those
    built into the kernel (modules.builtin) are left out."""
    if directory is None:
        return []
    directory = Path(directory)
    files = {}
    for root, _, names in os.walk(directory / "kernel"):
        for name in names:
            path = Path(root) / name
            module = _module_name(path)
            if module:
                files[module] = path
    builtin = set()
    listing = directory / "modules.builtin"
    if listing.exists():
        builtin = {_module_name(Path(line.strip())) for line in listing.read_text().split()}
    out, seen = [], set()

    def visit(name):
        if name in seen or name in builtin:
            return
        seen.add(name)
        if name not in files:
            raise InitramfsError(f"module {name} is neither in {directory} nor built in")
        data = _module_bytes(files[name])
        for dep in _depends(data):
            visit(dep)
        out.append((name, data))
    for name in wanted:
        visit(name)
    return out


# cpio ---------------------------------------------------------------------------------------
class Cpio:
    """A newc archive being written into memory."""

    def __init__(self):
        self.parts, self.ino = [], 1

    def _entry(self, name, mode, data=b""):
        name_b = name.encode() + b"\0"
        self.ino += 1
        head = ("070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))).encode()
        self.parts += [head, name_b, b"\0" * (-(len(head) + len(name_b)) % 4),
                       data, b"\0" * (-len(data) % 4)]

    def directory(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self):
        self._entry("TRAILER!!!", 0)
        data = b"".join(self.parts)
        return data + b"\0" * (-len(data) % 512)


# /init --------------------------------------------------------------------------------------
INIT = r"""#!/bin/busybox sh
# crbench's guest init: the host's root (9p, read-only) under a tmpfs overlay, the command
# run in there with its output on the second serial port, its exit status said after it.
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
OUT=/dev/ttyS1
$B stty -F $OUT raw -echo 115200
for m in $($B cat /modules.order); do
	$B insmod /modules/$m.ko || { echo "insmod $m failed" > $OUT; $B poweroff -f; }
done
$B mkdir -p /lower /rw /newroot
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /lower
$B mount -t tmpfs -o mode=755 rw /rw
$B mkdir -p /rw/upper /rw/work
$B mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot
for d in proc sys dev run tmp; do $B mkdir -p /newroot/$d; done
$B mount -t proc proc /newroot/proc
$B mount -t sysfs sys /newroot/sys
$B mount -t devtmpfs dev /newroot/dev
$B mkdir -p /newroot/dev/pts /newroot/dev/shm
$B mount -t devpts -o ptmxmode=666 devpts /newroot/dev/pts
$B mount -t tmpfs shm /newroot/dev/shm
$B mount -t tmpfs run /newroot/run
$B mount -t tmpfs -o mode=1777 tmp /newroot/tmp
$B mount -t bpf bpf /newroot/sys/fs/bpf 2>/dev/null
$B mount -t tracefs tracefs /newroot/sys/kernel/tracing 2>/dev/null
$B mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
CWD=$($B cat /cwd-path)
case "$CWD" in /tmp/*)              # under the guest's own /tmp: the host's, writable
	$B mkdir -p /rw/cwd-upper /rw/cwd-work /newroot$CWD
	$B mount -t overlay -o lowerdir=/lower$CWD,upperdir=/rw/cwd-upper,workdir=/rw/cwd-work \
		overlay /newroot$CWD;;
esac
if [ -s /share-path ]; then         # (a mount source naming a file here is a loop mount)
	SHARE=$($B cat /share-path)
	$B mkdir -p /newroot$SHARE
	$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 crbench_share /newroot$SHARE
fi
if [ -s /modules-at ]; then         # the kernel's modules, for modprobe in there
	AT=$($B cat /modules-at)
	$B mkdir -p /newroot/lib/modules/$($B uname -r)
	$B mount --bind /newroot$AT /newroot/lib/modules/$($B uname -r)
fi
$B ip link set lo up 2>/dev/null
$B hostname crbench-vm
$B cp /command.sh /newroot/run/crbench-command
$B cp /finish.sh /newroot/run/crbench-init
# the overlay becomes the root (not a chroot: a chrooted process may not make user
# namespaces); busybox there finishes the run as pid 1
exec $B switch_root /newroot /bin/busybox sh /run/crbench-init
""".replace("@START@", START).replace("@EXIT@", EXIT)

# pid 1 in the guest's final root: runs the command, says how it ended, powers off
FINISH = r"""OUT=/dev/ttyS1
echo "@START@" > $OUT
/bin/sh /run/crbench-command > $OUT 2>&1 < /dev/null
rc=$?
echo "@EXIT@ $rc" > $OUT
/bin/busybox sync
/bin/busybox poweroff -f
""".replace("@START@", START).replace("@EXIT@", EXIT)


def _command_script(argv, cwd, env):
    quoted = " ".join(_quote(a) for a in argv)
    exports = "".join(f"export {k}={_quote(v)}\n" for k, v in sorted(env.items()))
    return f"{exports}cd {_quote(cwd)} || exit 127\nexec {quoted}\n"


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def build(kernel_modules, argv, cwd, env, share=None, modules_at=None):
    """The initramfs (bytes) that runs ``argv`` in ``cwd`` with ``env`` (the guest's whole
    environment); ``share``: a host directory mounted writable at the same path;
    ``modules_at``: the host's path of the kernel's lib/modules/RELEASE."""
    cpio = Cpio()
    for d in ("bin", "dev", "proc", "sys", "modules"):
        cpio.directory(d)
    with open(BUSYBOX, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    for name, data in kernel_modules:
        cpio.file(f"modules/{name}.ko", data)
    cpio.file("modules.order", "".join(f"{n}\n" for n, _ in kernel_modules).encode())
    cpio.file("init", INIT.encode(), 0o755)
    cpio.file("finish.sh", FINISH.encode(), 0o755)
    cpio.file("modules-at", (str(modules_at) if modules_at else "").encode())
    cpio.file("share-path", (str(share) if share else "").encode())
    cpio.file("cwd-path", str(cwd).encode())
    cpio.file("command.sh", _command_script(argv, cwd, env).encode(), 0o755)
    return cpio.finish()
