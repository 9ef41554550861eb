"""Pseudo-terminals whose both ends the tree holds: the pair, its index in its devpts
instance, and the state a program can see (termios of both ends, window size, packet mode,
lock, exclusive mode).

Dump: every master and slave fd is described by its end, index and devpts instance (the
master's by TIOCGPTN and an O_PATH peer from TIOCGPTPEER, which opens nothing; both ends
by the path they were opened by, on the tree's mounts or ours); once every
fd is seen (``finish``) the pairs are checked and their state read, with the session whose
controlling terminal a pty is and its foreground group.  A slave whose master the tree does
not hold is the terminal of a shell job (``--shell-job``), else refused; data queued either
way is refused (not carried yet).
Restore: per devpts instance, the master's ptmx is opened until each dumped index comes
out (the indices between are closed again afterwards), the state set back, the slaves
opened by their paths.  A session leader's stub makes its pty its controlling terminal
right after its setsid() (its children inherit it: ``ctty_of``); the restorer sets the
foreground group from inside the session once all its processes are in their groups
(``foreground``).
"""

import fcntl
import os
import struct
import termios

from kernel import fds as kfds

from .errors import RestoreError, Unsupported

KIND = "pty"
PTMX = (5, 2)
SLAVE_MAJORS = range(136, 144)          # UNIX98_PTY_SLAVE_MAJOR .. + 8
_WINSIZE = struct.Struct("HHHH")
_OPEN = os.O_ACCMODE | os.O_NOCTTY | os.O_NONBLOCK | os.O_APPEND     # as dumped
_SETFL = os.O_NONBLOCK | os.O_APPEND


def is_pty(dev):
    return dev == PTMX or dev[0] in SLAVE_MAJORS


def describe(table, pid, fd, link, st, flags, mnt_id, what):
    """The description of a pty end (the pair is checked in ``PtyDump.finish``); a
    master's ``ptmx``: the path it was opened by (/dev/ptmx, or a devpts's ptmx), which
    gives the instance at restore too."""
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
    dup = table.dup(pid, fd)
    if rdev == PTMX:
        index = kfds.ioctl_get_int(dup, kfds.TIOCGPTN)
        peer = fcntl.ioctl(dup, kfds.TIOCGPTPEER, os.O_PATH | os.O_NOCTTY | os.O_CLOEXEC)
        instance = os.fstat(peer).st_dev
        os.close(peer)
        end = "master"
    else:
        index = (rdev[0] - SLAVE_MAJORS[0]) * 256 + rdev[1]
        instance = st.st_dev
        end = "slave"
    desc = {"type": KIND, "end": end, "index": index,
            "devpts": f"{os.major(instance)}:{os.minor(instance)}", "flags": flags,
            "path": link}
    if end == "master":
        desc["ptmx"] = table.at_mount({"path": link}, mnt_id, link, what)
    else:
        table.at_mount(desc, mnt_id, link, what)
    table.kinds.setdefault(KIND, PtyDump()).add(desc, dup, what)
    return desc


class PtyDump:
    """The pty ends of a dump, paired once every fd is seen."""

    def __init__(self):
        self.ends = {}              # (devpts, index) -> {"master": [...], "slave": [...]}

    def add(self, desc, fd, what):
        pair = self.ends.setdefault((desc["devpts"], desc["index"]), {"master": [],
                                                                      "slave": []})
        pair[desc["end"]].append((desc, fd, what))

    def finish(self, table):
        for (devpts, index), pair in self.ends.items():
            if not pair["master"]:
                self._shell_terminal(table, pair["slave"])
                continue
            desc, master, what = pair["master"][0]
            if len(pair["master"]) > 1:
                raise Unsupported(f"unsupported: the pty master {index} is open twice "
                                  f"({what} and {pair['master'][1][2]}; a master cannot be "
                                  f"opened again)")
            if not pair["slave"]:
                raise Unsupported(f"unsupported: pty {index} ({what}): no fd of the tree "
                                  f"holds its slave")
            slave = pair["slave"][0][1]
            for fd, who, end in ((master, what, "master"), (slave, pair["slave"][0][2],
                                                            "slave")):
                queued = kfds.ioctl_get_int(fd, termios.FIONREAD) or \
                    kfds.ioctl_get_int(fd, termios.TIOCOUTQ)
                if queued:
                    raise Unsupported(f"unsupported: pty {index} ({who}): {queued} bytes "
                                      f"queued at its {end}")
            desc["state"] = {
                "master_termios": _termios(master), "slave_termios": _termios(slave),
                "winsize": list(_WINSIZE.unpack(fcntl.ioctl(slave, termios.TIOCGWINSZ,
                                                            bytes(8)))),
                "packet": kfds.ioctl_get_int(master, kfds.TIOCGPKT),
                "locked": kfds.ioctl_get_int(master, kfds.TIOCGPTLCK),
                "exclusive": kfds.ioctl_get_int(slave, kfds.TIOCGEXCL)}
            ctty = self._session(table, master, index, what)
            if ctty:
                ctty["slave"] = next(fid for fid, d in table.files.items()
                                     if d is pair["slave"][0][0])
                desc["state"]["ctty"] = ctty

    @staticmethod
    def _session(table, master, index, what):
        """{"leader", "foreground"} (pids as we number them) of the session whose
        controlling terminal the pty is, if any (asked through the master, which answers
        anyone); its leader must be a live process of the tree."""
        try:
            session = kfds.ioctl_get_int(master, kfds.TIOCGSID)
        except OSError:             # ENOTTY: no session's
            return None
        leader = table.injected.get(session)
        if leader is None:
            raise Unsupported(f"unsupported: pty {index} ({what}) is the controlling "
                              f"terminal of session {session}, whose leader is not a live "
                              f"process of the tree")
        return {"leader": session, "foreground": kfds.ioctl_get_int(master, kfds.TIOCGPGRP)}

    @staticmethod
    def _shell_terminal(table, slaves):
        """Slaves whose master is outside: the terminal a shell job runs on."""
        desc, _, what = slaves[0]
        if not table.shell_job:
            raise Unsupported(f"unsupported: terminal {desc['path']} ({what}; a shell job "
                              f"needs --shell-job)")
        for desc, _, _ in slaves:
            for key in ("end", "index", "devpts"):
                del desc[key]
            desc["type"] = "tty"

    def close(self, final):
        for pair in self.ends.values():
            for _, fd, _ in pair["master"] + pair["slave"]:
                os.close(fd)
        self.ends = {}


