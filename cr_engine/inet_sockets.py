"""TCP and UDP sockets over IPv4 and IPv6: unconnected and bound, listening, established
(with the data in both queues, through TCP_REPAIR), UDP bound and connected with the
datagrams queued on them.

Dump.  A socket is looked at through a copy of its fd (sockets.describe).  Established
connections are read once every fd of the tree is seen (`finish`): first the network lock,
a nf_tables table (kernel.nftables) dropping every segment of these connections both ways,
so that nothing moves while they are read and, for a peer outside the tree, nothing reaches
the closed socket (a RST would kill the peer's end) until the restore; then each socket is
put in repair mode, which also keeps it from sending anything, even when it is closed:
  - sequence numbers of both queues (TCP_QUEUE_SEQ), their content (MSG_PEEK of the
    queue TCP_REPAIR_QUEUE selects), how much of the send queue was never sent
    (SIOCOUTQNSD);
  - the options negotiated at connect (MSS, window scales, SACK, timestamps), the
    timestamp clock (TCP_TIMESTAMP) and the windows (TCP_REPAIR_WINDOW).
A connection whose peer is not in the tree is refused unless the dump is asked to carry it
(``tcp_established``, CRIU's --tcp-established); its lock then outlives the dump and the
restore lifts it.  A connection with both ends in the tree is only locked while it is read.
A dump that fails, or leaves the tree running, takes the sockets out of repair and unlocks.

Restore.  Unconnected sockets bind (options that must precede bind first), listeners listen.
An established socket is made in repair mode: sequence numbers, bind, connect (no segment
is sent: the socket is simply established), options, timestamp clock, the receive queue and
the sent part of the send queue as they were, windows.  It leaves repair mode in `go_live`,
once the whole tree is restored: then the unsent part is sent and the lock is lifted.  A
restore that fails closes the sockets still in repair mode - silently - and keeps the lock,
so that it can be tried again.  UDP datagrams are sent again from the socket that owns the
sender's address (or a stand-in bound to it) before any socket connects.
"""

import array
import errno
import fcntl
import os
import select
import socket
import struct
import time
import uuid

from kernel import nftables

from . import namespaces, sockets
from .errors import DumpError, RestoreError, Unsupported

TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS = 19, 20, 21, 22
TCP_TIMESTAMP, TCP_REPAIR_WINDOW = 24, 29
TCP_NO_QUEUE, TCP_RECV_QUEUE, TCP_SEND_QUEUE = 0, 1, 2
REPAIR_ON, REPAIR_OFF = 1, 0
TCPOPT_MSS, TCPOPT_WINDOW, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP = 2, 3, 4, 8
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
SIOCINQ, SIOCOUTQ, SIOCOUTQNSD = 0x541B, 0x5411, 0x894B
STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
               6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
               11: "CLOSING"}
ESTABLISHED, CLOSE, LISTEN = 1, 7, 10
WINDOW = struct.Struct("5I")        # struct tcp_repair_window
TCP_INFO_SIZE = 104                 # of struct tcp_info: state at byte 0, options 5, wscales 6
TCP_INFO_ACCEPT = struct.Struct("24x2I")  # tcpi_unacked, tcpi_sacked: a listener's queue, max
QUEUE_CHUNK = 64 << 10              # bytes per send while refilling a queue
LOCK_PREFIX = "cr_engine-"

# the options (sockets.OPTIONS) an inet socket answers; those set before bind first
BEFORE_BIND = ("reuseaddr", "reuseport", "v6only", "freebind", "transparent", "bindtodevice")
INET_OPTIONS = BEFORE_BIND + (
    "sndbuf", "rcvbuf", "rcvtimeo", "sndtimeo", "keepalive", "broadcast", "dontroute",
    "oobinline", "priority", "mark", "rcvlowat", "linger", "timestamp", "no_check",
    "tos", "ttl", "tclass", "hoplimit", "nodelay", "cork", "keepidle", "keepintvl",
    "keepcnt", "user_timeout", "congestion", "defer_accept", "quickack", "udp_cork")
_V4_OPTIONS = ("freebind", "transparent", "tos", "ttl")
_V6_OPTIONS = ("v6only", "tclass", "hoplimit")
_TCP_OPTIONS = ("nodelay", "cork", "keepidle", "keepintvl", "keepcnt", "user_timeout",
                "congestion", "defer_accept", "quickack")


