"""What unix and inet sockets share: a look at a socket through a copy of its fd, the
socket-level options users set, and reading a receive queue without taking from it.

Dump looks at a socket through pidfd_getfd(): the copy is the same socket, so what it reads
is the process's own state.  Queues are read with MSG_PEEK from SO_PEEK_OFF 0 (the offset
moves with each peek, so every queued byte is seen once) and the offset is put back as the
process had it.  Restore sets on a new socket only the options whose dumped value differs
from what a new socket has, so the kernel's own choices (buffer auto-tuning, which stops
once a size is set) stay the kernel's.
"""

import errno
import socket
import struct
import time

from .errors import RestoreError, Unsupported

KINDS = ("unix", "inet")
SO_PEEK_OFF = 42
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
IP_FREEBIND, IP_TRANSPARENT = 15, 19
PEEK_BUF = 1 << 20              # larger than any datagram a unix or UDP socket can queue
RIGHTS_MAX = 253                # SCM_MAX_FD: fds one message can carry

# name -> (level, option, format): "i" an int, "qq" a timeval, "ii" a linger, "s" a string
OPTIONS = {
    "sndbuf": (socket.SOL_SOCKET, socket.SO_SNDBUF, "i"),
    "rcvbuf": (socket.SOL_SOCKET, socket.SO_RCVBUF, "i"),
    "passcred": (socket.SOL_SOCKET, socket.SO_PASSCRED, "i"),
    "passsec": (socket.SOL_SOCKET, 34, "i"),
    "rcvtimeo": (socket.SOL_SOCKET, socket.SO_RCVTIMEO, "qq"),
    "sndtimeo": (socket.SOL_SOCKET, socket.SO_SNDTIMEO, "qq"),
    "keepalive": (socket.SOL_SOCKET, socket.SO_KEEPALIVE, "i"),
    "reuseaddr": (socket.SOL_SOCKET, socket.SO_REUSEADDR, "i"),
    "reuseport": (socket.SOL_SOCKET, socket.SO_REUSEPORT, "i"),
    "broadcast": (socket.SOL_SOCKET, socket.SO_BROADCAST, "i"),
    "dontroute": (socket.SOL_SOCKET, socket.SO_DONTROUTE, "i"),
    "oobinline": (socket.SOL_SOCKET, socket.SO_OOBINLINE, "i"),
    "priority": (socket.SOL_SOCKET, socket.SO_PRIORITY, "i"),
    "mark": (socket.SOL_SOCKET, socket.SO_MARK, "i"),
    "rcvlowat": (socket.SOL_SOCKET, socket.SO_RCVLOWAT, "i"),
    "linger": (socket.SOL_SOCKET, socket.SO_LINGER, "ii"),
    "timestamp": (socket.SOL_SOCKET, 29, "i"),
    "bindtodevice": (socket.SOL_SOCKET, socket.SO_BINDTODEVICE, "s"),
    "no_check": (socket.SOL_SOCKET, 11, "i"),
    "peek_off": (socket.SOL_SOCKET, SO_PEEK_OFF, "i"),
    # IP, IPv6, TCP and UDP levels (inet_sockets picks those of each socket)
    "v6only": (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, "i"),
    "freebind": (socket.IPPROTO_IP, IP_FREEBIND, "i"),
    "transparent": (socket.IPPROTO_IP, IP_TRANSPARENT, "i"),
    "tos": (socket.IPPROTO_IP, socket.IP_TOS, "i"),
    "ttl": (socket.IPPROTO_IP, socket.IP_TTL, "i"),
    "tclass": (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, "i"),
    "hoplimit": (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, "i"),
    "nodelay": (socket.IPPROTO_TCP, socket.TCP_NODELAY, "i"),
    "cork": (socket.IPPROTO_TCP, socket.TCP_CORK, "i"),
    "keepidle": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, "i"),
    "keepintvl": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, "i"),
    "keepcnt": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, "i"),
    "user_timeout": (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, "i"),
    "congestion": (socket.IPPROTO_TCP, socket.TCP_CONGESTION, "s"),
    "defer_accept": (socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, "i"),
    "quickack": (socket.IPPROTO_TCP, socket.TCP_QUICKACK, "i"),
    "udp_cork": (socket.IPPROTO_UDP, 1, "i"),
}
# set through their *FORCE twins (root may pass the sysctl limits) with half the value:
# the kernel doubles what it is given and reports the doubled size
_FORCED = {"sndbuf": SO_SNDBUFFORCE, "rcvbuf": SO_RCVBUFFORCE}


def describe(table, pid, fd, flags, what):
    """The image of the socket at ``fd`` of ``pid``."""
    sock = socket.socket(fileno=table.dup(pid, fd))
    try:
        family = sock.family
        if family == socket.AF_UNIX:
            from . import unix_sockets
            return unix_sockets.describe(table, sock, flags, what)
        if family in (socket.AF_INET, socket.AF_INET6):
            from . import inet_sockets
            return inet_sockets.describe(table, sock, flags, what)
        name = family.name if isinstance(family, socket.AddressFamily) else f"family {family}"
        raise Unsupported(f"unsupported: {name} socket ({what})")
    finally:
        sock.close()