def _termios(fd):
    """tcgetattr's list with the control characters as numbers (tcsetattr takes them so)."""
    *flags, cc = termios.tcgetattr(fd)
    return flags + [[c if isinstance(c, int) else c[0] for c in cc]]


class PtyOpener:
    """The restorer's side: the pairs of an image, made on first need, per instance."""

    def __init__(self, files, open_path):
        self.files = files
        self.open_path = open_path      # OpenFiles.open_path
        self.made = {}                  # (devpts, index) -> (master fd, slave fd)

    def open(self, file_id, desc):
        key = (desc["devpts"], desc["index"])
        if key not in self.made:
            self._instance(desc["devpts"])
        master, slave, _ = self.made[key]
        if desc["end"] == "master":
            fd = os.dup(master)         # the master's one description
            fcntl.fcntl(fd, fcntl.F_SETFL, desc["flags"] & _SETFL)
            return fd
        # by its path (an open by TIOCGPTPEER keeps O_NOCTTY and O_CLOEXEC in the file's
        # flags, and lacks O_LARGEFILE: not as the tree's open(2) left them)
        return self.open_path(desc, desc["flags"] & _OPEN | os.O_NOCTTY)

    def _instance(self, devpts):
        masters = sorted((d for d in self.files.values() if d["type"] == KIND and
                          d["devpts"] == devpts and d["end"] == "master"),
                         key=lambda d: d["index"])
        spare = []
        try:
            for desc in masters:
                master = self._master(desc, spare)
                state = desc["state"]
                kfds.ioctl_set_int(master, kfds.TIOCSPTLCK, 0)
                slave = fcntl.ioctl(master, kfds.TIOCGPTPEER,
                                    os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
                termios.tcsetattr(master, termios.TCSANOW, state["master_termios"])
                termios.tcsetattr(slave, termios.TCSANOW, state["slave_termios"])
                fcntl.ioctl(slave, termios.TIOCSWINSZ, _WINSIZE.pack(*state["winsize"]))
                kfds.ioctl_set_int(master, kfds.TIOCPKT, state["packet"])
                self.made[devpts, desc["index"]] = (master, slave, state)
        finally:
            for fd in spare:            # the indices between: free again
                os.close(fd)

    def _master(self, desc, spare):
        """A new master of ``desc``'s instance with its dumped index."""
        for _ in range(desc["index"] + 1):
            fd = self.open_path(desc["ptmx"], desc["flags"] & _OPEN)
            index = kfds.ioctl_get_int(fd, kfds.TIOCGPTN)
            if index == desc["index"]:
                return fd
            spare.append(fd)
            if index > desc["index"]:
                break
        raise RestoreError(f"pty {desc['index']} of the devpts {desc['ptmx']['path']} "
                           f"opens is taken", "files")

    def finish(self):
        """Once every end is open: the lock and the exclusive mode (which refuses further
        opens of the slave) as they were; our own ends closed (the stubs hold theirs)."""
        for master, slave, state in self.made.values():
            if state["exclusive"]:
                fcntl.ioctl(slave, kfds.TIOCEXCL)
            if state["locked"]:
                kfds.ioctl_set_int(master, kfds.TIOCSPTLCK, 1)
            os.close(slave)
            os.close(master)
        self.made = {}


def ctty_of(files):
    """{session leader (pid as dumped): the id of a slave description of its controlling
    terminal} of an image's files."""
    return {d["state"]["ctty"]["leader"]: d["state"]["ctty"]["slave"]
            for d in files.values() if d["type"] == KIND and "ctty" in d.get("state", {})}


def take_ctty(fd):
    """In a session leader's stub, after its setsid(): the pty ``fd`` is its controlling
    terminal."""
    fcntl.ioctl(fd, kfds.TIOCSCTTY, 0)


def foreground(files, procs, order):
    """[(pid, slave description id, foreground group as the pid numbers it)]: for each
    controlling terminal, the process of its session restored last (its members all in
    their groups by then) that sets the foreground group from inside."""
    out = []
    for d in files.values():
        ctty = d.get("state", {}).get("ctty") if d["type"] == KIND else None
        if not ctty:
            continue
        members = [p for p in order if procs[p]["sid"] == ctty["leader"] and
                   not procs[p]["zombie"]]
        group = [p for p in order if procs[p]["pgid"] == ctty["foreground"]]
        if members and group:
            out.append((members[-1], ctty["slave"], group[0]))
    return out
