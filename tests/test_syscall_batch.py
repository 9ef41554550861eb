"""cr_engine.syscall_batch: lists of system calls run inside a real ptrace-stopped child in
one go - results, a failure stopping the batch at its entry, calls that may fail, signals
that arrive meanwhile, and the thread left as it was (registers, mask, dispositions,
mappings)."""

import errno
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

from cr_engine import proc
from cr_engine.regs import get_regs, set_regs
from cr_engine.remote import SEIZE_OPTIONS, Remote, Scratch, find_syscall_insn, wait_stop
from cr_engine.syscall_batch import SI_TKILL, BatchError, Call, SyscallBatch
from kernel import memory as kmem
from kernel import ptrace

PAGE = kmem.PAGE_SIZE
RW = kmem.PROT_READ | kmem.PROT_WRITE
ANON = kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS
# the child ignores and blocks SIGTRAP: a batch must leave both so (an int3 would not)
CHILD = """
import signal, sys, time
signal.signal(signal.SIGTRAP, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTRAP})
print("ready", flush=True)
time.sleep(600)
"""


class Stopped:
    """A child seized and stopped, with a Remote and a scratch area mapped in it."""

    def __init__(self, scratch_size):
        self.popen = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE)
        assert self.popen.stdout.readline() == b"ready\n"
        self.pid = self.popen.pid
        ptrace.seize(self.pid, SEIZE_OPTIONS)
        ptrace.interrupt(self.pid)
        while wait_stop(self.pid).event != ptrace.EVENT_STOP:
            ptrace.cont(self.pid)
        self.regs, self.maps = get_regs(self.pid), maps(self.pid)
        self.rem = Remote(self.pid, find_syscall_insn(self.pid, proc.maps(self.pid)))
        addr = self.rem.call("mmap", 0, scratch_size, RW, ANON, -1, 0)
        self.scratch = Scratch(self.pid, addr, scratch_size)

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            return next(line.split()[1] for line in f if line.startswith(key + ":"))

    def kill(self):
        self.popen.kill()
        self.popen.wait()


@pytest.fixture
def stopped():
    made = []

    def make(scratch_size=64 << 10):
        made.append(Stopped(scratch_size))
        return made[-1]
    yield make
    for child in made:
        child.kill()


def maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def vma_at(pid, addr):
    return next((v for v in proc.maps(pid) if v.start <= addr < v.end), None)


def free_area(child, size):
    """An address range of ``size`` bytes the child does not map."""
    at = child.rem.call("mmap", 0, size, kmem.PROT_NONE, ANON, -1, 0)
    child.rem.call("munmap", at, size)
    return at


def test_a_batch_of_mmaps_and_mprotects_over_several_runs(stopped):
    child = stopped(scratch_size=16 << 10)      # room for some 250 calls a run
    batch = SyscallBatch(child.rem, child.scratch)
    count = 1500
    base = free_area(child, count * PAGE)
    calls = [Call("mmap", (base + i * PAGE, PAGE, RW, ANON | kmem.MAP_FIXED, -1, 0))
             for i in range(count)]
    calls += [Call("mprotect", (base + i * PAGE, PAGE, kmem.PROT_READ))
              for i in range(1, count, 2)]      # alternating: no two merge
    results = batch.run(calls)
    assert results == [base + i * PAGE for i in range(count)] + [0] * (count // 2)
    for i in (0, 1, count - 2, count - 1):
        vma = vma_at(child.pid, base + i * PAGE)
        assert (vma.start, vma.end) == (base + i * PAGE, base + (i + 1) * PAGE)
        assert vma.perms == ("r--p" if i % 2 else "rw-p")
    assert batch.run([Call("munmap", (base, count * PAGE))]) == [0]
    assert batch.run([]) == []
    batch.close()
    child.rem.call("munmap", child.scratch.addr, child.scratch.size)
    assert maps(child.pid) == child.maps        # nothing of the batch's is left


def test_a_failure_stops_the_batch_at_its_entry(stopped):
    child = stopped()
    batch = SyscallBatch(child.rem, child.scratch)
    base = free_area(child, 4 * PAGE)
    calls = [Call("mmap", (base, PAGE, RW, ANON | kmem.MAP_FIXED, -1, 0)),
             Call("mprotect", (base, PAGE, kmem.PROT_READ)),
             Call("madvise", (base, PAGE, 12345), may_fail=True),    # no such advice
             Call("mmap", (base + PAGE, 0, RW, ANON | kmem.MAP_FIXED, -1, 0)),  # EINVAL
             Call("mmap", (base + 2 * PAGE, PAGE, RW, ANON | kmem.MAP_FIXED, -1, 0))]
    with pytest.raises(BatchError) as e:
        batch.run(calls)
    assert (e.value.index, e.value.call, e.value.errno) == (3, "mmap", errno.EINVAL)
    assert e.value.results == [base, 0, -errno.EINVAL, -errno.EINVAL]
    assert vma_at(child.pid, base).perms == "r--p"
    assert vma_at(child.pid, base + 2 * PAGE) is None      # after the failure: not run
    # the last call of a run failing is caught too; one that may fail is a result
    with pytest.raises(BatchError) as e:
        batch.run([Call("getpid"), Call("close", (-1,))])
    assert (e.value.index, e.value.errno) == (1, errno.EBADF)
    assert batch.run([Call("close", (-1,), may_fail=True), Call("getppid")]) == \
        [-errno.EBADF, os.getpid()]
    batch.close()


def test_the_thread_is_left_as_it_was(stopped):
    child = stopped()
    mask = ptrace.getsigmask(child.pid)
    ignored = child.status("SigIgn")
    trap = 1 << (signal.SIGTRAP - 1)
    assert mask & trap and int(ignored, 16) & trap
    batch = SyscallBatch(child.rem, child.scratch)
    after_setup = get_regs(child.pid).as_dict()
    assert batch.run([Call("getpid")] * 100) == [child.pid] * 100
    assert get_regs(child.pid).as_dict() == after_setup
    assert ptrace.getsigmask(child.pid) == mask
    assert child.status("SigIgn") == ignored        # SIGTRAP still ignored
    assert child.status("SigPnd") == child.status("ShdPnd") == "0" * 16
    assert child.rem.caught_signals == []
    batch.close()


def test_signals_that_arrive_during_a_batch_are_caught_and_suppressed(stopped):
    child = stopped()
    batch = SyscallBatch(child.rem, child.scratch)
    # 40 sleeps of 10 ms: an interrupted one goes on (restarted) after the signal
    ts = child.scratch.put(struct.pack("qq", 0, 10_000_000))
    sent = []

    def send():
        for sig in (signal.SIGUSR1, signal.SIGTRAP, signal.SIGUSR2):
            time.sleep(0.03)
            os.kill(child.pid, sig)
            sent.append(sig)
    sender = threading.Thread(target=send)
    t0 = time.monotonic()
    sender.start()
    try:
        results = batch.run([Call("nanosleep", (ts, 0))] * 40)
    finally:
        sender.join()
    assert time.monotonic() - t0 >= 0.4
    assert results == [0] * 40
    caught = [struct.unpack_from("<iii", info) for info in child.rem.caught_signals]
    assert sorted(signo for signo, _, _ in caught) == sorted(sent)
    assert all(code != SI_TKILL for _, _, code in caught)   # not the batch's own stop
    batch.close()
    # suppressed: let go where it slept, the child lives on (SIGUSR1 would kill it)
    set_regs(child.pid, child.regs)
    ptrace.detach(child.pid)
    time.sleep(0.1)
    assert child.popen.poll() is None
