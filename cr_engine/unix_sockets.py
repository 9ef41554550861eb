"""Unix sockets: stream, datagram and seqpacket; unnamed, bound to a path or to an abstract
name; pairs, listeners with connections not accepted yet, queued data and the fds carried in
it (SCM_RIGHTS), shutdown states and options.

Dump.  sock_diag (kernel.unix_diag) tells each socket's inode, state, peer, shutdown mask
and, for a listener, the clients of the connections it has not accepted, in accept order.
Queues are peeked (sockets.peek_queue) once every fd of the tree is seen (`finish`): an fd
carried in a queue is described like any other, and may be a socket whose own queue is read
in turn.  A connection waiting in a backlog has no fd; what its client sent sits in it and
cannot be read without accepting it, which would change the tree: such a dump is refused.

Restore builds the same graph in the restorer, in an order the kernel accepts:
  1. unnamed connected pairs with socketpair();
  2. every socket that owns a name binds it (listeners listen); a path left behind by the
     dumped socket is removed first;
  3. connected pairs with a name go through a listener: the client connects, the listener
     accepts (the accepted end takes the listener's name); a temporary listener stands in
     when the image has none;
  4. connections waiting in a backlog connect again, in their order;
  5. queues are filled from the other end (datagrams from the socket that owns their
     sender's address), fds included; then datagram sockets connect, shutdowns and options
     are set, and names whose file was unlinked are unlinked again.
"""

import array
import contextlib
import errno
import fcntl
import os
import socket
import stat

from kernel import unix_diag
from kernel.libc import ioctl

from . import namespaces, sockets
from .errors import RestoreError, Unsupported

STATE_ESTABLISHED, STATE_CLOSE, STATE_LISTEN = 1, 7, 10
SIOCUNIXFILE = 0x89E0                   # an O_PATH fd of the file a socket is bound to
SIOCOUTQ = 0x5411
SHUT_RCV, SHUT_SEND = 1, 2
UNIX_OPTIONS = ("sndbuf", "rcvbuf", "passcred", "passsec", "rcvtimeo", "sndtimeo", "priority",
                "mark", "rcvlowat", "linger", "timestamp", "peek_off")
DELETED = " (deleted)"


# Dump -------------------------------------------------------------------------------------------
class UnixDump:
    """What a dump learns about unix sockets: the kernel's table, the sockets described."""

    def __init__(self, netns=None):
        self.diag = namespaces.run_in(netns, "net", _diag) if netns else _diag()
        self.described = {}         # inode -> (desc, socket copy kept for `finish`)

    def finish(self, table):
        ids = {id(desc): file_id for file_id, desc in table.files.items()}
        pending = {}                # client inode -> listener desc
        for desc, _ in self.described.values():
            for client in desc.get("icons", ()):
                pending[client] = desc
        done = set()
        while len(done) < len(self.described):   # queues may carry more sockets
            for inode, (desc, sock) in list(self.described.items()):
                if inode not in done:
                    done.add(inode)
                    self._queue(table, desc, sock, ids)
            ids = {id(desc): file_id for file_id, desc in table.files.items()}
        for desc, sock in self.described.values():  # peers may be in flight: all seen now
            self._check_peer(desc, sock, pending)

    def _check_peer(self, desc, sock, pending):
        """Refuse what restore could not make again: a peer outside the tree, a
        connection waiting in a backlog with data in it."""
        what = desc.pop("what")
        for client in desc.get("icons", ()):
            if client not in self.described:
                raise Unsupported(f"unsupported: a connection from outside the tree (or one "
                                  f"whose client closed) waits in the backlog of unix "
                                  f"listener {_show(desc)} ({what})")
        if desc["inode"] in pending:
            if _outq(sock):
                raise Unsupported(f"unsupported: data sent on a unix connection that "
                                  f"{_show(pending[desc['inode']])} has not accepted yet "
                                  f"(it cannot be read without accepting it; {what})")
            desc["pending_on"] = pending[desc["inode"]]["inode"]
            return
        peer, dgram = desc["peer"], desc["sotype"] == socket.SOCK_DGRAM
        if peer and peer not in self.described:
            if dgram and desc.get("peer_name"):
                desc["peer"] = None     # a name outside the tree (/dev/log): connect again
                return
            raise Unsupported(f"unsupported: unix socket connected to a socket outside the "
                              f"tree ({what})")
        if not peer and "peer_name" in desc and (dgram or desc["shutdown"] != 3):
            raise Unsupported(f"unsupported: unix socket connected to a socket that was "
                              f"closed ({what})")

    def _queue(self, table, desc, sock, ids):
        if desc["state"] == STATE_LISTEN:
            return
        queue, data = [], []
        # a seqpacket socket shut for reading cannot tell a zero-length record from its
        # end of queue: such records are not carried (README)
        eof_at_empty = desc["sotype"] == socket.SOCK_STREAM or (
            desc["sotype"] == socket.SOCK_SEQPACKET and desc["shutdown"] & SHUT_RCV)
        for chunk, fds, addr in sockets.peek_queue(sock, eof_at_empty):
            entry = {"size": len(chunk)}
            if fds:
                entry["fds"] = [table.describe_own(fd) for fd in fds]
            sender = _addr_bytes(addr) if desc["sotype"] != socket.SOCK_STREAM else b""
            if sender:
                entry["from"] = sender.hex()
            queue.append(entry)
            data.append(chunk)
        if queue:
            desc["queue"] = queue
            table.payloads[ids[id(desc)]] = b"".join(data)

    def close(self, final):
        for _, sock in self.described.values():
            sock.close()
        self.described = {}


