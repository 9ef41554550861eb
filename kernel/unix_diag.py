"""unix_diag over sock_diag (kernel.netlink): what the kernel knows of every unix socket of
this network namespace.  Raw netlink rather than pyroute2: importing pyroute2 takes about
0.18 s, which a dump would spend with its tree frozen."""

import socket
import struct

from . import netlink

# <linux/unix_diag.h>
UDIAG_SHOW_NAME, UDIAG_SHOW_VFS, UDIAG_SHOW_PEER, UDIAG_SHOW_ICONS = 0x01, 0x02, 0x04, 0x08
UDIAG_SHOW_RQLEN, UDIAG_SHOW_SHUTDOWN = 0x10, 0x40
UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS, UNIX_DIAG_RQLEN = 1, 2, 3, 4
UNIX_DIAG_SHUTDOWN = 6
REQUEST = struct.Struct("=BBHIIIII")    # family, protocol, pad, states, ino, show, cookie
MESSAGE = struct.Struct("=BBBxIII")     # family, type, state, ino, cookie
PAIR = struct.Struct("=II")


def sockets(show=UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN |
            UDIAG_SHOW_SHUTDOWN):
    """{inode: {"state", "peer", "shutdown", "rqueue", "wqueue", "icons", "vfs"}} of every
    unix socket; for a listener rqueue is its backlog's length, wqueue its maximum; icons are
    the inodes of the connections it has not accepted, in accept order; vfs the (dev, inode)
    of the file a path name made."""
    request = REQUEST.pack(socket.AF_UNIX, 0, 0, 0xffffffff, 0, show, 0, 0)
    with netlink.open_socket(netlink.NETLINK_SOCK_DIAG) as sock:
        replies = netlink.dump(sock, netlink.SOCK_DIAG_BY_FAMILY, request)
    out = {}
    for body in replies:
        _, _, state, inode, _, _ = MESSAGE.unpack_from(body)
        attrs = netlink.attrs(body, MESSAGE.size)
        rqueue, wqueue = PAIR.unpack(attrs[UNIX_DIAG_RQLEN]) if UNIX_DIAG_RQLEN in attrs \
            else (0, 0)
        icons = attrs.get(UNIX_DIAG_ICONS, b"")
        vfs = attrs.get(UNIX_DIAG_VFS)
        out[inode] = {
            "state": state, "rqueue": rqueue, "wqueue": wqueue,
            "peer": struct.unpack("=I", attrs[UNIX_DIAG_PEER])[0] if UNIX_DIAG_PEER in attrs
            else 0,
            "shutdown": attrs[UNIX_DIAG_SHUTDOWN][0] if UNIX_DIAG_SHUTDOWN in attrs else 0,
            "icons": list(struct.unpack(f"={len(icons) // 4}I", icons)),
            "vfs": tuple(reversed(PAIR.unpack(vfs))) if vfs else None}
    return out
