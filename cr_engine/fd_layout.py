"""Laying inherited fds out onto chosen numbers with about as many fds open at once as
there are to place (a process near its fd limit has no room for a copy of each).

An fd is moved out of the way only when a number it sits on is wanted, to the lowest free
number above every number in play, and let go after its last use.
"""

import fcntl
import os


class Layout:
    """Where each of our fds is now (``at``: fd -> number) as numbers get taken."""

    def __init__(self, fds, top):
        self.top = top                              # above every number in play
        self.at = {fd: fd for fd in fds}
        self.holds = {fd: fd for fd in fds}         # number -> our fd there

    def place(self, fd, number, inheritable=False):
        """Make ``number`` a copy of ``fd`` (whatever of ours sat there moved first);
        returns the fd moved out of the way, or None."""
        moved = None
        if self.at[fd] == number:
            del self.holds[number]                  # it is where it belongs now
            os.set_inheritable(number, inheritable)
            return None
        if number in self.holds:
            moved = self.holds.pop(number)
            self.at[moved] = fcntl.fcntl(number, fcntl.F_DUPFD_CLOEXEC, self.top)
            self.holds[self.at[moved]] = moved
        os.dup2(self.at[fd], number, inheritable=inheritable)
        return moved

    def release(self, fd):
        """Close ``fd`` where it is, unless its number was placed."""
        number = self.at[fd]
        if self.holds.get(number) == fd:
            del self.holds[number]
            os.close(number)

    def close_rest(self):
        for number in self.holds:
            os.close(number)
        self.holds = {}