def _options_for(family, proto):
    skip = set(_V6_OPTIONS if family == socket.AF_INET else _V4_OPTIONS)
    skip |= {"udp_cork"} if proto == socket.IPPROTO_TCP else set(_TCP_OPTIONS)
    return tuple(name for name in INET_OPTIONS if name not in skip)


# Dump -------------------------------------------------------------------------------------------
class InetDump:
    """Established TCP connections met during a dump, read in `finish`, and the lock."""

    def __init__(self, carry_external, netns=None):
        self.carry_external = carry_external
        self.netns = netns          # the lock goes in this pid's network namespace
        self.established = []       # (desc, socket copy)
        self.repaired = []          # (desc, socket copy) in repair mode
        self.lock = None            # name of the nf_tables table
        self.keep_lock = False      # a peer outside the tree: the restore lifts it

    def finish(self, table):
        if not self.established:
            return
        ids = {id(desc): file_id for file_id, desc in table.files.items()}
        ends = {_tuple(d["family"], d["name"], d["peer"]) for d, _ in self.established}
        for desc, _ in self.established:
            inside = _tuple(desc["family"], desc["peer"], desc["name"]) in ends
            if not inside and not self.carry_external:
                raise Unsupported(f"unsupported: TCP connection to {_show(desc['peer'])} "
                                  f"outside the tree ({desc['what']}); dump with "
                                  f"--tcp-established to carry it")
            self.keep_lock |= not inside
        self.lock = f"{LOCK_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self._in_netns(nftables.drop_tcp, self.lock, sorted(ends))
        except OSError as e:
            self.lock = None
            raise DumpError(f"cannot lock the network for the TCP connections of the tree "
                            f"({e.strerror}): nf_tables and CAP_NET_ADMIN are needed") from None
        for desc, sock in self.established:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, REPAIR_ON)
            self.repaired.append((desc, sock))
            desc["tcp"], data = _read_connection(sock, desc["what"])
            if self.keep_lock:
                desc["tcp"]["lock"] = self.lock
            if data:
                table.payloads[ids[id(desc)]] = data
        for desc, _ in self.established:
            desc.pop("what")

    def close(self, final):
        """``final``: the tree is killed next, closing the sockets in repair mode without a
        segment; otherwise they go back to work as they were."""
        for desc, sock in self.repaired:
            if not final:
                _leave_repair(sock, desc)
        for _, sock in self.established:
            sock.close()
        self.established, self.repaired = [], []
        if self.lock and not (final and self.keep_lock):
            self._in_netns(nftables.delete_table, self.lock)
        self.lock = None

    def _in_netns(self, fn, *args):
        return namespaces.run_in(self.netns, "net", fn, *args) if self.netns else fn(*args)


def describe(table, sock, flags, what):
    """The image of a TCP or UDP socket (``sock``: a copy of the tree's fd)."""
    family, sotype, proto = sock.family, int(sock.type), sock.proto
    kind = {(socket.SOCK_STREAM, socket.IPPROTO_TCP): "tcp",
            (socket.SOCK_DGRAM, socket.IPPROTO_UDP): "udp"}.get((sotype, proto))
    if kind is None:
        raise Unsupported(f"unsupported: {family.name} socket of type {sotype} protocol "
                          f"{proto} ({what})")
    desc = {"type": "inet", "proto": kind, "family": int(family), "flags": flags,
            "inode": os.fstat(sock.fileno()).st_ino, "name": list(sock.getsockname()),
            "peer": _peer(sock),
            "options": sockets.read_options(sock, _options_for(family, proto))}
    if kind == "udp":
        _describe_udp(sock, desc)
        return desc
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
    desc["state"] = state = info[0]
    if state == LISTEN:
        waiting, desc["backlog"] = TCP_INFO_ACCEPT.unpack(info[:TCP_INFO_ACCEPT.size])
        if waiting:
            raise Unsupported(f"unsupported: {waiting} connection(s) waiting in the backlog of "
                              f"TCP listener {_show(desc['name'])} (they have no fd to repair "
                              f"until accepted; {what})")
    elif state == ESTABLISHED:
        inet = table.kinds.setdefault("inet", InetDump(table.tcp_established, table.netns))
        desc["what"] = what
        inet.established.append((desc, socket.socket(fileno=os.dup(sock.fileno()))))
    elif state != CLOSE:
        raise Unsupported(f"unsupported: TCP socket in state {STATE_NAMES.get(state, state)} "
                          f"({_show(desc['name'])} -> {_show(desc['peer'])}; {what})")
    return desc