def describe(table, sock, flags, what):
    state = table.kinds.get("unix")
    if state is None:
        state = table.kinds["unix"] = UnixDump(table.netns)
    inode = os.fstat(sock.fileno()).st_ino
    info = state.diag.get(inode)
    if info is None:
        raise Unsupported(f"unsupported: unix socket {inode} unknown to sock_diag (another "
                          f"network namespace?) ({what})")
    sotype = int(sock.type)
    if sotype not in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
        raise Unsupported(f"unsupported: unix socket of type {sotype} ({what})")
    name = _addr_bytes(sock.getsockname())
    desc = {"type": "unix", "sotype": sotype, "flags": flags, "inode": inode,
            "state": info["state"], "name": name.hex(), "peer": info["peer"] or None,
            "shutdown": info["shutdown"], "options": sockets.read_options(sock, UNIX_OPTIONS),
            "what": what}
    if name and name[0]:
        desc["file"] = _bound_file(sock, name, what)
    if info["state"] == STATE_LISTEN:
        desc["backlog"] = info["backlog"]
        desc["icons"] = info["icons"]
    try:
        desc["peer_name"] = _addr_bytes(sock.getpeername()).hex()
    except OSError as e:
        if e.errno != errno.ENOTCONN:
            raise
    state.described[inode] = (desc, socket.socket(fileno=os.dup(sock.fileno())))
    return desc


def _bound_file(sock, name, what):
    """The socket file a path name made: its absolute path, identity and permissions."""
    try:
        fd = ioctl(sock.fileno(), SIOCUNIXFILE, 0)
    except OSError as e:
        raise Unsupported(f"unsupported: unix socket {name!r} whose file cannot be found "
                          f"({e.strerror}; {what})") from None
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
        st = os.fstat(fd)
    finally:
        os.close(fd)
    deleted = path.endswith(DELETED)
    return {"path": path[:-len(DELETED)] if deleted else path, "deleted": deleted,
            "inode": st.st_ino, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid}


def _outq(sock):
    """Bytes sent on ``sock`` that its peer has not read (SIOCOUTQ)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), SIOCOUTQ, buf)
    return buf[0]


def _diag():
    """inode -> what sock_diag says of each unix socket of this network namespace."""
    return {inode: {"state": info["state"], "peer": info["peer"],
                    "shutdown": info["shutdown"], "backlog": info["wqueue"],
                    "icons": info["icons"]}
            for inode, info in unix_diag.sockets().items()}


def _addr_bytes(addr):
    """A unix address as Python gives it (str for a path, bytes for abstract) as bytes."""
    if not addr:
        return b""
    return os.fsencode(addr) if isinstance(addr, str) else bytes(addr)


def _show(desc):
    """A unix socket's name for a message: its path, @abstract, or its inode."""
    name = bytes.fromhex(desc["name"])
    if not name:
        return f"(unnamed, inode {desc['inode']})"
    return "@" + name[1:].decode(errors="replace") if name[0] == 0 else os.fsdecode(name)


