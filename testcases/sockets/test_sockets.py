"""Sockets: unix socketpairs (stream, datagram, seqpacket), named and abstract unix sockets,
listener backlogs, SCM_RIGHTS in flight, shutdown states, socket options, TCP listeners and
established connections, UDP, IPv6 loopback, packet sockets."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent


PROGRAMS = [
    engine_lacks(Program(HERE / "unix_stream_pair.c"), "unix stream socketpair not supported yet", 4),
    engine_lacks(Program(HERE / "unix_dgram_pair.c"), "unix datagram socketpair not supported yet", 4),
    engine_lacks(Program(HERE / "unix_seqpacket_pair.c"), "unix seqpacket socketpair not supported yet", 4),
    engine_lacks(Program(HERE / "unix_listen_backlog.c", dirname=True), "named unix listener with a backlog not supported yet", 4),
    engine_lacks(Program(HERE / "unix_stream_named.c", dirname=True), "connected named unix sockets not supported yet", 4),
    engine_lacks(Program(HERE / "unix_abstract.c"), "abstract unix sockets not supported yet", 4),
    engine_lacks(Program(HERE / "unix_scm_rights.c", filename=True), "SCM_RIGHTS in flight not supported yet", 4),
    engine_lacks(Program(HERE / "unix_shutdown.c"), "unix socket shutdown states not supported yet", 4),
    engine_lacks(Program(HERE / "unix_sockopts.c"), "unix socket options not supported yet", 4),
    engine_lacks(Program(HERE / "tcp_listen.c"), "TCP listening socket not supported yet", 4),
    engine_lacks(Program(HERE / "tcp_established.c"), "established TCP connection not supported yet", 4),
    engine_lacks(Program(HERE / "udp.c"), "UDP socket not supported yet", 4),
    engine_lacks(Program(HERE / "inet6.c"), "IPv6 TCP/UDP socket not supported yet", 4),
    engine_lacks(Program(HERE / "packet_socket.c"), "packet socket not supported yet", 4),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_sockets(zdtm, program):
    zdtm.run(program)
