"""A process to checkpoint in the engine's own tests: it holds one object of the kind named
by argv[1], writes "ready" to argv[2], counts until SIGTERM, then writes "alive N" to argv[2]
and exits 0.  That it answers at all after a failed dump proves the dump left it running."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

kind, result = sys.argv[1], sys.argv[2]
held = None
if kind == "socket":
    held = socket.socketpair()
elif kind == "io_uring":
    from kernel import io_uring
    held = io_uring.setup(4, io_uring.Params())
elif kind == "fds":                     # one of each fd kind `show` decodes
    import ctypes
    import fcntl
    import struct
    from kernel import fds
    from kernel.libc import syscall
    workdir = os.path.dirname(os.path.abspath(result))
    timer = fds.timerfd_create()
    spec = ctypes.create_string_buffer(struct.pack("qqqq", 2, 0, 50, 0))
    syscall("timerfd_settime", timer, 0, spec, None)
    notify = fds.inotify_init1()
    fds.inotify_add_watch(notify, workdir, 0x100)          # IN_CREATE
    memfd = os.memfd_create("subject", os.MFD_ALLOW_SEALING)
    os.write(memfd, b"memfd data")
    fcntl.fcntl(memfd, 1033, 0x4)                           # F_ADD_SEALS, F_SEAL_GROW
    unlinked = os.open(os.path.join(workdir, "gone"), os.O_RDWR | os.O_CREAT, 0o600)
    os.write(unlinked, b"unlinked data")
    os.unlink(os.path.join(workdir, "gone"))
    locked = os.open(os.path.join(workdir, "locked"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(locked, fcntl.LOCK_EX)
    held = [os.eventfd(5, os.EFD_SEMAPHORE), timer, fds.signalfd([signal.SIGUSR1]), notify,
            memfd, unlinked, locked]
elif kind == "pidns":
    from kernel import namespaces
    namespaces.unshare(namespaces.CLONE_NEWPID)
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        os._exit(0)

stop = False


def on_term(*_):
    global stop
    stop = True


def put(text):
    with open(result + ".tmp", "w") as f:
        f.write(text)
    os.rename(result + ".tmp", result)


signal.signal(signal.SIGTERM, on_term)
put(f"ready {os.getpid()}")
count = 0
while not stop:
    count += 1
    time.sleep(0.005)
put(f"alive {count}")