# Restore ----------------------------------------------------------------------------------------
def restore(descs, payload, fds):
    """Make the unix sockets of ``descs`` ({file id: desc}), adding their fds to ``fds``."""
    builder = _Builder(descs, payload, fds)
    try:
        builder.build()
    except OSError as e:
        desc = descs.get(builder.current)
        what = f"{_show(desc)} ({builder.current})" if desc else builder.current
        raise RestoreError(f"cannot restore unix socket {what}: {e.strerror}",
                           "files") from None
    finally:
        builder.release()


class _Builder:
    def __init__(self, descs, payload, fds):
        self.descs, self.payload, self.fds = descs, payload, fds
        self.by_inode = {d["inode"]: fid for fid, d in descs.items()}
        self.socks = {}             # file id -> socket object (its fd is in self.fds)
        self.partners = {}          # file id -> stand-in at the other end of a connection
        self.stand_ins = {}         # name -> stand-in listener
        self.temps = []             # stand-ins, closed at the end
        self.unlink_after = []
        self.current = "?"
        self.pairs = {fid: other for fid, d in descs.items()
                      if (other := self._other(d)) and descs[other]["peer"] == d["inode"]}
        # who owns each name: the socket that bound it (a listener, a bound socket, a
        # client that bound its own name before connecting); accepted ends only share it
        self.owners = {}
        for fid, d in descs.items():
            if d["name"] and not self._accepted(fid, d):
                self.owners.setdefault(d["name"], fid)

    def build(self):
        for fid, d in self.descs.items():                        # 1: socketpairs
            if fid not in self.socks and self._by_socketpair(fid, d):
                self._socketpair(fid, self.pairs.get(fid))
        for fid in self.owners.values():                         # 2: names
            self._bind(fid)
        for fid, d in self.descs.items():                        # 3: named connections
            if fid not in self.socks and self._accepted(fid, d):
                self._accept_pair(fid, self.pairs.get(fid))
        for fid, d in self.descs.items():                        # 4: backlogs
            for client in d.get("icons", ()):
                self._connect_pending(self.by_inode[client], d)
        for fid in self.descs:                                   # the rest: plain sockets
            if fid not in self.socks:
                self._new(fid)
        for fid in self.descs:                                   # 5: queues
            self._fill(fid)
        for fid, d in self.descs.items():
            self._finish(fid, d)
        for temp in self.temps:
            temp.close()
        self.temps = []
        for path in self.unlink_after:
            os.unlink(path)

    # the graph -----------------------------------------------------------------------------
    def _other(self, d):
        return self.by_inode.get(d["peer"]) if d["peer"] else None

    def _connection(self, d):
        """A connected stream or seqpacket end, not one waiting in a backlog."""
        return d["sotype"] != socket.SOCK_DGRAM and d["state"] == STATE_ESTABLISHED and \
            "pending_on" not in d

    def _by_socketpair(self, fid, d):
        """Unnamed connections (and unnamed ends whose peer closed) come from socketpair()."""
        other = self.pairs.get(fid)
        if other is not None:
            return not d["name"] and not self.descs[other]["name"]
        return self._connection(d) and not d["name"]

    def _accepted(self, fid, d):
        """Whether this end of a named connection is the one that gets its name by accept:
        the end named like a listener, else the named end, else (both named, no listener:
        the two ways look the same) the first."""
        if not self._connection(d) or not d["name"]:
            return False
        other = self.pairs.get(fid)
        if other is None:
            return True             # its client closed: a stand-in connects to it
        peer = self.descs[other]
        mine, theirs = self._listened(d["name"]), peer["name"] and self._listened(peer["name"])
        if mine != theirs:
            return mine
        return not peer["name"] or fid < other

    def _listened(self, name):
        return any(o["state"] == STATE_LISTEN and o["name"] == name
                   for o in self.descs.values())

    # making sockets ------------------------------------------------------------------------
    def _register(self, fid, sock):
        self.socks[fid] = sock
        self.fds[fid] = sock.fileno()

    def _stand_in(self, sotype):
        temp = socket.socket(socket.AF_UNIX, sotype)
        self.temps.append(temp)
        return temp

    def _socketpair(self, fid, other):
        self.current = fid
        a, b = socket.socketpair(socket.AF_UNIX, self.descs[fid]["sotype"])
        self._register(fid, a)
        if other is None:           # the peer closed: a stand-in fills the queue, closes
            self.temps.append(b)
            self.partners[fid] = b
        else:
            self._register(other, b)

    def _new(self, fid):
        self.current = fid
        self._register(fid, socket.socket(socket.AF_UNIX, self.descs[fid]["sotype"]))
        return self.socks[fid]

    def _bind(self, fid):
        self.current = fid
        d = self.descs[fid]
        sock = self.socks.get(fid) or self._new(fid)
        _bind_name(sock, d, self.unlink_after)
        if d["state"] == STATE_LISTEN:
            sock.listen(d["backlog"])

    def _acceptor(self, d):
        """The listener a connection to ``d``'s name goes through: the image's, or a
        stand-in bound to the name until the connections are made."""
        owner = self.owners.get(d["name"])
        if owner and self.descs[owner]["state"] == STATE_LISTEN:
            return self.socks[owner]
        if d["name"] not in self.stand_ins:
            temp = self._stand_in(d["sotype"])
            _bind_name(temp, d, self.unlink_after)
            temp.listen(1)
            self.stand_ins[d["name"]] = temp
        return self.stand_ins[d["name"]]

    def _accept_pair(self, fid, client):
        """The accepted end ``fid``, through a listener its client ``client`` connects to."""
        self.current = fid
        d = self.descs[fid]
        listener = self._acceptor(d)
        if client is None:                  # the client closed: a stand-in connects
            sock = self.partners[fid] = self._stand_in(d["sotype"])
        else:
            sock = self.socks.get(client) or self._new(client)
        with _address(d) as address:
            sock.connect(address)
        accepted, _ = listener.accept()
        self._register(fid, accepted)

    def _connect_pending(self, client, listener):
        self.current = client
        sock = self.socks.get(client) or self._new(client)
        sock.setblocking(False)             # a full backlog must fail, not wait
        with _address(listener) as address:
            sock.connect(address)
        sock.setblocking(True)

    # queues and the rest -------------------------------------------------------------------
    def _fill(self, fid):
        d = self.descs[fid]
        if not d.get("queue"):
            return
        self.current = fid
        data, at = self.payload(fid), 0
        partner = self.partners.get(fid)
        if fid in self.pairs:
            partner = self.socks[self.pairs[fid]]
        for entry in d["queue"]:
            chunk = data[at:at + entry["size"]]
            at += entry["size"]
            fds = [self.fds[f] for f in entry.get("fds", ())]
            if "from" not in entry and partner is not None:
                sockets.send_all(partner, chunk, fds)
            elif d["sotype"] == socket.SOCK_STREAM:
                raise RestoreError(f"unix socket {_show(d)} ({fid}) has queued data and no "
                                   f"peer to send it", "files")
            else:
                with _address(d) as address:
                    sockets.send_all(self._sender(entry.get("from"), d), chunk, fds, to=address)

    def _sender(self, name_hex, receiver):
        """The socket a queued datagram is sent from: the owner of its sender's name, or a
        stand-in (bound to that name when the sender was outside the tree or is gone)."""
        owner = self.owners.get(name_hex) if name_hex else None
        if owner:
            return self.socks[owner]
        temp = self._stand_in(receiver["sotype"])
        if name_hex:
            temp.bind(bytes.fromhex(name_hex))
        return temp

    def _finish(self, fid, d):
        self.current = fid
        sock = self.socks[fid]
        if d["sotype"] == socket.SOCK_DGRAM and "peer_name" in d and \
                not (fid in self.pairs and self._by_socketpair(fid, d)):
            other = self._other(d)
            if other is None:           # a name outside the tree
                sock.connect(bytes.fromhex(d["peer_name"]))
            else:
                with _address(self.descs[other]) as address:
                    sock.connect(address)
        if d["shutdown"]:
            _shutdown(sock, d["shutdown"])
        sockets.apply_options(sock, d["options"], f"unix socket {_show(d)} ({fid})")
        fcntl.fcntl(sock.fileno(), fcntl.F_SETFL, d["flags"] & ~os.O_CLOEXEC)

    def release(self):
        """The fds stay (OpenFiles owns them); the socket objects let go of them."""
        for sock in self.socks.values():
            sock.detach()
        for temp in self.temps:
            temp.close()


