"""A minimal raw netlink client: enough for sock_diag, rtnetlink and nfnetlink.

Built on Python's ``socket`` module (AF_NETLINK); no pyroute2, which is far
too slow to import for a sub-second prober.  Thin: messages are packed and
unpacked here, every kernel error is raised as ``OSError`` with the errno
the kernel put in its NLMSG_ERROR (or NLMSG_DONE) answer.

Requests that are not dumps are answered synchronously: the kernel has
queued every reply by the time ``sendmsg`` returns, so they are drained
without blocking.  Dumps are read until NLMSG_DONE.
"""

import errno
import itertools
import os
import select
import socket
import struct
import time

# <linux/netlink.h>
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_NETFILTER = 12

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3fff

_HDR = struct.Struct("=IHHII")       # nlmsghdr: len, type, flags, seq, pid
_ATTR = struct.Struct("=HH")         # nlattr: len, type
_ERR = struct.Struct("=i")           # nlmsgerr.error (the offending header follows)

# <linux/rtnetlink.h>
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90
RTM_NEWADDR, RTM_GETADDR = 20, 22
IFADDRMSG = struct.Struct("=BBBBi")   # family, prefixlen, flags, scope, index
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
RTGENMSG = struct.Struct("=B3x")      # rtgen_family, padded to 4

# <linux/if_link.h>
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_NET_NS_FD = 28
IFLA_LINK_NETNSID = 37
IFLA_NEW_IFINDEX = 49
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFF_UP = 0x1

# <linux/net_namespace.h>
NETNSA_NSID, NETNSA_PID, NETNSA_FD = 1, 2, 3

# <linux/sock_diag.h>
SOCK_DIAG_BY_FAMILY = 20

# <linux/netfilter/nfnetlink.h>
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 16, 17
NFNL_SUBSYS_NFTABLES = 10
NFGENMSG = struct.Struct("=BBH")      # family, version, res_id (big endian, packed by caller)

_seq = itertools.count(int.from_bytes(os.urandom(2), "little") + 1)


TIMEOUT = 2.0  # seconds a dump may take to answer
SOL_NETLINK, NETLINK_CAP_ACK = 270, 10


def open_socket(protocol):
    """A non-blocking AF_NETLINK raw socket of ``protocol``, bound to an automatic port id."""
    sock = socket.socket(socket.AF_NETLINK,
                         socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, protocol)
    try:
        # acks without a copy of the request: a batch of many messages would otherwise
        # overrun the receive buffer (ENOBUFS)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def next_seq():
    return next(_seq) & 0x7fffffff


# -- packing ---------------------------------------------------------------

def _pad(data):
    return data + b"\0" * (-len(data) % 4)


def attr(kind, payload=b""):
    """One netlink attribute (nlattr + payload, padded to 4 bytes)."""
    if isinstance(payload, str):
        payload = payload.encode() + b"\0"
    return _pad(_ATTR.pack(_ATTR.size + len(payload), kind) + payload)


def attr_u32(kind, value):
    return attr(kind, struct.pack("=I", value & 0xffffffff))


def attr_s32(kind, value):
    return attr(kind, struct.pack("=i", value))


def attr_be32(kind, value):
    return attr(kind, struct.pack(">I", value & 0xffffffff))


def nested(kind, *attrs):
    """A nested attribute holding ``attrs`` (already packed)."""
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def message(kind, flags, payload=b"", seq=None):
    """One netlink message: nlmsghdr + payload; returns (bytes, seq)."""
    seq = next_seq() if seq is None else seq
    body = _pad(payload)
    return _HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body, seq


# -- unpacking -------------------------------------------------------------

def messages(buf):
    """Split a received buffer into (type, flags, seq, payload) tuples."""
    out, offset = [], 0
    while offset + _HDR.size <= len(buf):
        length, kind, flags, seq, _pid = _HDR.unpack_from(buf, offset)
        if length < _HDR.size or offset + length > len(buf):
            break
        out.append((kind, flags, seq, bytes(buf[offset + _HDR.size:offset + length])))
        offset += (length + 3) & ~3
    return out


def attrs(buf, offset=0):
    """Attributes of a payload from ``offset``: {type (flags masked): payload} (last one wins)."""
    out = {}
    for kind, payload in attr_list(buf, offset):
        out[kind] = payload
    return out


def attr_list(buf, offset=0):
    """Attributes in order, as (type with flags masked, payload) pairs."""
    out = []
    while offset + _ATTR.size <= len(buf):
        length, kind = _ATTR.unpack_from(buf, offset)
        if length < _ATTR.size:
            break
        out.append((kind & NLA_TYPE_MASK, bytes(buf[offset + _ATTR.size:offset + length])))
        offset += (length + 3) & ~3
    return out


