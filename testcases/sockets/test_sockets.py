"""Sockets: unix socketpairs (stream, datagram, seqpacket), named and abstract unix sockets,
listener backlogs, SCM_RIGHTS in flight, shutdown states, socket options, TCP listeners and
established connections, UDP, IPv6 loopback, packet sockets."""

import socket
import threading
from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent


NO_PENDING_DATA = ("--pending_data=0",)
# a zero-length datagram peeked once (here by an earlier dump of the running tree) is
# skipped by every later peek from an offset (net/core/datagram.c): the next dump misses it
EMPTY_DATAGRAM_GAP = ("a zero-length datagram an earlier dump of the running tree peeked at "
                      "is invisible to the next dump's peeks")
PENDING_DATA_GAP = ("data a client sent on a connection not accepted yet: only accept() reads "
                    "it, and that would change the tree")

PROGRAMS = [
    Program(HERE / "unix_stream_pair.c"),
    engine_lacks(Program(HERE / "unix_dgram_pair.c"), EMPTY_DATAGRAM_GAP, 4, when="dumped again"),
    Program(HERE / "unix_seqpacket_pair.c"),
    Program(HERE / "unix_listen_backlog.c", dirname=True, args=NO_PENDING_DATA),
    engine_lacks(Program(HERE / "unix_listen_backlog.c", dirname=True), PENDING_DATA_GAP, 4,
                 id="unix_listen_backlog-pending_data"),
    Program(HERE / "unix_stream_named.c", dirname=True),
    Program(HERE / "unix_abstract.c", args=NO_PENDING_DATA),
    engine_lacks(Program(HERE / "unix_abstract.c"), PENDING_DATA_GAP, 4,
                 id="unix_abstract-pending_data"),
    Program(HERE / "unix_scm_rights.c", filename=True),
    Program(HERE / "unix_shutdown.c"),
    engine_lacks(Program(HERE / "unix_dgram_named.c", dirname=True), EMPTY_DATAGRAM_GAP, 4, when="dumped again"),
    Program(HERE / "unix_peer_closed.c", dirname=True),
    engine_lacks(Program(HERE / "unix_scm_sockets.c"), EMPTY_DATAGRAM_GAP, 4, when="dumped again"),
    Program(HERE / "unix_server.c", dirname=True),
    Program(HERE / "unix_sockopts.c"),
    Program(HERE / "tcp_listen.c"),
    # CRIU wants --tcp-established for any established connection, even one whose ends
    # are both in the tree; the bundled engine needs it only for a peer outside
    Program(HERE / "tcp_established.c", dump_options=("tcp_established",)),
    engine_lacks(Program(HERE / "udp.c"), EMPTY_DATAGRAM_GAP, 4, when="dumped again"),
    engine_lacks(Program(HERE / "inet6.c"), EMPTY_DATAGRAM_GAP, 4, when="dumped again"),
    engine_lacks(Program(HERE / "packet_socket.c"), "packet socket not supported yet", 4),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_sockets(zdtm, program):
    zdtm.run(program)


class EchoPeer:
    """tcp_outside_peer.c's peer, outside the dumped tree: a thread echoing what one client
    sends, except that bytes [``hold_from``, ``hold_to``) wait until `release` - which the
    test calls while the tree is dumped and gone."""

    def __init__(self, hold_from, hold_to):
        self.hold_from, self.hold_to = hold_from, hold_to
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.released = threading.Event()
        self.received, self.error = 0, None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def release(self):
        self.released.set()

    def _serve(self):
        try:
            self.listener.settimeout(30)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(30)
                held = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    start, self.received = self.received, self.received + len(data)
                    cut_from = max(0, min(len(data), self.hold_from - start))
                    cut_to = max(0, min(len(data), self.hold_to - start))
                    conn.sendall(data[:cut_from])
                    held += data[cut_from:cut_to]
                    if self.received >= self.hold_to and held:
                        # --engine none never dumps: send after a while all the same
                        self.released.wait(1.5)
                        conn.sendall(held)
                        held = b""
                    conn.sendall(data[cut_to:])
        except OSError as e:
            self.error = e

    def close(self):
        self.release()
        self.thread.join(35)
        self.listener.close()


def test_tcp_connection_to_a_peer_outside_the_tree(zdtm):
    """--tcp-established: the peer's segments sent while the tree is away are dropped by the
    engine's lock (no RST), retransmitted, and reach the restored socket."""
    peer = EchoPeer(7000, 10000)
    try:
        # the peer is on the host's loopback: the ns flavor's network namespace has no way
        # to it
        zdtm.run(Program(HERE / "tcp_outside_peer.c", args=(f"--port={peer.port}",),
                         dump_options=("tcp_established",), flavors=("h",)),
                 between=peer.release)
    finally:
        peer.close()
    assert peer.error is None, f"the peer's connection failed: {peer.error}"
    assert peer.received == 15000