@contextlib.contextmanager
def _address(d):
    """What connect()/sendto() reach ``d`` by: its abstract name, or its file through an
    fd of its directory (a relative name was relative to the dumped process's directory,
    and the absolute path may be longer than an address holds)."""
    name = bytes.fromhex(d["name"])
    if name[:1] == b"\0":
        yield name
        return
    path = d["file"]["path"]
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
    try:
        yield os.fsencode(f"/proc/self/fd/{fd}/{os.path.basename(path)}")
    finally:
        os.close(fd)


def _shutdown(sock, mask):
    how = {SHUT_RCV: socket.SHUT_RD, SHUT_SEND: socket.SHUT_WR,
           SHUT_RCV | SHUT_SEND: socket.SHUT_RDWR}[mask]
    try:
        sock.shutdown(how)
    except OSError as e:
        if e.errno != errno.ENOTCONN:
            raise


def _bind_name(sock, d, unlink_after):
    """Bind ``sock`` to the dumped name of ``d``: an abstract name as is; a path name with
    the same string (relative names from the directory they were relative to), after
    removing the socket file the dumped socket left there; the file gets the dumped
    permissions, and is unlinked again when it was at dump."""
    name = bytes.fromhex(d["name"])
    if name[0] == 0:
        sock.bind(name)
        return
    f = d["file"]
    _clear_stale(f["path"], d)
    if name.startswith(b"/"):
        sock.bind(name)
    else:
        cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
        try:
            os.chdir(os.fsencode(f["path"])[:-len(name)] or b"/")
            sock.bind(name)
        finally:
            os.fchdir(cwd)
            os.close(cwd)
    os.chmod(f["path"], f["mode"])
    os.chown(f["path"], f["uid"], f["gid"], follow_symlinks=False)
    if f["deleted"]:
        unlink_after.append(f["path"])


