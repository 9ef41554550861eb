"""Tiny BPF programs for what user space may not do to a map itself: pop and push back a
frozen queue or stack (freezing refuses writes through the syscall, not from programs) and
write records into a ring buffer (only programs produce into one).

Each is a socket filter assembled here and run once per element by BPF_PROG_TEST_RUN; it
reaches the element through a one-slot staging array that the engine reads and writes with
plain syscalls.  Every program starts by looking that slot up:

    *(u32 *)(r10 - 4) = 0; r0 = bpf_map_lookup_elem(staging, r10 - 4); if !r0: return 1
"""

import os
import struct

from kernel import bpf

_ZERO_KEY = bytes(4)
_NO_SLOT = 1                          # what a program returns when the lookup failed


def _program(staging_fd, body):
    """The slot lookup, then ``body`` (insns that find the slot's address in r0)."""
    prelude = (bpf.insn(0x62, 10, 0, -4, 0) +              # *(u32 *)(r10 - 4) = 0
               bpf.ld_map_fd(1, staging_fd) +
               bpf.insn(0xbf, 2, 10) + bpf.insn(0x07, 2, 0, 0, -4) +   # r2 = r10 - 4
               bpf.insn(0x85, 0, 0, 0, bpf.FUNC_MAP_LOOKUP_ELEM))
    skip = len(body) // 8                                  # if r0 == 0: to the tail
    tail = bpf.insn(0xb7, 0, 0, 0, _NO_SLOT) + bpf.insn(0x95)
    code = prelude + bpf.insn(0x15, 0, 0, skip, 0) + body + tail
    return bpf.prog_load(bpf.PROG_TYPE_SOCKET_FILTER, code, log_size=1 << 16)


def _call_on_slot(map_fd, helper, flags=None):
    """r2 = the slot; r1 = map; [r3 = flags]; call helper; return its result."""
    return (bpf.insn(0xbf, 2, 0) + bpf.ld_map_fd(1, map_fd) +
            (bpf.insn(0xb7, 3, 0, 0, flags) if flags is not None else b"") +
            bpf.insn(0x85, 0, 0, 0, helper) + bpf.insn(0x95))


class _Staged:
    """A one-slot array of ``value_size`` bytes and the programs made over it."""

    def __init__(self, value_size):
        self.value_size = value_size
        self.slot = bpf.map_create(bpf.MAP_TYPES["array"], 4, value_size, 1)
        self.programs = []

    def load(self, body):
        self.programs.append(_program(self.slot, body))
        return self.programs[-1]

    def put(self, value):
        bpf.map_update(self.slot, _ZERO_KEY, value.ljust(self.value_size, b"\0"))

    def get(self):
        return bpf.map_lookup(self.slot, _ZERO_KEY, self.value_size)

    def close(self):
        for fd in self.programs + [self.slot]:
            os.close(fd)


class FrozenQueue(_Staged):
    """pop() and push() on a queue or stack, frozen or not."""

    def __init__(self, map_fd, value_size):
        super().__init__(value_size)
        try:
            self._pop = self.load(_call_on_slot(map_fd, bpf.FUNC_MAP_POP_ELEM))
            self._push = self.load(_call_on_slot(map_fd, bpf.FUNC_MAP_PUSH_ELEM, 0))
        except BaseException:
            self.close()
            raise

    def pop(self):
        """The next value, or None when the map is empty."""
        return self.get() if bpf.prog_test_run(self._pop) == 0 else None

    def push(self, value):
        self.put(value)
        result = bpf.prog_test_run(self._push)      # 0 or -errno, as a u32
        if result:
            raise OSError((1 << 32) - result, "bpf_map_push_elem failed")


def ring_output(ring_fd, records):
    """Write each of ``records`` (bytes) into a ring buffer as one record, in order."""
    if not records:
        return
    longest = max(len(r) for r in records)
    staged = _Staged(8 + (longest + 7) // 8 * 8)        # u32 length, pad, the bytes
    try:
        limit = staged.value_size - 8
        body = (bpf.insn(0x61, 3, 0, 0) +                    # r3 = *(u32 *)(r0 + 0)
                bpf.insn(0x25, 3, 0, 7, limit) +             # if r3 > limit: to the tail
                bpf.insn(0xbf, 2, 0) + bpf.insn(0x07, 2, 0, 0, 8) +     # r2 = r0 + 8
                bpf.ld_map_fd(1, ring_fd) + bpf.insn(0xb7, 4, 0, 0, 0) +
                bpf.insn(0x85, 0, 0, 0, bpf.FUNC_RINGBUF_OUTPUT) + bpf.insn(0x95))
        output = staged.load(body)
        for record in records:
            staged.put(struct.pack("<I4x", len(record)) + record)
            if bpf.prog_test_run(output):
                raise OSError(28, "bpf_ringbuf_output: the ring buffer is full")  # ENOSPC
    finally:
        staged.close()
