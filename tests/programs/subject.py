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
