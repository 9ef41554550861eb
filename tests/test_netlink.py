"""kernel.netlink packing and unpacking (the wire format, no socket)."""

import struct

from kernel import netlink


def test_attribute_is_padded_to_four_bytes():
    packed = netlink.attr(7, b"abcde")
    assert len(packed) == 12
    assert struct.unpack_from("=HH", packed) == (9, 7)  # nla_len excludes padding
    assert netlink.attr_list(packed) == [(7, b"abcde")]


def test_string_attribute_is_nul_terminated():
    assert netlink.attr_list(netlink.attr(1, "lo")) == [(1, b"lo\0")]


def test_nested_attributes_round_trip_and_flag_is_masked():
    inner = netlink.attr_u32(2, 42) + netlink.attr_s32(3, -1)
    (kind, payload), = netlink.attr_list(netlink.nested(5, inner))
    assert kind == 5
    parsed = netlink.attrs(payload)
    assert struct.unpack("=I", parsed[2]) == (42,)
    assert struct.unpack("=i", parsed[3]) == (-1,)


def test_big_endian_attribute():
    assert netlink.attr_list(netlink.attr_be32(1, 0x01020304)) == [(1, b"\x01\x02\x03\x04")]


def test_messages_split_a_buffer_of_several():
    first, seq1 = netlink.message(16, 1, b"\x01\x02\x03")
    second, seq2 = netlink.message(3, 0, b"", seq=99)
    assert seq2 == 99
    out = netlink.messages(first + second)
    assert [(k, f, s) for k, f, s, _ in out] == [(16, 1, seq1), (3, 0, 99)]
    assert out[0][3] == b"\x01\x02\x03\0"  # the payload keeps its padding


def test_truncated_message_is_dropped_not_misread():
    whole, _ = netlink.message(16, 0, b"x" * 8)
    assert netlink.messages(whole[:-4]) == []


def test_error_payload():
    assert netlink.error_of(struct.pack("=i", -17) + b"\0" * 16) == 17
    assert netlink.error_of(struct.pack("=i", 0) + b"\0" * 16) == 0