def _describe_udp(sock, desc):
    queue, data = [], []
    for chunk, _, sender in sockets.peek_queue(sock, False):
        queue.append({"size": len(chunk), "from": list(sender)})
        data.append(chunk)
    if queue:
        desc["queue"] = queue
        desc["payload"] = b"".join(data)


def _read_connection(sock, what):
    """What repair mode tells of an established socket: (image entry, queued bytes)."""
    tcp = {}
    for queue, key in ((TCP_RECV_QUEUE, "recv"), (TCP_SEND_QUEUE, "send")):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
        tcp[f"{key}_seq"] = _getint(sock, TCP_QUEUE_SEQ) & 0xffffffff
    tcp["recv_size"] = _ioctl(sock, SIOCINQ)
    tcp["send_size"], tcp["unsent"] = _ioctl(sock, SIOCOUTQ), _ioctl(sock, SIOCOUTQNSD)
    data = b""
    try:                                # TCP honours SO_PEEK_OFF since 6.9: read from 0
        peek_off = sock.getsockopt(socket.SOL_SOCKET, sockets.SO_PEEK_OFF)
    except OSError as e:                # before, it has none (EOPNOTSUPP): peeks start at 0
        if e.errno != errno.EOPNOTSUPP:
            raise
        peek_off = -1
    if peek_off >= 0:
        sock.setsockopt(socket.SOL_SOCKET, sockets.SO_PEEK_OFF, -1)
    try:
        for queue, size in ((TCP_RECV_QUEUE, tcp["recv_size"]), (TCP_SEND_QUEUE, tcp["send_size"])):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
            got = _peek(sock, size)
            if len(got) != size:
                raise DumpError(f"TCP queue of {what}: peeked {len(got)} of {size} bytes")
            data += got
    finally:
        if peek_off >= 0:
            sock.setsockopt(socket.SOL_SOCKET, sockets.SO_PEEK_OFF, peek_off)
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
    options, wscales = info[5], info[6]
    tcp["mss"] = _getint(sock, socket.TCP_MAXSEG)
    tcp["sack"] = bool(options & TCPI_OPT_SACK)
    if options & TCPI_OPT_WSCALE:
        tcp["wscale"] = [wscales & 0xf, wscales >> 4]         # snd, rcv
    if options & TCPI_OPT_TIMESTAMPS:
        tcp["timestamp"] = _getint(sock, TCP_TIMESTAMP) & 0xffffffff
    tcp["window"] = list(WINDOW.unpack(sock.getsockopt(socket.IPPROTO_TCP, TCP_REPAIR_WINDOW,
                                                       WINDOW.size)))
    return tcp, data


def _peek(sock, size):
    out = b""
    while len(out) < size:              # one peek copies across skbs; loop all the same
        got = sock.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        if not got or len(got) <= len(out):
            break
        out = got
    return out


def _leave_repair(sock, desc):
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, REPAIR_OFF)
    # leaving repair mode resets sk_reuse: SO_REUSEADDR as the process had it
    if desc["options"].get("reuseaddr"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def _peer(sock):
    try:
        return list(sock.getpeername())
    except OSError:
        return None


def _tuple(family, local, remote):
    """(family, (address, port), (address, port)) for the lock; IPv4-mapped IPv6 ends
    travel as IPv4."""
    local, remote = (local[0], local[1]), (remote[0], remote[1])
    if family == socket.AF_INET6 and local[0].startswith("::ffff:") and "." in local[0]:
        return (socket.AF_INET, (local[0][7:], local[1]), (remote[0][7:], remote[1]))
    return (family, local, remote)


def _show(address):
    if not address:
        return "(none)"
    return f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"


def _getint(sock, option):
    return struct.unpack("i", sock.getsockopt(socket.IPPROTO_TCP, option, 4))[0]


def _ioctl(sock, request):
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), request, buf)
    return buf[0]


