"""Network: sockets, sock_diag, TCP repair, tun, netns ids, nftables.

Everything that makes sockets with special options, interfaces, netns ids
or netfilter state happens in ONE child process inside a fresh network
namespace (``_experiment``, run once per prober and memoized); each probe's
exercise returns only its own part of that observation.  The host's
networking is never touched: lo of the fresh namespace is brought up for
the TCP experiments, a second namespace is made for the veth/nsid ones.

Module autoloading: a sock_diag request for an unloaded family, opening
/dev/net/tun, creating a veth, or talking to nf_tables makes a modular
kernel load a module.  Each of those is only done when the module is
known to be there (``_gate``): no /proc/modules (the kernel cannot load
modules), module loading disabled, /sys/module/<name> present, or the
module listed in /lib/modules/$(uname -r)/modules.builtin.  Otherwise the
probe is undecided and says which module it would have needed.

Where a probe carries a CRIU name it answers CRIU's question (cr-check.c,
kerndat.c, net.c, sk-unix.c, tun.c); deviations are stated in the probe.
"""

import errno
import functools
import os
import platform
import shutil
import socket
import struct
import sys

from kernel import fds, netlink
from kernel import nftables as nft
from kernel.libc import ioctl
from kernel.namespaces import CLONE_NEWNET, setns, unshare

from .registry import absent, errname, present, probe, undecided
from .sandbox import ChildFailed, in_child

SOL_SOCKET, SOL_TCP, SOL_IPV6 = 1, 6, 41
SO_ATTACH_FILTER = SO_GET_FILTER = 26
SO_BINDTODEVICE = 25
SO_PEEK_OFF = 42
SO_BUF_LOCK = 72
TCP_REPAIR = 19
TCP_TIMESTAMP = 24
TCP_REPAIR_WINDOW = 29
IPV6_FREEBIND = 78
IPPROTO_UDPLITE, IPPROTO_RAW = 136, 255
TUNSETIFINDEX = 0x400454DA

# TCP states CRIU collects: LISTEN ESTABLISHED FIN_WAIT1/2 CLOSE_WAIT LAST_ACK CLOSING SYN_SENT
TCP_STATES = sum(1 << s for s in (10, 1, 4, 5, 8, 9, 11, 2))



# --- module gating (computed in the prober, handed to the child) ---------------

@functools.lru_cache(maxsize=1)
def _loaded_and_builtin():
    """(/proc/modules exists, set of loaded module names, set of built-in names or None)."""
    try:
        with open("/proc/modules") as f:
            loaded = {line.split()[0] for line in f if line.strip()}
    except FileNotFoundError:
        # kernel.modprobe only exists with CONFIG_MODULES: then /proc/modules is hidden
        # (a container), not missing, and nothing is known to be loaded
        if not os.path.exists("/proc/sys/kernel/modprobe"):
            return False, set(), set()
        loaded = set()
    builtin = None
    try:
        with open(f"/lib/modules/{platform.release()}/modules.builtin") as f:
            builtin = {os.path.basename(line.strip()).split(".")[0].replace("-", "_")
                       for line in f if line.strip()}
    except OSError:
        pass
    return True, loaded, builtin


def _gate(name):
    """(may we use what module ``name`` provides without a module load?, why)."""
    modular, loaded, builtin = _loaded_and_builtin()
    if not modular:
        return True, "kernel without module support"
    if os.environ.get("CRBENCH_PROBES_LOAD_MODULES") == "1":    # a throwaway guest (vm/)
        return True, f"{name} may be loaded (CRBENCH_PROBES_LOAD_MODULES=1)"
    try:
        with open("/proc/sys/kernel/modules_disabled") as f:
            if f.read().strip() == "1":
                return True, "module loading disabled"
    except OSError:
        pass
    if name in loaded or os.path.isdir(f"/sys/module/{name}") or \
            os.path.exists(REGISTERED.get(name, "/nonexistent")):
        return True, f"{name} loaded"
    if builtin is None:
        return False, f"cannot tell whether {name} is built in (no modules.builtin): " \
                      "not loading it"
    if name in builtin:
        return True, f"{name} built in"
    return False, f"{name} is neither loaded nor built in: not loading the module"


# what a loaded (or built-in) module has registered, where /sys/module may not show it
REGISTERED = {"tun": "/sys/class/misc/tun"}

GATED = ("sock_diag", "unix_diag", "inet_diag", "tcp_diag", "udp_diag", "raw_diag",
         "netlink_diag", "packet_diag", "tun", "veth", "nfnetlink", "nf_tables")


def _gates():
    gates = {name: list(_gate(name)) for name in GATED}
    gates["ipv6"] = [os.path.exists("/proc/sys/net/ipv6"), "no /proc/sys/net/ipv6"]
    return gates


def _closed(gates, *names):
    """The reason the first closed gate among ``names`` gives, or None."""
    for name in names:
        ok, why = gates[name]
        if not ok:
            return why
    return None


# --- the experiment (child) ----------------------------------------------------

def _errno(fn, *args):
    try:
        fn(*args)
        return 0
    except OSError as e:
        return e.errno or errno.EIO


def _sock(family, kind, proto=0):
    return socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)


