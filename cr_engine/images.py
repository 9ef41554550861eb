"""Image directories: a versioned inventory, JSON metadata a person can read, raw data files.

Layout of a directory (format version 1):
  inventory.json      what wrote it, format version, and every file with its size and CRC-32
  pstree.json         the process tree (pids, tids, sessions, groups, zombies)
  core-PID.json       per process: threads (registers, masks, ...), signals, timers, mm
  fds-PID.json        per process: the fd table (fd -> file description id, flags)
  files.json          the file descriptions (regular files, pipes, ...) shared by all fds
  pages-PID.img       raw memory pages; core-PID.json's pagemap says where each run goes
  *.img               other raw payloads (pipe data, shared memory)
The inventory is written last, so a directory without one is not an image.  Readers accept
only known format versions and check every file against the inventory before anything is
restored.  JSON is parsed with the json module only (no pickle, no eval).
"""

import json
import os
import platform
import threading
import time
import zlib

from .errors import ImageError

FORMAT = "cr_engine-images"
VERSION = 3                         # 2: one fd-data.img; 3: mount namespaces in mnt.json
INVENTORY = "inventory.json"
FD_DATA = "fd-data.img"
CRC_CHUNK = 1 << 20                 # cache-sized reads: the CRC reads what was just copied
PREFILL_CHUNK = 1 << 20


class RawWriter:
    """A raw image file written sequentially, its CRC-32 computed on the way.  ``filled``:
    the file was prefilled (ImageWriter.prefill): written over, and cut to ``size`` when
    closed."""

    def __init__(self, path, filled=False):
        self.path, self.filled = path, filled
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC |
                          (0 if filled else os.O_TRUNC), 0o600)
        self.size = 0
        self.crc = 0

    def write(self, data):
        self.checksum(data)
        self.write_unchecked(data)

    def checksum(self, data):
        """Account ``data`` in the CRC (split from writing so two threads can share it)."""
        self.crc = zlib.crc32(data, self.crc)

    def write_unchecked(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.size += n

    def close(self):
        if self.fd >= 0:
            try:
                if self.filled:
                    os.ftruncate(self.fd, self.size)
            finally:
                os.close(self.fd)
                self.fd = -1


class ImageWriter:
    """JSON files and the CRCs of raw files are completed by ``complete()`` (``finish()``
    calls it): a dump that lets the tree run on does that after the thaw, so the objects
    handed to ``json()`` must not change in between."""

    def __init__(self, directory):
        self.dir = os.fspath(directory)
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as e:
            raise ImageError(f"cannot use images directory {self.dir}: {e.strerror}") from e
        self.files = {}
        self.written = []
        self.deferred = []              # (name, object) of JSON files not written yet
        self.following = []             # (name, RawWriter, follower) whose CRC is read back
        self.prefilled = set()          # names prefilled, not opened by raw() yet

    def path(self, name):
        return os.path.join(self.dir, name)

    def json(self, name, obj):
        self.deferred.append((name, obj))

    def _write_json(self, name, obj):
        # compact: an indent makes json fall back to its Python encoder, 10x slower on the
        # files.json of a thousand fds (`show` is the way to read images)
        data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        self.written.append(name)
        with open(self.path(name), "wb") as f:
            f.write(data)
        self.files[name] = {"size": len(data), "crc32": f"{zlib.crc32(data):08x}"}

    def raw(self, name):
        filled = name in self.prefilled
        writer = RawWriter(self.path(name), filled)
        if filled:
            self.prefilled.discard(name)
        else:
            self.written.append(name)
        return writer

    def prefill(self, name, size):
        """Give ``name`` ``size`` bytes of zeros now, in the page cache, for a raw(name) to
        write over later: writing over cached pages runs at 6-9 GB/s here, into new ones at
        0.5-7 (the page cache's allocations, and in this VM the host's faults behind
        them), so a dump prefills its page images before the freeze and its frozen window
        meets only the copy.  Cut to what raw() wrote when closed; never opened: removed
        by finish()."""
        fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o600)
        self.written.append(name)
        self.prefilled.add(name)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError:
                pass                    # file systems without fallocate grow the file
            zeros = bytes(PREFILL_CHUNK)
            for at in range(0, size, PREFILL_CHUNK):
                os.pwrite(fd, zeros[:min(PREFILL_CHUNK, size - at)], at)
        finally:
            os.close(fd)

    def adopt(self, name):
        """List ``name``, written by other means (a helper process wrote into it)."""
        crc, size = 0, 0
        with open(self.path(name), "rb") as f:
            while chunk := f.read(1 << 20):
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        self.written.append(name)
        self.files[name] = {"size": size, "crc32": f"{crc:08x}"}

    def close_raw(self, name, writer, follower=None):
        """``follower``: what is still to read the file back for its CRC (``join()``
        completes it or raises what went wrong, ``abandon()`` drops it); the file is listed
        once it is done."""
        writer.close()
        if follower is not None:
            self.following.append((name, writer, follower))
        else:
            self.files[name] = {"size": writer.size, "crc32": f"{writer.crc:08x}"}

    def complete(self):
        """Complete the CRCs read back, write the JSON files handed over so far."""
        while self.following:
            name, writer, follower = self.following[0]
            follower.join()
            self.following.pop(0)
            self.files[name] = {"size": writer.size, "crc32": f"{writer.crc:08x}"}
        deferred, self.deferred = self.deferred, []
        for name, obj in deferred:
            self._write_json(name, obj)

    def finish(self, **meta):
        self.complete()
        for name in self.prefilled:     # a process gone, or not the tree's, at the freeze
            os.unlink(self.path(name))
            self.written.remove(name)
        self.prefilled = set()
        inventory = {"format": FORMAT, "version": VERSION, "created": time.time(),
                     "kernel": platform.release(), "machine": platform.machine(),
                     "files": self.files, **meta}
        tmp = self.path(INVENTORY + ".tmp")
        with open(tmp, "w") as f:
            json.dump(inventory, f, indent=1, sort_keys=True)
            f.write("\n")
        os.rename(tmp, self.path(INVENTORY))

    def discard(self):
        """Remove what this writer wrote (a failed dump leaves no half image behind)."""
        for _, _, follower in self.following:
            follower.abandon()
        self.following, self.deferred = [], []
        for name in self.written + [INVENTORY + ".tmp"]:
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass


class ImageReader:
    def __init__(self, directory):
        self.dir = os.fspath(directory)
        if not os.path.isdir(self.dir):
            raise ImageError(f"{self.dir}: no such images directory")
        try:
            with open(os.path.join(self.dir, INVENTORY)) as f:
                inventory = json.load(f)
        except FileNotFoundError:
            raise ImageError(f"{self.dir}: not an image directory (no {INVENTORY})") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ImageError(f"{self.dir}/{INVENTORY}: damaged ({e})") from None
        if not isinstance(inventory, dict) or inventory.get("format") != FORMAT:
            raise ImageError(f"{self.dir}: not a {FORMAT} directory (foreign inventory)")
        version = inventory.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise ImageError(f"{self.dir}: image format version {version} is newer than this "
                             f"engine's ({VERSION}); use a newer engine")
        if version < VERSION:
            raise ImageError(f"{self.dir}: image format version {version} is older than this "
                             f"engine's ({VERSION}); dump again with this engine")
        if not isinstance(inventory.get("files"), dict):
            raise ImageError(f"{self.dir}/{INVENTORY}: damaged (no file list)")
        self.inventory = inventory

    def path(self, name):
        if name not in self.inventory["files"]:
            raise ImageError(f"{self.dir}: {name} is not listed in the inventory")
        return os.path.join(self.dir, name)

    def has(self, name):
        return name in self.inventory["files"]

    def json(self, name):
        with open(self.path(name), "rb") as f:
            data = f.read()
        self._check(name, len(data), zlib.crc32(data))
        try:
            return json.loads(data)
        except ValueError as e:
            raise ImageError(f"{self.dir}/{name}: damaged ({e})") from None

    def verify(self, names=None):
        """Check the listed files' (default: all) sizes and CRC-32s; raise ImageError on the
        first mismatch."""
        view = memoryview(bytearray(CRC_CHUNK))
        for name in sorted(self.inventory["files"] if names is None else names):
            try:
                fd = os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise ImageError(f"{self.dir}: {name} is missing") from None
            try:
                crc, size = 0, 0
                while n := os.readv(fd, [view]):
                    crc = zlib.crc32(view[:n], crc)
                    size += n
            finally:
                os.close(fd)
            self._check(name, size, crc)

    def verify_in_background(self, names):
        """Start verifying ``names`` on a thread; the returned callable joins it and raises
        ImageError if one was damaged."""
        failure = []

        def run():
            try:
                self.verify(names)
            except ImageError as e:
                failure.append(e)
        thread = threading.Thread(target=run, name="verify-images", daemon=True)
        thread.start()

        def result():
            thread.join()
            if failure:
                raise failure[0]
        return result

    def check_sizes(self):
        """Every listed file exists with its listed size (cheap: no data is read)."""
        for name, want in self.inventory["files"].items():
            try:
                size = os.stat(self.path(name)).st_size
            except FileNotFoundError:
                raise ImageError(f"{self.dir}: {name} is missing") from None
            if size != want.get("size"):
                raise ImageError(f"{self.dir}/{name}: damaged (size {size}, inventory says "
                                 f"{want.get('size')})")

    def _check(self, name, size, crc):
        want = self.inventory["files"].get(name, {})
        if want.get("size") != size:
            raise ImageError(f"{self.dir}/{name}: damaged (size {size}, "
                             f"inventory says {want.get('size')})")
        if want.get("crc32") != f"{crc:08x}":
            raise ImageError(f"{self.dir}/{name}: damaged (checksum mismatch)")