def summary(d):
    """One line on a TCP or UDP socket for `show`."""
    fam = "6" if d["family"] == socket.AF_INET6 else ""
    parts = [f"{d['proto']}{fam}", _show(d["name"])]
    if d["peer"]:
        parts.append(f"-> {_show(d['peer'])}")
    if d["proto"] == "tcp":
        parts.append(STATE_NAMES.get(d["state"], str(d["state"])).lower())
        if d["state"] == LISTEN:
            parts.append(f"(backlog {d['backlog']})")
        tcp = d.get("tcp")
        if tcp:
            parts.append(f"recv queue {tcp['recv_size']} send queue {tcp['send_size']} "
                         f"({tcp['unsent']} unsent)")
            if "lock" in tcp:
                parts.append(f"locked by nf_tables table inet {tcp['lock']}")
    elif d.get("queue"):
        parts.append(f"{len(d['queue'])} queued ({sum(e['size'] for e in d['queue'])} bytes)")
    return " ".join(parts)


# Restore ----------------------------------------------------------------------------------------
def restore(descs, payload, fds):
    """Make the TCP and UDP sockets of ``descs`` ({file id: desc}), adding their fds to
    ``fds``; established ones stay in repair mode until `go_live`, which gets what this
    returns: {file id: the bytes of its send queue never sent}."""
    made, unsent = {}, {}
    current = None
    try:
        order = sorted(descs, key=lambda f: _ORDER[_role(descs[f])])
        for current in order:
            d = descs[current]
            made[current] = sock = socket.socket(d["family"], _SOTYPE[d["proto"]])
            fds[current] = sock.fileno()
            if _role(d) == "established":
                data = payload(current)
                _repair(sock, d, data)
                unsent[current] = data[len(data) - d["tcp"]["unsent"]:]
            else:
                _make(sock, d)
        current = None
        _fill_udp(descs, made, payload)
        for current, d in descs.items():
            sock = made[current]
            if d["proto"] == "udp" and d["peer"]:
                sock.connect(_address(d["peer"]))
            if _role(d) != "established":
                _options(sock, d, after_bind=True)
            fcntl.fcntl(sock.fileno(), fcntl.F_SETFL, d["flags"] & ~os.O_CLOEXEC)
    except OSError as e:
        d = descs.get(current)
        what = f" {d['proto'].upper()} socket {_show(d['name'])} ({current})" if d else "s"
        raise RestoreError(f"cannot restore{what}: {e.strerror}", "files") from None
    finally:
        for sock in made.values():
            sock.detach()           # the fds stay: OpenFiles owns them
    return unsent


_SOTYPE = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
_ORDER = {"listen": 0, "bound": 1, "established": 2, "udp": 3}


def _role(d):
    if d["proto"] == "udp":
        return "udp"
    return {LISTEN: "listen", ESTABLISHED: "established"}.get(d["state"], "bound")


def _make(sock, d):
    _options(sock, d, after_bind=False)
    host, port = d["name"][0], d["name"][1]
    if port or host not in ("0.0.0.0", "::"):
        sock.bind(_address(d["name"]))
    if d["proto"] == "tcp" and d["state"] == LISTEN:
        sock.listen(d["backlog"])


def _options(sock, d, after_bind, skip=()):
    names = [n for n in d["options"] if (n in BEFORE_BIND) != after_bind and n not in skip]
    sockets.apply_options(sock, {n: d["options"][n] for n in names},
                          f"{d['proto'].upper()} socket {_show(d['name'])}")


