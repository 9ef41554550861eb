"""TCP connections across C/R beyond what the ZDTM programs check: the network lock's life
(taken at dump, lifted at restore, never left behind), `--leave-running`, a peer outside
the tree without --tcp-established, a port taken before the restore.  Real processes
(tests/programs/subject.py), real connections over loopback."""

import os
import socket

import pytest

import cr_engine
from cr_engine.inet_sockets import LOCK_PREFIX, TCP_REPAIR
from cr_engine.show import render
from kernel import nftables
from kernel.process import pidfd_getfd, pidfd_open

from .engine_subjects import alive, status
from .test_engine_failures import assert_untouched, images_digest


def our_locks():
    """The engine's nf_tables tables made by this test process."""
    return [t for t in nftables.tables() if t.startswith(f"{LOCK_PREFIX}{os.getpid()}-")]


def pair_of(s):
    """(port, client fd, accepted fd) of a tcp_pair subject."""
    with open(s.result + ".port") as f:
        return [int(x) for x in f.read().split()]


def grab(pid, fd):
    pidfd = pidfd_open(pid)
    try:
        return socket.socket(fileno=pidfd_getfd(pidfd, fd))
    finally:
        os.close(pidfd)


@pytest.fixture(autouse=True)
def no_lock_left():
    """A test that fails midway must not leave a lock dropping later connections."""
    yield
    for name in our_locks():
        nftables.delete_table(name)


@pytest.fixture
def outside_peer():
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener
    listener.close()


def test_peer_outside_the_tree_needs_tcp_established(subject, tmp_path, outside_peer):
    port = outside_peer.getsockname()[1]
    s = subject(f"tcp_outside:{port}")
    conn, _ = outside_peer.accept()
    before = status(s.pid)
    with pytest.raises(cr_engine.Unsupported) as err:
        cr_engine.dump(s.pid, tmp_path / "img")
    assert f"unsupported: TCP connection to 127.0.0.1:{port} outside the tree" in str(err.value)
    assert "--tcp-established" in str(err.value) and f"pid {s.pid}" in str(err.value)
    assert our_locks() == []
    assert_untouched(s, before)
    conn.close()


def test_tcp_established_lock_lives_from_dump_to_restore(subject, tmp_path, outside_peer):
    port = outside_peer.getsockname()[1]
    s = subject(f"tcp_outside:{port}")
    conn, _ = outside_peer.accept()
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images, tcp_established=True)
    s.kill()
    locks = our_locks()
    assert len(locks) == 1                      # the peer's segments are dropped meanwhile
    text = "\n".join(render(cr_engine.show(images)))
    assert f"locked by nf_tables table inet {locks[0]}" in text
    conn.send(b"sent while the tree was away")  # dropped: no RST comes back
    restored = cr_engine.restore(images)
    assert our_locks() == []
    mine = grab(restored.root_pid, int(_tcp_fds(restored.root_pid)[0]))
    mine.settimeout(5)
    got = b""
    while len(got) < 28:                        # retransmitted by the peer, after an RTO
        got += mine.recv(64)
    assert got == b"sent while the tree was away"
    mine.send(b"back")
    conn.settimeout(5)
    assert conn.recv(64) == b"back"
    mine.close()
    conn.close()
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)
    assert not any(alive(pid) for pid in dumped.pids if pid != restored.root_pid)


def _tcp_fds(pid):
    return [fd for fd in os.listdir(f"/proc/{pid}/fd") if _is_tcp(pid, fd)]


def _is_tcp(pid, fd):
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    except OSError:
        return False


def test_leave_running_puts_tcp_connections_back_to_work(subject, tmp_path):
    s = subject("tcp_pair")
    _, client_fd, accepted_fd = pair_of(s)
    cr_engine.dump(s.pid, tmp_path / "img", leave_running=True)
    assert our_locks() == []
    client, accepted = grab(s.pid, client_fd), grab(s.pid, accepted_fd)
    for sock in (client, accepted):
        sock.settimeout(5)
        assert sock.getsockopt(socket.IPPROTO_TCP, TCP_REPAIR) == 0
    client.send(b"!")
    got = b""
    while len(got) < 5:
        got += accepted.recv(16)
    assert got == b"ping!"
    assert client.recv(16) == b"pong"
    client.close()
    accepted.close()
    assert s.stop().startswith("alive ")


def test_restore_of_a_tcp_port_now_taken_fails_and_leaves_nothing(subject, tmp_path):
    s = subject("tcp_pair")
    port = pair_of(s)[0]
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    assert our_locks() == []                    # both ends were in the tree
    taker = socket.create_server(("127.0.0.1", port), reuse_port=False)
    before = images_digest(images)
    with pytest.raises(cr_engine.RestoreError) as err:
        cr_engine.restore(images)
    assert f"cannot restore TCP socket 127.0.0.1:{port}" in str(err.value)
    assert "Address already in use" in str(err.value) and "\n" not in str(err.value)
    assert not any(alive(pid) for pid in dumped.pids)
    assert images_digest(images) == before
    taker.close()
    restored = cr_engine.restore(images)
    _, client_fd, accepted_fd = pair_of(s)
    client, accepted = grab(restored.root_pid, client_fd), grab(restored.root_pid, accepted_fd)
    accepted.settimeout(5)
    assert accepted.recv(16) == b"ping"         # the queues came back
    client.close()
    accepted.close()
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)
