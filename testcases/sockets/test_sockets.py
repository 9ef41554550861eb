"""Sockets: unix socketpairs (stream, datagram, seqpacket), named and abstract unix sockets,
listener backlogs, SCM_RIGHTS in flight, shutdown states, socket options, TCP listeners and
established connections, UDP, IPv6 loopback, packet sockets."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent


NO_PENDING_DATA = ("--pending_data=0",)
PENDING_DATA_GAP = ("data a client sent on a connection not accepted yet: only accept() reads "
                    "it, and that would change the tree")

PROGRAMS = [
    Program(HERE / "unix_stream_pair.c"),
    Program(HERE / "unix_dgram_pair.c"),
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
    Program(HERE / "unix_dgram_named.c", dirname=True),
    Program(HERE / "unix_peer_closed.c", dirname=True),
    Program(HERE / "unix_scm_sockets.c"),
    Program(HERE / "unix_server.c", dirname=True),
    Program(HERE / "unix_sockopts.c"),
    engine_lacks(Program(HERE / "tcp_listen.c"), "TCP listening socket not supported yet", 4),
    engine_lacks(Program(HERE / "tcp_established.c"), "established TCP connection not supported yet", 4),
    engine_lacks(Program(HERE / "udp.c"), "UDP socket not supported yet", 4),
    engine_lacks(Program(HERE / "inet6.c"), "IPv6 TCP/UDP socket not supported yet", 4),
    engine_lacks(Program(HERE / "packet_socket.c"), "packet socket not supported yet", 4),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_sockets(zdtm, program):
    zdtm.run(program)