def _repair(sock, d, data):
    """An established socket put back in repair mode (see the module's docstring)."""
    tcp = d["tcp"]
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, REPAIR_ON)
    # repair mode forces address reuse: SO_REUSEADDR is set again when it ends (go_live)
    _options(sock, d, after_bind=False, skip=("reuseaddr",))
    for queue, seq in ((TCP_SEND_QUEUE, tcp["send_seq"] - tcp["send_size"]),
                       (TCP_RECV_QUEUE, tcp["recv_seq"] - tcp["recv_size"])):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, struct.pack("I", seq & 0xffffffff))
    sock.bind(_address(d["name"]))
    sock.connect(_address(d["peer"]))
    opts = [(TCPOPT_MSS, tcp["mss"])]
    if "wscale" in tcp:
        opts.append((TCPOPT_WINDOW, tcp["wscale"][0] | tcp["wscale"][1] << 16))
    if tcp["sack"]:
        opts.append((TCPOPT_SACK_PERM, 0))
    if "timestamp" in tcp:
        opts.append((TCPOPT_TIMESTAMP, 0))
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_OPTIONS,
                    b"".join(struct.pack("II", *o) for o in opts))
    if "timestamp" in tcp:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, struct.pack("I", tcp["timestamp"]))
    recv, sent = data[:tcp["recv_size"]], data[tcp["recv_size"]:len(data) - tcp["unsent"]]
    _queue(sock, TCP_RECV_QUEUE, recv)
    _queue(sock, TCP_SEND_QUEUE, sent)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_WINDOW, WINDOW.pack(*tcp["window"]))
    _options(sock, d, after_bind=True)


def _queue(sock, queue, data):
    """Put ``data`` in a repair-mode socket's receive or send queue."""
    if not data:
        return
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
    sockets.send_all(sock, data, buffer="rcv" if queue == TCP_RECV_QUEUE else "snd",
                     chunk=QUEUE_CHUNK)


def _fill_udp(descs, made, payload):
    """Queue the dumped datagrams again, each from its sender's address."""
    owners = {_key(d["family"], d["name"]): fid for fid, d in descs.items()
              if d["proto"] == "udp"}
    expected = {}
    stand_ins = {}
    try:
        for fid, d in descs.items():
            if d["proto"] != "udp" or not d.get("queue"):
                continue
            sock, data, at = made[fid], payload(fid), 0
            sockets.grow_buffer(sock, "rcv", len(data) * 2)
            to = _reachable(d["name"])
            for entry in d["queue"]:
                chunk, at = data[at:at + entry["size"]], at + entry["size"]
                owner = owners.get(_key(d["family"], entry["from"]))
                sender = made[owner] if owner else _stand_in(stand_ins, d["family"], entry["from"])
                sender.sendto(chunk, to)
            expected[fid] = len(d["queue"])
        _wait_queued(made, expected)
    finally:
        for sock in stand_ins.values():
            sock.close()


def _stand_in(stand_ins, family, address):
    key = _key(family, address)
    if key not in stand_ins:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, sockets.IP_FREEBIND, 1)
        stand_ins[key] = sock
        sock.bind(_address(address))
    return stand_ins[key]


def _wait_queued(made, expected, timeout=2.0):
    """Loopback hands datagrams over in the softirq the sender's syscall ends with, unless
    ksoftirqd has it: wait until each receiver has something queued.  Not by peeking: a
    peeked zero-length datagram is skipped by every later peek from offset 0, the next
    dump's included."""
    deadline = time.monotonic() + timeout
    for fid in expected:
        poller = select.poll()
        poller.register(made[fid].fileno(), select.POLLIN)
        if not poller.poll(max(0, deadline - time.monotonic()) * 1000):
            raise OSError(0, "the datagrams sent again did not arrive")


def _key(family, address):
    return (family, address[0], address[1])


def _reachable(name):
    """Where a datagram to a socket bound to ``name`` goes (the wildcard address is the
    loopback one)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(name[0], name[0])
    return _address([host] + list(name[1:]))


def _address(name):
    return tuple(name)


def go_live(files, fds, unsent):
    """Once the tree is restored: established sockets leave repair mode and send what was
    never sent (``unsent``: what `restore` returned); the dump's network locks are lifted."""
    locks = set()
    for file_id, data in unsent.items():
        d = files[file_id]
        sock = socket.socket(fileno=fds[file_id])
        try:
            _leave_repair(sock, d)
            if data:
                sockets.send_all(sock, data)    # may raise the send buffer: set it back
                sockets.apply_options(sock, {"sndbuf": d["options"]["sndbuf"]},
                                      f"TCP socket {_show(d['name'])}")
        except OSError as e:
            raise RestoreError(f"cannot restart TCP socket {_show(d['name'])} ({file_id}): "
                               f"{e.strerror}", "state") from None
        finally:
            sock.detach()
        if "lock" in d["tcp"]:
            locks.add(d["tcp"]["lock"])
    for name in locks:
        nftables.delete_table(name)