def read_options(sock, names=OPTIONS):
    """{name: value} of the options in ``names`` this kind of socket answers."""
    out = {}
    for name in names:
        level, option, fmt = OPTIONS[name]
        try:
            if fmt == "i":
                out[name] = sock.getsockopt(level, option)
            elif fmt == "s":
                out[name] = sock.getsockopt(level, option, 16).rstrip(b"\0").decode()
            else:
                out[name] = list(struct.unpack(fmt, sock.getsockopt(
                    level, option, struct.calcsize(fmt))))
        except OSError as e:
            if e.errno not in (errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EINVAL):
                raise
    return out


def apply_options(sock, options, what):
    """Set the dumped options that differ from the new socket's."""
    now = read_options(sock, options)
    for name, value in options.items():
        if now.get(name) == value:
            continue
        level, option, fmt = OPTIONS[name]
        try:
            if name in _FORCED:
                sock.setsockopt(level, _FORCED[name], value // 2)
            elif fmt == "i":
                sock.setsockopt(level, option, value)
            elif fmt == "s":
                sock.setsockopt(level, option, value.encode())
            else:
                sock.setsockopt(level, option, struct.pack(fmt, *value))
        except OSError as e:
            raise RestoreError(f"cannot set {name}={value} on {what}: {e.strerror}",
                               "files") from None


def peek_queue(sock, eof_at_empty):
    """[(data, [fd, ...], sender address)] of what is queued on ``sock``, read without
    taking it; carried fds (SCM_RIGHTS) come as new fds of this process (close-on-exec),
    the caller owns them.  A stream is read in pieces that end where a piece carries fds.
    ``eof_at_empty``: an empty read is the end of the queue, not a zero-length message (a
    stream, or a seqpacket socket shut for reading: its end of queue reads as an empty
    message for ever, while a peeked zero-length message is read once, then skipped)."""
    old = sock.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF)
    sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
    anc = socket.CMSG_SPACE(RIGHTS_MAX * 4) + socket.CMSG_SPACE(12)
    out = []
    try:
        while True:
            try:
                data, ancdata, _, addr = sock.recvmsg(
                    PEEK_BUF, anc, socket.MSG_PEEK | socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                break
            fds = rights(ancdata)
            if eof_at_empty and not data and not fds:
                break
            out.append((data, fds, addr))
    finally:
        sock.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, old)
    return out


def rights(ancdata):
    """The fds of the SCM_RIGHTS messages in recvmsg's ancillary data."""
    fds = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds += struct.unpack(f"{usable // 4}i", data[:usable])
    return fds


def send_all(sock, data, fds=(), to=None, buffer="snd", chunk=None):
    """Queue ``data`` (one message, or a stream in pieces of ``chunk``) on the socket at the
    other end, or in a repair-mode TCP socket's own queue; while the ``buffer`` ("snd" or
    "rcv") is short, raise it: what was queued at dump fits a new socket's defaults only by
    chance."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    view, first, raised = memoryview(data), True, False
    while first or view:
        try:
            sent = sock.sendmsg([view[:chunk] if chunk else view], anc,
                               socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL,
                               *([to] if to is not None else []))
        except OSError as e:
            # EAGAIN: the send buffer; ENOMEM: a repair-mode receive queue over its buffer
            if raised or e.errno not in (errno.EAGAIN, errno.ENOMEM):
                raise                   # not the buffer: the receiver's queue is full
            grow_buffer(sock, buffer, len(view))
            raised = True
            continue
        view, anc, first, raised = view[sent:], [], False, False


def grow_buffer(sock, which, room):
    """Raise a socket's "snd" or "rcv" buffer by ``room`` bytes and then some (the *FORCE
    options pass the sysctl limits)."""
    size_option, force = {"snd": (socket.SO_SNDBUF, SO_SNDBUFFORCE),
                          "rcv": (socket.SO_RCVBUF, SO_RCVBUFFORCE)}[which]
    size = sock.getsockopt(socket.SOL_SOCKET, size_option)
    sock.setsockopt(socket.SOL_SOCKET, force, size + 2 * room + 65536)


def restore_all(files, payload, fds):
    """Make every socket of the image, adding id -> fd to ``fds`` (which holds every other
    description already: a unix socket's queue may carry any of them).  Returns what
    `go_live` needs once the tree is restored."""
    by_kind = {kind: {i: d for i, d in files.items() if d["type"] == kind} for kind in KINDS}
    unsent = {}
    if by_kind["inet"]:
        from . import inet_sockets
        unsent = inet_sockets.restore(by_kind["inet"], payload, fds)
    if by_kind["unix"]:
        from . import unix_sockets
        unix_sockets.restore(by_kind["unix"], payload, fds)
    return unsent


def go_live(files, fds, unsent):
    """TCP connections restored in repair mode start working (inet_sockets.go_live)."""
    if unsent:
        from . import inet_sockets
        inet_sockets.go_live(files, fds, unsent)


def wait_gone(inodes, timeout=1.0):
    """Wait until none of the sockets ``inodes`` exists any more in our network namespace
    (bounded); the ones still there at the end."""
    deadline = time.monotonic() + timeout
    while inodes:
        inodes = inodes & _socket_inodes()
        if not inodes or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    return inodes


def _socket_inodes():
    """Inodes of the unix, TCP and UDP sockets /proc/net lists."""
    out = set()
    for name, column in (("unix", 6), ("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9)):
        try:
            with open(f"/proc/net/{name}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        out |= {int(fields[column]) for fields in map(str.split, lines) if len(fields) > column}
    return out