def error_of(payload):
    """The (positive) errno carried by an NLMSG_ERROR payload; 0 for an ack."""
    return -_ERR.unpack_from(payload)[0] if len(payload) >= _ERR.size else errno.EIO


def _raise(code, what):
    raise OSError(code, f"netlink {what}: {os.strerror(code)}")


# -- transactions ----------------------------------------------------------

def _recv(sock):
    """The next datagram, waiting up to TIMEOUT for it."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                _raise(errno.ETIMEDOUT, "receive")


def drain(sock):
    """Every message already queued on ``sock`` (never waits)."""
    out = []
    while True:
        try:
            data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return out
        out.extend(messages(data))


def request(sock, kind, payload=b"", flags=0):
    """Send one request with NLM_F_ACK; return the replies before the ack.

    Replies are (type, flags, payload).  An error answer raises OSError.
    """
    data, seq = message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, payload)
    sock.send(data)
    replies = []
    pending = drain(sock) or messages(_recv(sock))
    while True:
        for mtype, mflags, mseq, body in pending:
            if mseq != seq:
                continue
            if mtype == NLMSG_ERROR:
                code = error_of(body)
                if code:
                    _raise(code, f"request {kind}")
                return replies
            replies.append((mtype, mflags, body))
        pending = messages(_recv(sock))


def dump(sock, kind, payload=b"", flags=0):
    """Run a dump request; return the payloads of its messages (NLMSG_DONE excluded)."""
    data, seq = message(kind, NLM_F_REQUEST | NLM_F_DUMP | flags, payload)
    sock.send(data)
    out = []
    while True:
        for mtype, _mflags, mseq, body in messages(_recv(sock)):
            if mseq != seq:
                continue
            if mtype == NLMSG_DONE:
                code = -_ERR.unpack_from(body)[0] if len(body) >= _ERR.size else 0
                if code > 0:
                    _raise(code, f"dump {kind}")
                return out
            if mtype == NLMSG_ERROR:
                code = error_of(body)
                if code:
                    _raise(code, f"dump {kind}")
                return out
            out.append(body)


def batch(sock, parts):
    """Send several messages in one datagram, each with NLM_F_ACK.

    ``parts`` is a list of (type, flags, payload).  Returns, per part, the
    errno of its answer (0 = acked) or None when the kernel did not answer
    it (e.g. the batch was aborted before reaching it).
    """
    blob, seqs = b"", []
    for kind, flags, payload in parts:
        data, seq = message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, payload)
        blob += data
        seqs.append(seq)
    sock.send(blob)
    answers = {}
    for mtype, _mflags, mseq, body in drain(sock):
        if mtype == NLMSG_ERROR and mseq in seqs:
            answers[mseq] = error_of(body)
    return [answers.get(s) for s in seqs]


# -- helpers for the families used here --------------------------------------

def ifinfomsg(family=0, index=0, flags=0, change=0, kind=0):
    return IFINFOMSG.pack(family, kind, index, flags, change)


def rtgenmsg(family=0):
    return RTGENMSG.pack(family)


def nfgenmsg(family, res_id=0):
    """struct nfgenmsg; res_id is sent big endian as the kernel expects."""
    return NFGENMSG.pack(family, 0, socket.htons(res_id))


def link_set_up(sock, index):
    """RTM_NEWLINK on ``index`` setting IFF_UP (e.g. bring up lo in a new netns)."""
    request(sock, RTM_NEWLINK, ifinfomsg(index=index, flags=IFF_UP, change=IFF_UP))


def links(sock, family=socket.AF_PACKET):
    """RTM_GETLINK dump: a list of (ifinfomsg tuple, {IFLA_*: payload})."""
    out = []
    for body in dump(sock, RTM_GETLINK, rtgenmsg(family)):
        head = IFINFOMSG.unpack_from(body)
        out.append((head, attrs(body, IFINFOMSG.size)))
    return out


def addresses(sock, family=socket.AF_UNSPEC):
    """RTM_GETADDR dump: [(index, family, prefixlen, scope, address bytes)]."""
    out = []
    for body in dump(sock, RTM_GETADDR, rtgenmsg(family)):
        fam, prefixlen, _flags, scope, index = IFADDRMSG.unpack_from(body)
        found = attrs(body, IFADDRMSG.size)
        address = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
        if address is not None:
            out.append((index, fam, prefixlen, scope, address))
    return out


def add_address(sock, index, family, prefixlen, address, scope=0):
    """RTM_NEWADDR: ``address`` (bytes) / ``prefixlen`` on link ``index``."""
    payload = IFADDRMSG.pack(family, prefixlen, 0, scope, index) + \
        attr(IFA_LOCAL, address) + attr(IFA_ADDRESS, address)
    request(sock, RTM_NEWADDR, payload, NLM_F_CREATE | NLM_F_EXCL)