def _clear_stale(path, d):
    """Remove a socket file at ``path`` no live socket is bound to (the dumped socket's);
    anything else there means the address is taken."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(st.st_mode) and not _bound_inodes().intersection({st.st_ino}):
        os.unlink(path)
        return
    raise RestoreError(f"cannot bind unix socket to {path}: the address is taken "
                       f"({'a live socket' if stat.S_ISSOCK(st.st_mode) else 'not a socket'} "
                       f"is there)", "files")


def _bound_inodes():
    """Inodes of the socket files live unix sockets are bound to."""
    return {info["vfs"][1] for info in unix_diag.sockets(unix_diag.UDIAG_SHOW_VFS).values()
            if info["vfs"]}


def summary(d):
    """One line on a unix socket for `show`."""
    kind = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram",
            socket.SOCK_SEQPACKET: "seqpacket"}[d["sotype"]]
    parts = [kind, _show(d)]
    if d["state"] == STATE_LISTEN:
        parts.append(f"listening (backlog {d['backlog']}, {len(d['icons'])} not accepted)")
    elif d["peer"]:
        parts.append(f"peer {d['peer']}")
    if d.get("queue"):
        size = sum(e["size"] for e in d["queue"])
        carried = sum(len(e.get("fds", ())) for e in d["queue"])
        parts.append(f"{len(d['queue'])} queued ({size} bytes"
                     f"{f', {carried} fds' if carried else ''})")
    if d["shutdown"]:
        parts.append(f"shutdown {d['shutdown']}")
    return " ".join(parts)