def _peek_off_unix():
    with _sock(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        seen = {"get_errno": 0, "value": None}
        try:
            value, size = fds.getsockopt(s.fileno(), SOL_SOCKET, SO_PEEK_OFF, 4)
            seen["value"], seen["size"] = struct.unpack("=i", value)[0], size
        except OSError as e:
            seen["get_errno"] = e.errno
        seen["set"] = _errno(s.setsockopt, SOL_SOCKET, SO_PEEK_OFF, 0)
        return seen


def _peek_off_tcp():
    with _sock(socket.AF_INET, socket.SOCK_STREAM) as s:
        return {"set": _errno(s.setsockopt, SOL_SOCKET, SO_PEEK_OFF, 0)}


def _so_get_filter():
    with _sock(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return {"get_filter": _errno(fds.getsockopt, s.fileno(), SOL_SOCKET, SO_GET_FILTER, 0),
                "bindtodevice": _errno(fds.getsockopt, s.fileno(), SOL_SOCKET,
                                       SO_BINDTODEVICE, 16)}


def _buf_lock():
    with _sock(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            return {"errno": 0, "value": s.getsockopt(SOL_SOCKET, SO_BUF_LOCK)}
        except OSError as e:
            return {"errno": e.errno}


def _ipv6_freebind(gates):
    if not gates["ipv6"][0]:
        return {"ipv6": False}
    with _sock(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        return {"ipv6": True, "errno": _errno(s.setsockopt, SOL_IPV6, IPV6_FREEBIND, 1)}


def _ns_ioctl_errno(fd):
    """SIOCGSKNS on ``fd``: 0 (the returned netns fd is closed) or the errno."""
    try:
        os.close(ioctl(fd, fds.SIOCGSKNS))
        return 0
    except OSError as e:
        return e.errno


def _sk_ns():
    with _sock(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        return {"errno": _ns_ioctl_errno(s.fileno())}


def _sk_unix_file():
    with _sock(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            os.close(ioctl(s.fileno(), fds.SIOCUNIXFILE))
            return {"errno": 0}
        except OSError as e:
            return {"errno": e.errno}


def _tcp_repair():
    with _sock(socket.AF_INET, socket.SOCK_STREAM) as s:
        seen = {"repair": _errno(s.setsockopt, SOL_TCP, TCP_REPAIR, 1)}
        seen["timestamp"] = _errno(s.getsockopt, SOL_TCP, TCP_TIMESTAMP)
        seen["window"] = _errno(s.getsockopt, SOL_TCP, TCP_REPAIR_WINDOW, 20) \
            if seen["repair"] == 0 else None
        return seen


def _tcp_half_closed():
    with _sock(socket.AF_INET, socket.SOCK_STREAM) as listener, \
            _sock(socket.AF_INET, socket.SOCK_STREAM) as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        connect = _errno(client.connect, listener.getsockname())
        if connect:
            return {"connect": connect}
        client.shutdown(socket.SHUT_WR)
        return {"connect": 0, "repair": _errno(client.setsockopt, SOL_TCP, TCP_REPAIR, 1)}


def _inet_req(family, proto, states=0xffffffff):
    return struct.pack("=BBBxI", family, proto, 0, states) + bytes(48)


DIAG_REQUESTS = {
    # name: (request payload, modules it needs, needs IPv6)
    "unix": (struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xffffffff, 0, 0x1f, 0, 0),
             ("sock_diag", "unix_diag"), False),
    "tcp4": (_inet_req(socket.AF_INET, socket.IPPROTO_TCP, TCP_STATES),
             ("sock_diag", "inet_diag", "tcp_diag"), False),
    "udp4": (_inet_req(socket.AF_INET, socket.IPPROTO_UDP),
             ("sock_diag", "inet_diag", "udp_diag"), False),
    "udplite4": (_inet_req(socket.AF_INET, IPPROTO_UDPLITE),
                 ("sock_diag", "inet_diag", "udp_diag"), False),
    "raw4": (_inet_req(socket.AF_INET, IPPROTO_RAW), ("sock_diag", "inet_diag", "raw_diag"),
             False),
    "tcp6": (_inet_req(socket.AF_INET6, socket.IPPROTO_TCP, TCP_STATES),
             ("sock_diag", "inet_diag", "tcp_diag"), True),
    "udp6": (_inet_req(socket.AF_INET6, socket.IPPROTO_UDP),
             ("sock_diag", "inet_diag", "udp_diag"), True),
    "udplite6": (_inet_req(socket.AF_INET6, IPPROTO_UDPLITE),
                 ("sock_diag", "inet_diag", "udp_diag"), True),
    "raw6": (_inet_req(socket.AF_INET6, IPPROTO_RAW), ("sock_diag", "inet_diag", "raw_diag"),
             True),
    "packet": (struct.pack("=BBHIIII", socket.AF_PACKET, 0, 0, 0, 0xf, 0, 0),
               ("sock_diag", "packet_diag"), False),
    "netlink": (struct.pack("=BBHIIII", socket.AF_NETLINK, 255, 0, 0, 2, 0, 0),
                ("sock_diag", "netlink_diag"), False),
}


def _sock_diag(gates, no_fresh_netns):
    """Open a NETLINK_SOCK_DIAG socket, then dump every family CRIU collects.

    The dumps are only asked in the fresh namespace (never of the host's
    sockets); a few sockets of our own there make them non-empty.
    """
    why = _closed(gates, "sock_diag")
    if why:
        return {"socket": None, "skipped": why}
    try:
        diag = netlink.open_socket(netlink.NETLINK_SOCK_DIAG)
    except OSError as e:
        return {"socket": e.errno}
    if no_fresh_netns:
        diag.close()
        return {"socket": 0,
                "dumps": {name: {"skipped": no_fresh_netns} for name in DIAG_REQUESTS}}
    ours = []
    try:
        ours += list(socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
        listener = _sock(socket.AF_INET, socket.SOCK_STREAM)
        ours.append(listener)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        udp = _sock(socket.AF_INET, socket.SOCK_DGRAM)
        ours.append(udp)
        udp.bind(("127.0.0.1", 0))
        dumps = {}
        for name, (payload, modules, v6) in DIAG_REQUESTS.items():
            why = _closed(gates, *modules) or (None if not v6 or gates["ipv6"][0]
                                               else "IPv6 disabled (no /proc/sys/net/ipv6)")
            if why:
                dumps[name] = {"skipped": why}
                continue
            try:
                dumps[name] = {"errno": 0, "count": len(netlink.dump(
                    diag, netlink.SOCK_DIAG_BY_FAMILY, payload))}
            except OSError as e:
                dumps[name] = {"errno": e.errno}
        return {"socket": 0, "dumps": dumps}
    finally:
        for s in ours:
            s.close()
        diag.close()


def _tun(gates):
    why = _closed(gates, "tun")
    if why:
        return {"skipped": why}
    seen = {}
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return {"open": e.errno}
    try:
        seen["open"] = 0
        seen["setifindex"] = _errno(fds.ioctl_set_int, fd, TUNSETIFINDEX, 13)
    finally:
        os.close(fd)
    try:
        fd = os.open("/dev/net/tun", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        seen["ns_open"] = e.errno
        return seen
    try:
        seen["ns_open"] = 0
        seen["skns"] = _ns_ioctl_errno(fd)
    finally:
        os.close(fd)
    return seen


def _nsid_attr(replies):
    for _kind, _flags, body in replies:
        found = netlink.attrs(body, netlink.RTGENMSG.size).get(netlink.NETNSA_NSID)
        if found is not None:
            return struct.unpack("=i", found[:4])[0]
    return None


def _nsid(rtnl):
    """RTM_GETNSID for our own pid, as CRIU's kerndat_nsid asks it."""
    try:
        replies = netlink.request(rtnl, netlink.RTM_GETNSID, netlink.rtgenmsg() +
                                  netlink.attr_u32(netlink.NETNSA_PID, os.getpid()))
    except OSError as e:
        return {"errno": e.errno}
    return {"errno": 0, "nsid": _nsid_attr(replies)}


def _newifindex(rtnl):
    """RTM_SETLINK with IFLA_NEW_IFINDEX=-1 for a missing device (CRIU's kerndat check)."""
    payload = netlink.ifinfomsg() + netlink.attr_s32(netlink.IFLA_NEW_IFINDEX, -1) + \
        netlink.attr(netlink.IFLA_IFNAME, b"criu-kdat")
    return {"errno": _errno(netlink.request, rtnl, netlink.RTM_SETLINK, payload,
                            netlink.NLM_F_CREATE)}


# nft's type id of "ipv4_addr . inet_service": (TYPE_IPADDR 7 << 6) | TYPE_INET_SERVICE 13
CONCAT_KEY_TYPE = (7 << 6) | 13


def _nft_batch(sock, set_attrs):
    """One transaction: create table inet CRIU and set conn in it; errnos of both."""
    create = netlink.NLM_F_CREATE | netlink.NLM_F_EXCL | netlink.NLM_F_ACK
    table = netlink.nfgenmsg(nft.NFPROTO_INET) + netlink.attr(nft.NFTA_TABLE_NAME, "CRIU")
    nset = netlink.nfgenmsg(nft.NFPROTO_INET) + netlink.attr(nft.NFTA_SET_TABLE, "CRIU") + \
        netlink.attr(nft.NFTA_SET_NAME, "conn") + set_attrs
    return nft.transaction(sock, [(nft.NFT_MSG_NEWTABLE, create, table),
                                  (nft.NFT_MSG_NEWSET, create, nset)])


def _nftables(gates):
    why = _closed(gates, "nfnetlink", "nf_tables")
    if why:
        return {"skipped": why}
    try:
        sock = netlink.open_socket(netlink.NETLINK_NETFILTER)
    except OSError as e:
        return {"socket": e.errno}
    with sock:
        seen = {"socket": 0}
        try:
            replies = netlink.request(sock, nft.msg_type(nft.NFT_MSG_GETGEN),
                                      netlink.nfgenmsg(socket.AF_UNSPEC))
            seen["getgen"] = 0
            for _kind, _flags, body in replies:
                gen = netlink.attrs(body, netlink.NFGENMSG.size).get(nft.NFT_GENMSG_GENID)
                if gen is not None:
                    seen["genid"] = struct.unpack(">I", gen[:4])[0]
        except OSError as e:
            seen["getgen"] = e.errno
            return seen
        key = netlink.attr_be32(nft.NFTA_SET_KEY_TYPE, CONCAT_KEY_TYPE) + \
            netlink.attr_be32(nft.NFTA_SET_KEY_LEN, 8) + netlink.attr_be32(nft.NFTA_SET_ID, 1)
        # with the field lengths of the concatenation (5.6+), as current nft sends them
        fields = netlink.nested(nft.NFTA_SET_DESC, netlink.nested(
            nft.NFTA_SET_DESC_CONCAT,
            netlink.nested(nft.NFTA_LIST_ELEM, netlink.attr_be32(nft.NFTA_SET_FIELD_LEN, 4)),
            netlink.nested(nft.NFTA_LIST_ELEM, netlink.attr_be32(nft.NFTA_SET_FIELD_LEN, 2))))
        concat = netlink.attr_be32(nft.NFTA_SET_FLAGS, nft.NFT_SET_CONCAT)
        seen["concat"] = _nft_batch(sock, concat + key + fields)
        if seen["concat"] != [0, 0]:
            # older kernels: a plain 8-byte key holds the concatenation
            seen["plain"] = _nft_batch(sock, key)
        return seen


def _other_netns(gates):
    """link_nsid, RTM_NEWNSID and external_net_ns: a second netns and a veth into the first.

    Runs last: the child ends in the first namespace again (via setns).
    """
    seen = {"link_nsid": {}, "newnsid": {}, "external": {}}
    first = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        first_ino = os.fstat(first).st_ino
        code = _errno(unshare, CLONE_NEWNET)
        if code:
            for part in seen.values():
                part["unshare"] = code
            return seen
        with netlink.open_socket(netlink.NETLINK_ROUTE) as rtnl:
            # RTM_NEWNSID: name the first namespace 5 here, read it back by fd
            nsid_attrs = netlink.rtgenmsg() + netlink.attr_u32(netlink.NETNSA_FD, first)
            seen["newnsid"]["set"] = _errno(netlink.request, rtnl, netlink.RTM_NEWNSID,
                                            nsid_attrs + netlink.attr_s32(netlink.NETNSA_NSID, 5))
            try:
                seen["newnsid"]["get"] = _nsid_attr(netlink.request(
                    rtnl, netlink.RTM_GETNSID, nsid_attrs))
            except OSError as e:
                seen["newnsid"]["get_errno"] = e.errno
            why = _closed(gates, "veth")
            if why:
                seen["link_nsid"]["skipped"] = why
            else:
                seen["link_nsid"] = _veth_link_nsid(rtnl, first)
        seen["external"]["setns"] = _errno(setns, first, CLONE_NEWNET)
        seen["external"]["joined"] = os.stat("/proc/self/ns/net").st_ino == first_ino
    finally:
        os.close(first)
    return seen


def _veth_link_nsid(rtnl, peer_ns_fd):
    peer = netlink.ifinfomsg() + netlink.attr(netlink.IFLA_IFNAME, "veth1") + \
        netlink.attr_u32(netlink.IFLA_NET_NS_FD, peer_ns_fd)
    info = netlink.nested(netlink.IFLA_LINKINFO,
                          netlink.attr(netlink.IFLA_INFO_KIND, "veth"),
                          netlink.nested(netlink.IFLA_INFO_DATA,
                                         netlink.attr(netlink.VETH_INFO_PEER, peer)))
    flags = netlink.NLM_F_CREATE | netlink.NLM_F_EXCL
    payload = netlink.ifinfomsg() + netlink.attr(netlink.IFLA_IFNAME, "veth0") + info
    code = _errno(netlink.request, rtnl, netlink.RTM_NEWLINK, payload, flags)
    if code:
        return {"veth": code}
    ids = [struct.unpack("=i", a[netlink.IFLA_LINK_NETNSID][:4])[0]
           for _head, a in netlink.links(rtnl) if netlink.IFLA_LINK_NETNSID in a]
    return {"veth": 0, "link_netnsid": ids[0] if ids else None}


def _guard(obs, key, fn, *args):
    try:
        obs[key] = fn(*args)
    except OSError as e:
        obs[key] = {"errno": e.errno or errno.EIO, "failed": str(e)}
    except Exception as e:  # noqa: BLE001 - one broken step must not hide the others
        obs[key] = {"crash": f"{type(e).__name__}: {e}"}


FRESH_NETNS_STEPS = ("tcp_repair", "tcp_half_closed", "tun", "nsid", "newifindex", "nftables",
                     "other_netns")


def _experiment(gates):
    obs = {"netns": _errno(unshare, CLONE_NEWNET)}
    # socket options on unbound, unconnected sockets: harmless in any namespace
    _guard(obs, "so_peek_off_unix", _peek_off_unix)
    _guard(obs, "so_peek_off_tcp", _peek_off_tcp)
    _guard(obs, "so_get_filter", _so_get_filter)
    _guard(obs, "sockopt_buf_lock", _buf_lock)
    _guard(obs, "ipv6_freebind", _ipv6_freebind, gates)
    _guard(obs, "sk_ns", _sk_ns)
    _guard(obs, "sk_unix_file", _sk_unix_file)
    if obs["netns"]:
        why = f"no fresh network namespace (unshare: {errname(obs['netns'])})"
        _guard(obs, "sock_diag", _sock_diag, gates, why)
        for key in FRESH_NETNS_STEPS:
            obs[key] = {"skipped": why}
        return obs
    try:
        with netlink.open_socket(netlink.NETLINK_ROUTE) as rtnl:
            netlink.link_set_up(rtnl, socket.if_nametoindex("lo"))
            _guard(obs, "nsid", _nsid, rtnl)
            _guard(obs, "newifindex", _newifindex, rtnl)
    except OSError as e:
        for key in ("nsid", "newifindex"):
            obs.setdefault(key, {"errno": e.errno})
    _guard(obs, "tcp_repair", _tcp_repair)
    _guard(obs, "tcp_half_closed", _tcp_half_closed)
    _guard(obs, "sock_diag", _sock_diag, gates, None)
    _guard(obs, "tun", _tun, gates)
    _guard(obs, "nftables", _nftables, gates)
    _guard(obs, "other_netns", _other_netns, gates)
    return obs


@functools.lru_cache(maxsize=1)
def _observe():
    """All network observations, from one child in a fresh netns (once per process).

    A failed child is remembered too, so the probes do not each retry it.
    """
    try:
        return in_child(_experiment, _gates(), timeout=5.0)
    except (ChildFailed, OSError) as e:
        return {"_failed": f"{type(e).__name__}: {e}"}


def _part(key):
    """An exercise returning the child's observation under ``key``."""
    def exercise():
        obs = _observe()
        if key not in obs:
            return {"crash": f"network experiment child: {obs.get('_failed', 'no answer')}"}
        return obs[key]
    return exercise


def _broken(seen):
    """The verdict for a step that was skipped, failed or crashed, else None."""
    if "skipped" in seen:
        return undecided(seen["skipped"])
    if "crash" in seen:
        return undecided(f"experiment crashed: {seen['crash']}")
    if "failed" in seen:
        return undecided(f"experiment failed: {seen['failed']}")
    return None


SKIPPED = {"skipped": "no fresh network namespace (unshare: EPERM)"}

# Probes run in the fresh netns need CAP_SYS_ADMIN to make it (and CAP_NET_ADMIN in it,
# which a process holding CAP_SYS_ADMIN normally has too); only one can be named.
NETNS = "CAP_SYS_ADMIN"


# --- socket options ---------------------------------------------------------

def _judge_tcp_repair(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    window = {0: "TCP_REPAIR_WINDOW readable", None: ""}.get(
        seen.get("window"), f"TCP_REPAIR_WINDOW -> {errname(seen.get('window'))}")
    if seen["repair"] == 0 and seen["timestamp"] == 0:
        return present("TCP_REPAIR on, TCP_TIMESTAMP readable" + (f"; {window}" if window
                                                                 else ""))
    if seen["repair"] == errno.ENOPROTOOPT:
        return absent("setsockopt(TCP_REPAIR) -> ENOPROTOOPT")
    return undecided(f"TCP_REPAIR -> {errname(seen['repair'])}, "
                     f"TCP_TIMESTAMP -> {errname(seen['timestamp'])}")


@probe("tcp_repair", "network", since="3.5", needs=NETNS, judge=_judge_tcp_repair,
       examples=[({"repair": 0, "timestamp": 0, "window": 0}, True),
                 ({"repair": errno.ENOPROTOOPT, "timestamp": 0, "window": None}, False),
                 ({"repair": errno.EPERM, "timestamp": 0, "window": None}, None),
                 (SKIPPED, None)])
def tcp_repair():
    """setsockopt(TCP_REPAIR) then getsockopt(TCP_TIMESTAMP) on a TCP socket (CRIU required
    check; in a fresh netns). Data point: TCP_REPAIR_WINDOW (4.8)."""
    return _part("tcp_repair")()


def _judge_half_closed(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["connect"]:
        return undecided(f"connect over lo -> {errname(seen['connect'])}")
    if seen["repair"] == 0:
        return present("TCP_REPAIR accepted on a socket after shutdown(SHUT_WR)")
    if seen["repair"] == errno.EPERM:
        return absent("TCP_REPAIR on a half-closed socket -> EPERM")
    return undecided(f"TCP_REPAIR on a half-closed socket -> {errname(seen['repair'])}")


@probe("tcp_half_closed", "network", since="~4.11", criu_name="tcp_half_closed",
       needs=NETNS, judge=_judge_half_closed,
       examples=[({"connect": 0, "repair": 0}, True), ({"connect": 0, "repair": errno.EPERM},
                                                        False),
                 ({"connect": errno.ENETUNREACH}, None), (SKIPPED, None)])
def tcp_half_closed():
    """TCP_REPAIR on a connected socket after shutdown(SHUT_WR), as CRIU's kerndat tests it
    (over lo of a fresh netns)."""
    return _part("tcp_half_closed")()


def _judge_peek_unix(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["get_errno"] in (errno.ENOPROTOOPT, errno.EOPNOTSUPP):
        return absent(f"getsockopt(SO_PEEK_OFF) -> {errname(seen['get_errno'])}")
    if seen["get_errno"]:
        return undecided(f"getsockopt(SO_PEEK_OFF) -> {errname(seen['get_errno'])}")
    if seen["value"] != -1 or seen.get("size") != 4:
        return undecided(f"getsockopt(SO_PEEK_OFF) read {seen['value']} ({seen.get('size')} "
                         "bytes), CRIU expects -1 (4 bytes)")
    if seen["set"]:
        return absent(f"setsockopt(SO_PEEK_OFF, 0) -> {errname(seen['set'])}")
    return present("getsockopt reads -1, setsockopt(SO_PEEK_OFF, 0) -> 0")


@probe("so_peek_off_unix", "network", since="3.4", judge=_judge_peek_unix,
       examples=[({"get_errno": 0, "value": -1, "size": 4, "set": 0}, True),
                 ({"get_errno": errno.ENOPROTOOPT, "value": None, "set": errno.ENOPROTOOPT},
                  False),
                 ({"get_errno": 0, "value": -1, "size": 4, "set": errno.EOPNOTSUPP}, False),
                 ({"get_errno": 0, "value": 0, "size": 4, "set": 0}, None)])
def so_peek_off_unix():
    """SO_PEEK_OFF on a unix datagram socket: CRIU's required check reads it (must be -1);
    setting it (0) is what proves the option is implemented."""
    return _part("so_peek_off_unix")()


def _judge_peek_tcp(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["set"] == 0:
        return present("setsockopt(TCP socket, SO_PEEK_OFF, 0) -> 0")
    if seen["set"] in (errno.EOPNOTSUPP, errno.ENOPROTOOPT):
        return absent(f"setsockopt(TCP socket, SO_PEEK_OFF) -> {errname(seen['set'])}")
    return undecided(f"setsockopt(TCP socket, SO_PEEK_OFF) -> {errname(seen['set'])}")


@probe("so_peek_off_tcp", "network", since="6.9", judge=_judge_peek_tcp,
       examples=[({"set": 0}, True), ({"set": errno.EOPNOTSUPP}, False),
                 ({"set": errno.EINVAL}, None)])
def so_peek_off_tcp():
    """SO_PEEK_OFF on a TCP socket (6.9): setsockopt(0) succeeds; getsockopt proves nothing."""
    return _part("so_peek_off_tcp")()


def _judge_get_filter(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["get_filter"] == 0 and seen["bindtodevice"] == 0:
        return present("getsockopt SO_GET_FILTER (len 0) and SO_BINDTODEVICE -> 0")
    if seen["get_filter"] in (errno.ENOPROTOOPT, errno.EINVAL):
        return absent(f"getsockopt(SO_GET_FILTER) -> {errname(seen['get_filter'])}")
    if seen["bindtodevice"] == errno.ENOPROTOOPT:
        return absent("getsockopt(SO_BINDTODEVICE) -> ENOPROTOOPT")
    return undecided(f"SO_GET_FILTER -> {errname(seen['get_filter'])}, "
                     f"SO_BINDTODEVICE -> {errname(seen['bindtodevice'])}")


@probe("so_get_filter", "network", since="3.8", judge=_judge_get_filter,
       examples=[({"get_filter": 0, "bindtodevice": 0}, True),
                 ({"get_filter": errno.ENOPROTOOPT, "bindtodevice": 0}, False),
                 ({"get_filter": 0, "bindtodevice": errno.EFAULT}, None)])
def so_get_filter():
    """getsockopt SO_GET_FILTER and SO_BINDTODEVICE on a UDP socket (CRIU required check)."""
    return _part("so_get_filter")()


def _judge_buf_lock(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["errno"] == 0:
        return present(f"getsockopt(SO_BUF_LOCK) -> {seen['value']}")
    if seen["errno"] == errno.ENOPROTOOPT:
        return absent("getsockopt(SO_BUF_LOCK) -> ENOPROTOOPT")
    return undecided(f"getsockopt(SO_BUF_LOCK) -> {errname(seen['errno'])}")


@probe("sockopt_buf_lock", "network", since="5.14", criu_name="sockopt_buf_lock",
       judge=_judge_buf_lock,
       examples=[({"errno": 0, "value": 0}, True), ({"errno": errno.ENOPROTOOPT}, False),
                 ({"errno": errno.EBADF}, None)])
def sockopt_buf_lock():
    """getsockopt(SO_BUF_LOCK) on a TCP socket: user-locked buffer sizes can be dumped."""
    return _part("sockopt_buf_lock")()


def _judge_freebind(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if not seen["ipv6"]:
        return absent("IPv6 disabled (no /proc/sys/net/ipv6), as CRIU counts it")
    if seen["errno"] == 0:
        return present("setsockopt(IPV6_FREEBIND, 1) -> 0")
    if seen["errno"] == errno.ENOPROTOOPT:
        return absent("setsockopt(IPV6_FREEBIND) -> ENOPROTOOPT")
    return undecided(f"setsockopt(IPV6_FREEBIND) -> {errname(seen['errno'])}")


@probe("ipv6_freebind", "network", since="4.15", criu_name="ipv6_freebind",
       judge=_judge_freebind,
       examples=[({"ipv6": True, "errno": 0}, True), ({"ipv6": False}, False),
                 ({"ipv6": True, "errno": errno.ENOPROTOOPT}, False),
                 ({"ipv6": True, "errno": errno.EPERM}, None)])
def ipv6_freebind():
    """setsockopt(SOL_IPV6, IPV6_FREEBIND) on a UDPv6 socket."""
    return _part("ipv6_freebind")()


def _judge_sk_ns(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    code = seen["errno"]
    if code == 0:
        return present("ioctl(SIOCGSKNS) returned the socket's netns fd")
    if code in (errno.ENOTTY, errno.EINVAL):
        return absent(f"ioctl(SIOCGSKNS) -> {errname(code)}")
    return undecided(f"ioctl(SIOCGSKNS) -> {errname(code)}")


@probe("sk_ns", "network", since="4.9", criu_name="sk_ns", needs="CAP_NET_ADMIN",
       judge=_judge_sk_ns,
       examples=[({"errno": 0}, True), ({"errno": errno.ENOTTY}, False),
                 ({"errno": errno.EPERM}, None)])
def sk_ns():
    """ioctl(SIOCGSKNS) on a socket: the network namespace it belongs to."""
    return _part("sk_ns")()


def _judge_unix_file(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    code = seen["errno"]
    if code in (0, errno.ENOENT):
        return present(f"ioctl(SIOCUNIXFILE) on an unbound socket -> {errname(code)}")
    if code == errno.EPERM:
        return undecided("ioctl(SIOCUNIXFILE) -> EPERM (needs CAP_NET_ADMIN)")
    return absent(f"ioctl(SIOCUNIXFILE) -> {errname(code)}")


@probe("sk_unix_file", "network", since="4.11", criu_name="sk_unix_file",
       needs="CAP_NET_ADMIN", judge=_judge_unix_file,
       examples=[({"errno": errno.ENOENT}, True), ({"errno": 0}, True),
                 ({"errno": errno.ENOTTY}, False), ({"errno": errno.EPERM}, None)])
def sk_unix_file():
    """ioctl(SIOCUNIXFILE): an O_PATH fd of a unix socket's file (ENOENT for an unbound
    socket counts as present, as in CRIU)."""
    return _part("sk_unix_file")()


# --- sock_diag ----------------------------------------------------------------

def _judge_sock_diag(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["socket"] in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
        return absent(f"socket(NETLINK_SOCK_DIAG) -> {errname(seen['socket'])}")
    if seen["socket"]:
        return undecided(f"socket(NETLINK_SOCK_DIAG) -> {errname(seen['socket'])}")
    dumps = seen["dumps"]
    ok = [n for n, d in dumps.items() if d.get("errno") == 0]
    bad = [f"{n} {errname(d['errno'])}" for n, d in dumps.items() if d.get("errno")]
    skipped = [n for n, d in dumps.items() if "skipped" in d]
    detail = f"dumps ok: {', '.join(ok) or 'none'}"
    if bad:
        detail += f"; failed: {', '.join(bad)}"
    if skipped:
        detail += f"; not asked: {', '.join(skipped)}"
    return present(detail)


def _dumps(**kinds):
    return {"socket": 0, "dumps": {n: ({"errno": 0, "count": 1} if v == 0 else
                                       {"skipped": v} if isinstance(v, str) else {"errno": v})
                                   for n, v in kinds.items()}}


DIAG_OK = _dumps(unix=0, tcp4=0, udp4=0, udplite4=0, raw4=0, tcp6=0, udp6=0, udplite6=0, raw6=0,
                 packet=0, netlink=0)


@probe("sock_diag", "network", since="3.3", judge=_judge_sock_diag,
       examples=[(DIAG_OK, True), (_dumps(unix=0, raw4=errno.ENOENT), True),
                 ({"socket": errno.EPROTONOSUPPORT}, False),
                 ({"socket": None, "skipped": "sock_diag is neither loaded nor built in"}, None),
                 (SKIPPED, None)])
def sock_diag():
    """NETLINK_SOCK_DIAG answers: CRIU's required sock_diag check only needs the socket
    (it then ignores failed dumps); the detail lists each family dump (in a fresh netns)."""
    return _part("sock_diag")()


def _judge_dumps(names, what):
    def judge(seen):
        verdict = _broken(seen)
        if verdict:
            return verdict
        if seen.get("socket"):
            return undecided(f"socket(NETLINK_SOCK_DIAG) -> {errname(seen['socket'])}")
        dumps = seen["dumps"]
        asked = [n for n in names if n in dumps and "skipped" not in dumps[n]]
        skipped = [n for n in names if n not in asked]
        if not asked:
            why = dumps[names[0]].get("skipped", "not asked") if names[0] in dumps else \
                "not asked"
            return undecided(f"{what}: {why}")
        failed = {n: dumps[n]["errno"] for n in asked if dumps[n]["errno"]}
        if failed:
            codes = ", ".join(f"{n} {errname(c)}" for n, c in failed.items())
            if all(c in (errno.ENOENT, errno.EINVAL, errno.EOPNOTSUPP) for c in failed.values()):
                return absent(f"{what} dump refused: {codes}")
            return undecided(f"{what} dump failed: {codes}")
        counts = ", ".join(f"{n} {dumps[n]['count']}" for n in asked)
        note = f"; not asked: {', '.join(skipped)}" if skipped else ""
        return present(f"dumps answered (sockets: {counts}){note}")
    return judge


def _diag_examples(names):
    ok = _dumps(**{n: 0 for n in names})
    refused = _dumps(**{n: errno.ENOENT for n in names})
    gated = _dumps(**{n: "x_diag is neither loaded nor built in" for n in names})
    return [(ok, True), (refused, False), (gated, None), (SKIPPED, None),
            (_dumps(**{n: errno.ENOBUFS for n in names}), None)]


for _probe_name, _names, _what, _since, _criu in (
        ("sock_diag_unix", ("unix",), "unix_diag", "3.3", None),
        ("sock_diag_inet", ("tcp4", "udp4", "tcp6", "udp6"), "inet_diag tcp/udp", "3.3", None),
        ("sock_diag_netlink", ("netlink",), "netlink_diag", "3.10", None),
        ("sock_diag_packet", ("packet",), "packet_diag", "3.7", None),
        ("sock_diag_raw", ("raw4", "raw6"), "raw_diag", "4.14", "net_diag_raw")):
    _exercise = _part("sock_diag")
    _exercise.__doc__ = (f"SOCK_DIAG_BY_FAMILY dump of {', '.join(_names)} sockets ({_what}), "
                         "only when the diag module is loaded or built in.")
    if _criu:
        _exercise.__doc__ += (" CRIU's net_diag_raw also counts ENOENT (no raw_diag) as "
                              "collected; here the dumps must really be answered.")
    _exercise.__doc__ += " Asked in a fresh netns, hence CAP_SYS_ADMIN."
    probe(_probe_name, "network", since=_since, criu_name=_criu, needs=NETNS,
          judge=_judge_dumps(_names, _what), examples=_diag_examples(_names))(_exercise)


# --- tun ----------------------------------------------------------------------

def _judge_tun(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["open"] in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return absent(f"open(/dev/net/tun) -> {errname(seen['open'])}")
    if seen["open"]:
        return undecided(f"open(/dev/net/tun) -> {errname(seen['open'])}")
    if seen["setifindex"] == 0:
        return present("TUNSETIFINDEX on an unattached tun fd -> 0")
    if seen["setifindex"] in (errno.EINVAL, errno.ENOTTY):
        return absent(f"TUNSETIFINDEX -> {errname(seen['setifindex'])}")
    return undecided(f"TUNSETIFINDEX -> {errname(seen['setifindex'])}")


@probe("tun", "network", since="3.8", criu_name="tun", needs=NETNS, judge=_judge_tun,
       examples=[({"open": 0, "setifindex": 0, "ns_open": 0, "skns": 0}, True),
                 ({"open": errno.ENOENT}, False),
                 ({"open": 0, "setifindex": errno.EINVAL}, False),
                 ({"skipped": "tun is neither loaded nor built in"}, None), (SKIPPED, None)])
def tun():
    """/dev/net/tun opens and TUNSETIFINDEX works on an unattached fd (tun C/R), as CRIU
    checks it; only when tun is loaded or built in (opening it autoloads the module).
    Runs in the fresh netns, hence CAP_SYS_ADMIN."""
    return _part("tun")()


def _judge_tun_ns(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen.get("open"):
        return _judge_tun(seen)
    if seen.get("ns_open"):
        return undecided(f"open(/dev/net/tun, O_RDONLY) -> {errname(seen['ns_open'])}")
    code = seen["skns"]
    if code == 0:
        return present("ioctl(tun fd, SIOCGSKNS) returned a netns fd")
    if code in (errno.EINVAL, errno.ENOTTY):
        return absent(f"ioctl(tun fd, SIOCGSKNS) -> {errname(code)}")
    return undecided(f"ioctl(tun fd, SIOCGSKNS) -> {errname(code)}")


@probe("tun_ns", "network", since="~4.13", criu_name="tun_ns", needs=NETNS,
       judge=_judge_tun_ns,
       examples=[({"open": 0, "setifindex": 0, "ns_open": 0, "skns": 0}, True),
                 ({"open": 0, "setifindex": 0, "ns_open": 0, "skns": errno.EINVAL}, False),
                 ({"open": 0, "setifindex": 0, "ns_open": 0, "skns": errno.EPERM}, None),
                 ({"open": errno.ENOENT}, False), (SKIPPED, None)])
def tun_ns():
    """ioctl(SIOCGSKNS) on a tun fd: the netns of a tun device's file."""
    return _part("tun")()


# --- netns ids, links ------------------------------------------------------------

def _judge_nsid(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen["errno"] in (errno.EOPNOTSUPP, errno.EINVAL):
        return absent(f"RTM_GETNSID -> {errname(seen['errno'])}")
    if seen["errno"]:
        return undecided(f"RTM_GETNSID -> {errname(seen['errno'])}")
    if seen["nsid"] is None:
        return absent("RTM_GETNSID answered without NETNSA_NSID")
    return present(f"RTM_GETNSID(own pid) -> NETNSA_NSID {seen['nsid']}")


@probe("nsid", "network", since="4.0", criu_name="nsid", needs=NETNS,
       judge=_judge_nsid,
       examples=[({"errno": 0, "nsid": -1}, True), ({"errno": 0, "nsid": None}, False),
                 ({"errno": errno.EOPNOTSUPP}, False), ({"errno": errno.EPERM}, None),
                 (SKIPPED, None)])
def nsid():
    """RTM_GETNSID for our own pid carries NETNSA_NSID (-1 = not assigned counts), as CRIU
    asks it; asked in the fresh netns."""
    return _part("nsid")()


def _judge_link_nsid(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    part = seen["link_nsid"]
    if part.get("unshare"):
        return undecided(f"second netns: unshare -> {errname(part['unshare'])}")
    if "skipped" in part:
        return undecided(part["skipped"])
    if part["veth"]:
        return undecided(f"creating a veth pair across namespaces -> {errname(part['veth'])}")
    if part["link_netnsid"] is None:
        return absent("no IFLA_LINK_NETNSID on a veth whose peer is in another netns")
    nsid_set = seen["newnsid"]
    extra = f"; RTM_NEWNSID set 5, read back {nsid_set.get('get')}" \
        if nsid_set.get("set") == 0 else f"; RTM_NEWNSID -> {errname(nsid_set.get('set'))}"
    return present(f"veth lists IFLA_LINK_NETNSID {part['link_netnsid']}{extra}")


_NETNS_OK = {"link_nsid": {"veth": 0, "link_netnsid": 5}, "newnsid": {"set": 0, "get": 5},
             "external": {"setns": 0, "joined": True}}


@probe("link_nsid", "network", since="4.0", criu_name="link_nsid", needs=NETNS,
       judge=_judge_link_nsid,
       examples=[(_NETNS_OK, True),
                 ({**_NETNS_OK, "link_nsid": {"veth": 0, "link_netnsid": None}}, False),
                 ({**_NETNS_OK, "link_nsid": {"veth": errno.EOPNOTSUPP}}, None),
                 ({**_NETNS_OK, "link_nsid": {"skipped": "veth is neither loaded nor built "
                                                          "in"}}, None),
                 (SKIPPED, None)])
def link_nsid():
    """A veth pair across two namespaces (made in a second fresh netns, peer in the first)
    reports IFLA_LINK_NETNSID in RTM_GETLINK, as CRIU checks it. Also sets a netns id with
    RTM_NEWNSID and reads it back (data in the detail)."""
    return _part("other_netns")()


def _judge_newifindex(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    code = seen["errno"]
    if code == errno.ERANGE:
        return present("IFLA_NEW_IFINDEX=-1 rejected with ERANGE: the attribute is known")
    if code == errno.ENODEV:
        return absent("IFLA_NEW_IFINDEX ignored (RTM_SETLINK -> ENODEV)")
    return undecided(f"RTM_SETLINK with IFLA_NEW_IFINDEX -> {errname(code)}")


@probe("newifindex", "network", since="6.5", criu_name="newifindex", needs=NETNS,
       judge=_judge_newifindex,
       examples=[({"errno": errno.ERANGE}, True), ({"errno": errno.ENODEV}, False),
                 ({"errno": errno.EPERM}, None), (SKIPPED, None)])
def newifindex():
    """IFLA_NEW_IFINDEX (choose a device's ifindex when moving it between namespaces):
    RTM_SETLINK with -1 for a missing device, as CRIU's kerndat sends it."""
    return _part("newifindex")()


def _judge_external(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    part = seen["external"]
    if part.get("unshare"):
        return undecided(f"second netns: unshare -> {errname(part['unshare'])}")
    if part["setns"] in (errno.EINVAL, errno.ENOSYS):
        return absent(f"setns(netns fd, CLONE_NEWNET) -> {errname(part['setns'])}")
    if part["setns"]:
        return undecided(f"setns(netns fd) -> {errname(part['setns'])}")
    if not part["joined"]:
        return undecided("setns returned 0 but /proc/self/ns/net is another namespace")
    return present("joined an existing netns by fd (setns) and found it by its nsfs inode")


@probe("external_net_ns", "network", since="3.8", criu_name="external_net_ns",
       needs=NETNS, judge=_judge_external,
       examples=[(_NETNS_OK, True),
                 ({**_NETNS_OK, "external": {"setns": errno.EINVAL, "joined": False}}, False),
                 ({**_NETNS_OK, "external": {"setns": errno.EPERM, "joined": False}}, None),
                 (SKIPPED, None)])
def external_net_ns():
    """CRIU's external_net_ns is no kernel check: it tells that CRIU (>= 3.10) can dump a
    process whose netns is external (--external net[<inode>]:<key>) and restore it into a
    given one (--inherit-fd). What that needs of the kernel: a netns identified by its
    nsfs inode (/proc/pid/ns/net) and joined by fd with setns(2); that is tested here."""
    return _part("other_netns")()


# --- netfilter -------------------------------------------------------------------

LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64",
            "/usr/lib", "/lib", "/usr/local/lib")
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def _search_path():
    return f"{os.environ.get('PATH', '')}:{SBIN_PATH}"


def _nft_userspace():
    """Where libnftables.so.1 and the nft binary are (no library is loaded)."""
    multiarch = getattr(sys.implementation, "_multiarch", "")
    dirs = ([f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []) + list(LIB_DIRS)
    lib = next((f"{d}/libnftables.so.1" for d in dirs if os.path.exists(f"{d}/libnftables.so.1")),
               None)
    return {"libnftables": lib, "nft": shutil.which("nft", path=_search_path())}


def _judge_nftables(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen.get("socket"):
        if seen["socket"] == errno.EPROTONOSUPPORT:
            return absent("socket(NETLINK_NETFILTER) -> EPROTONOSUPPORT")
        return undecided(f"socket(NETLINK_NETFILTER) -> {errname(seen['socket'])}")
    if seen["getgen"] in (errno.EOPNOTSUPP, errno.ENOENT):
        return absent(f"NFT_MSG_GETGEN -> {errname(seen['getgen'])} (no nf_tables)")
    if seen["getgen"]:
        return undecided(f"NFT_MSG_GETGEN -> {errname(seen['getgen'])}")
    tools = [k for k in ("libnftables", "nft") if seen["userspace"].get(k)]
    if not tools:
        return absent("kernel nf_tables answers, but neither libnftables.so.1 nor nft is "
                      "installed to save/restore rulesets")
    return present(f"nf_tables answers (generation {seen.get('genid')}); "
                   f"{' and '.join(tools)} found")


_NFT_OK = {"socket": 0, "getgen": 0, "genid": 2, "concat": [0, 0],
           "userspace": {"libnftables": "/usr/lib/x86_64-linux-gnu/libnftables.so.1",
                         "nft": None}}


@probe("nftables", "network", since="3.13", criu_name="nftables", needs=NETNS,
       judge=_judge_nftables,
       examples=[(_NFT_OK, True),
                 ({**_NFT_OK, "userspace": {"libnftables": None, "nft": None}}, False),
                 ({"socket": 0, "getgen": errno.EOPNOTSUPP, "userspace": {}}, False),
                 ({"skipped": "nf_tables is neither loaded nor built in"}, None),
                 ({"socket": 0, "getgen": errno.EPERM, "userspace": {}}, None)])
def nftables():
    """CRIU's nftables is a build-time flag: CRIU linked with libnftables, so nft rulesets
    of dumped netns are saved and restored. Here: the kernel's nf_tables answers
    NFT_MSG_GETGEN in a fresh netns (only when nfnetlink and nf_tables are loaded or built
    in) AND a ruleset serializer is installed (libnftables.so.1 or the nft binary)."""
    seen = dict(_part("nftables")())
    seen["userspace"] = _nft_userspace()
    return seen


def _judge_lock_nft(seen):
    verdict = _broken(seen)
    if verdict:
        return verdict
    if seen.get("socket") or seen.get("getgen"):
        return _judge_nftables({**seen, "userspace": {"nft": "-"}})
    concat, plain = seen["concat"], seen.get("plain")
    if concat == [0, 0]:
        return present("table inet + set of ipv4_addr . inet_service (concat field lengths) "
                       "created in a fresh netns")
    if plain == [0, 0]:
        return present("table inet + set with an 8-byte ipv4_addr . inet_service key created; "
                       f"with concat field lengths: {', '.join(errname(c) for c in concat)}")
    codes = ", ".join(errname(c) for c in (plain or concat))
    if (plain or concat)[0] == 0:
        return absent(f"table created, set of a concatenated key refused: {codes}")
    return undecided(f"creating table/set -> {codes}")


@probe("network_lock_nftables", "network", since="3.13", criu_name="network_lock_nftables",
       needs=NETNS, judge=_judge_lock_nft,
       examples=[(_NFT_OK, True),
                 ({**_NFT_OK, "concat": [0, errno.EINVAL], "plain": [0, 0]}, True),
                 ({**_NFT_OK, "concat": [0, errno.EINVAL], "plain": [0, errno.EINVAL]}, False),
                 ({**_NFT_OK, "concat": [errno.ENOMEM, None], "plain": [errno.ENOMEM, None]},
                  None),
                 ({"skipped": "nfnetlink is neither loaded nor built in"}, None)])
def network_lock_nftables():
    """What CRIU's nftables network lock needs: in a fresh netns, `create table inet CRIU`
    and `add set inet CRIU conn { type ipv4_addr . inet_service; }`, sent as raw nfnetlink
    batches (CRIU uses libnftables; the kernel sees the same objects). Kernel-only: an
    engine can send these itself."""
    return _part("nftables")()


def _ipt_version(binary):
    import subprocess
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as e:
        return f"failed: {e}"
    if out.returncode:
        return f"exit {out.returncode}"
    return "nf_tables" if "nf_tables" in out.stdout else "legacy"


def _iptables_legacy():
    """Like CRIU's get_legacy_iptables_bin: <x>-save (else <x>-legacy-save) whose -V output
    does not say nf_tables; the same for ip6tables when IPv6 is on. No rules are read."""
    seen = {"ipv6": os.path.exists("/proc/sys/net/ipv6"), "tools": {}}
    families = ("iptables", "ip6tables") if seen["ipv6"] else ("iptables",)
    for family in families:
        found = None
        for binary in (f"{family}-save", f"{family}-legacy-save"):
            path = shutil.which(binary, path=_search_path())
            kind = _ipt_version(path) if path else "missing"
            seen["tools"][binary] = kind
            if kind == "legacy":
                found = binary
                break
        seen[family] = found
    return seen


def _judge_ipt_legacy(seen):
    families = ("iptables", "ip6tables") if seen["ipv6"] else ("iptables",)
    missing = [f for f in families if not seen.get(f)]
    tools = ", ".join(f"{k}: {v}" for k, v in seen["tools"].items())
    if missing:
        return absent(f"no legacy {' / '.join(missing)} binaries ({tools})")
    return present(f"legacy binaries: {', '.join(seen[f] for f in families)}")


@probe("has_ipt_legacy", "network", criu_name="has_ipt_legacy", judge=_judge_ipt_legacy,
       examples=[({"ipv6": True, "iptables": "iptables-save", "ip6tables": "ip6tables-save",
                   "tools": {"iptables-save": "legacy", "ip6tables-save": "legacy"}}, True),
                 ({"ipv6": True, "iptables": "iptables-legacy-save", "ip6tables": None,
                   "tools": {"ip6tables-save": "nf_tables",
                             "ip6tables-legacy-save": "missing"}}, False),
                 ({"ipv6": False, "iptables": None,
                   "tools": {"iptables-save": "missing", "iptables-legacy-save": "missing"}},
                  False)])
def has_ipt_legacy():
    """Userspace, not kernel: an iptables-save using the legacy (x_tables) backend is
    installed, which CRIU runs to dump and restore iptables rules (binaries found via
    PATH plus the sbin directories; only `-V` is run)."""
    return _iptables_legacy()
