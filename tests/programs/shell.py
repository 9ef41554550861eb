"""A minimal job-control shell for the engine's --shell-job tests: it becomes a session
leader with the terminal argv[1] as its controlling terminal, then runs each command it reads
(one JSON argv per line on stdin) with the terminal as stdin/stdout/stderr, in its own session
and process group, and answers {"pid": ..., "status": ...} per line on stdout.  A command
whose argv starts with "&" runs in the background (answer at once, pid only)."""

import fcntl
import json
import os
import subprocess
import sys
import termios

os.setsid()
tty = os.open(sys.argv[1], os.O_RDWR)
fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
for line in sys.stdin:
    argv = json.loads(line)
    background = argv[0] == "&"
    proc = subprocess.Popen(argv[1:] if background else argv, stdin=tty, stdout=tty,
                            stderr=tty, close_fds=True)
    status = None if background else proc.wait()
    print(json.dumps({"pid": proc.pid, "status": status}), flush=True)
