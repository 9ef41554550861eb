"""Kernels to boot: Debian's, fetched once from its package registry and kept unpacked in
the cache; a local image; or the host's own (no VM).

Debian's are the generic `-amd64` images (the `-cloud-amd64` ones have no 9p, which the
guest mounts the host's root with).  Which package holds a series is read from the
suite's `linux-image-amd64` metapackage through a private apt state (its own sources list,
lists and archives under the cache), so the host's apt configuration is never touched.
"""

import fcntl
import lzma
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# series -> Debian suite whose linux-image-amd64 is that series
SUITES = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "trixie"}
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HOST = "host"


class KernelError(Exception):
    """A kernel that cannot be had (unknown name, a download or unpack that failed)."""


@dataclass
class Kernel:
    name: str                   # "6.1", "host", or the image's path
    release: str                # uname -r of it
    image: Path = None          # the bzImage; None for the host
    modules: Path = None        # its lib/modules/RELEASE, if it has modules

    @property
    def is_host(self):
        return self.image is None


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crbench" / "vm"


def get(name, modules=None, progress=print):
    """The kernel called ``name``: a series of SUITES, "host", or a path to an image
    (``modules``: its lib/modules directory, if its drivers are modules)."""
    if name == HOST:
        return Kernel(HOST, os.uname().release)
    if name in SUITES:
        return _debian(name, progress)
    path = Path(name)
    if not path.is_file():
        raise KernelError(f"unknown kernel {name!r}: not one of {', '.join(SUITES)}, "
                          f"{HOST}, or an image file")
    return Kernel(str(path), _release_of_image(path), path.resolve(),
                  Path(modules).resolve() if modules else None)


def _release_of_image(path):
    """The release string a bzImage carries (after "Linux version " in its text)."""
    data = path.read_bytes()
    found = re.search(rb"(\d+\.\d+\.\d+[^\s\x00]*) \(", data)
    return found.group(1).decode() if found else path.name


def _debian(series, progress):
    """Fetched and unpacked once; concurrent callers (parallel tests) wait for the first."""
    top = cache_dir() / "kernels"
    top.mkdir(parents=True, exist_ok=True)
    with open(top / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _debian_locked(series, progress)


def _debian_locked(series, progress):
    root = cache_dir() / "kernels" / series
    done = root / "release"
    if done.exists():
        release = done.read_text().strip()
        return Kernel(series, release, _bootable(root), _modules_of(root, release))
    apt = _Apt(cache_dir() / "apt")
    package = apt.package_of(series)
    progress(f"vm: fetching {package} ({SUITES[series]}) ...")
    deb = apt.download(package)
    progress(f"vm: unpacking {deb.name} ({deb.stat().st_size >> 20} MiB)")
    work = root.with_name(series + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(work / "deb")], "unpack " + deb.name)
    images = sorted((work / "deb" / "boot").glob("vmlinuz-*"))
    if not images:
        raise KernelError(f"{deb.name} holds no /boot/vmlinuz-*")
    release = images[0].name[len("vmlinuz-"):]
    _unpacked(images[0], work / "vmlinux")
    (work / "deb" / "boot" / images[0].name).rename(work / "vmlinuz")
    (work / "release").write_text(release + "\n")
    deb.unlink()                    # unpacked: the .deb is not needed again
    shutil.rmtree(root, ignore_errors=True)
    work.rename(root)
    return Kernel(series, release, _bootable(root), _modules_of(root, release))


def _bootable(root):
    """The uncompressed ELF where there is one (QEMU boots it through its PVH entry, which
    saves the guest decompressing itself: seconds under TCG), else the bzImage."""
    return root / "vmlinux" if (root / "vmlinux").exists() else root / "vmlinuz"


# the compressed kernel's stream in a bzImage: magic -> how to undo it
_XZ, _ZSTD = b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"


def _unpacked(bzimage, target):
    """Write the ELF kernel a bzImage holds (xz or zstd) to ``target``; nothing when it
    cannot (the bzImage boots too)."""
    data = bzimage.read_bytes()
    elf = None
    at = data.find(_XZ)
    if at >= 0:
        try:
            elf = lzma.LZMADecompressor().decompress(data[at:])
        except lzma.LZMAError:
            elf = None
    at = data.find(_ZSTD)
    if elf is None and at >= 0 and shutil.which("zstd"):
        proc = subprocess.run(["zstd", "-dcq"], input=data[at:], capture_output=True)
        elf = proc.stdout       # (it complains of the bytes after the frame: not ours)
    if elf and elf[:4] == b"\x7fELF":
        target.write_bytes(elf)


def _modules_of(root, release):
    """The kernel's lib/modules/RELEASE, with the modules.dep the package leaves to its
    postinst made (for modprobe in the guest)."""
    deb = root / "deb"
    if not (deb / "lib").exists() and (deb / "usr" / "lib").is_dir():
        (deb / "lib").symlink_to("usr/lib")             # trixie's are under usr/lib only
    path = deb / "lib" / "modules" / release
    if not path.is_dir():
        return None
    if not (path / "modules.dep").exists():
        _run(["depmod", "-b", str(deb), release], f"depmod {release}")
    return path.resolve()


class _Apt:
    """apt-get and apt-cache over a private state of Debian's suites."""

    def __init__(self, top):
        self.top = Path(top)
        for sub in ("lists/partial", "archives/partial", "etc"):
            (self.top / sub).mkdir(parents=True, exist_ok=True)
        (self.top / "status").touch()
        sources = "".join(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n"
                          for suite in SUITES.values())
        listing = self.top / "etc" / "sources.list"
        if not listing.exists() or listing.read_text() != sources:
            listing.write_text(sources)
            for old in (self.top / "lists").glob("*_Packages*"):
                old.unlink()
        self.options = [f"-oDir::State={self.top}", f"-oDir::State::status={self.top}/status",
                        f"-oDir::Cache={self.top}", f"-oDir::Etc::SourceList={listing}",
                        "-oDir::Etc::SourceParts=/dev/null", "-oAPT::Sandbox::User=root",
                        "-oDebug::NoLocking=1"]

    def _updated(self):
        if not list((self.top / "lists").glob("*_Packages*")):
            _run(["apt-get", *self.options, "-q", "update"], "apt-get update")

    def package_of(self, series):
        """linux-image-RELEASE-amd64 of the suite's metapackage."""
        self._updated()
        out = _run(["apt-cache", *self.options, "show", "linux-image-amd64"],
                   "apt-cache show linux-image-amd64")
        for block in out.split("\n\n"):
            found = re.search(r"^Depends: (linux-image-(\S+)-amd64)\b", block, re.M)
            if found and found.group(2).startswith(series + "."):
                return found.group(1)
        raise KernelError(f"no linux-image-amd64 of {series} in {', '.join(SUITES.values())}")

    def download(self, package):
        where = self.top / "debs"
        where.mkdir(exist_ok=True)
        for old in where.glob("*.deb"):
            old.unlink()
        _run(["apt-get", *self.options, "-q", "download", package], f"download {package}",
             cwd=where)
        debs = list(where.glob("*.deb"))
        if len(debs) != 1:
            raise KernelError(f"apt-get download {package} left {len(debs)} files")
        return debs[0]


def _run(argv, what, cwd=None):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                              stdin=subprocess.DEVNULL)
    except OSError as e:
        raise KernelError(f"{what}: {e}") from None
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise KernelError(f"{what} failed (exit {proc.returncode}): " + " | ".join(said))
    return proc.stdout


def main_progress(text):
    print(text, file=sys.stderr, flush=True)
