"""nf_tables over raw netlink (kernel.netlink): enough to make a table of drop rules for
given TCP connections and to remove it again - the engine's network lock - and the
constants the prober's nftables check uses.  No nft binary, no libnftables.

Every change goes in one NFNL batch, so a table appears with all its rules or not at all.
"""

import socket
import struct

from . import netlink

# <uapi/linux/netfilter/nf_tables.h>
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE = 0, 1, 2
NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE = 3, 6
NFT_MSG_NEWSET, NFT_MSG_GETGEN = 9, 16
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY = 1, 3, 4, 5
NFTA_CHAIN_TYPE = 7
NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY = 1, 2
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS = 1, 2, 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_OFFSET, NFTA_PAYLOAD_LEN = 1, 2, 3, 4
NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER = 1, 2
NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA = 1, 2, 3
NFT_CMP_EQ = 0
NFTA_DATA_VALUE, NFTA_DATA_VERDICT = 1, 2
NFTA_VERDICT_CODE = 1
NFTA_META_DREG, NFTA_META_KEY = 1, 2
NFT_META_NFPROTO, NFT_META_L4PROTO = 15, 16
NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA = 1, 2
NFT_REG_VERDICT, NFT_REG_1 = 0, 1           # NFT_REG_1: a 16-byte register
NFTA_SET_TABLE, NFTA_SET_NAME, NFTA_SET_FLAGS, NFTA_SET_KEY_TYPE, NFTA_SET_KEY_LEN = 1, 2, 3, 4, 5
NFTA_SET_DESC, NFTA_SET_ID = 9, 10
NFTA_SET_DESC_CONCAT, NFTA_SET_FIELD_LEN = 2, 1
NFT_SET_CONCAT = 0x80
NFT_GENMSG_GENID = 1
NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6 = 1, 2, 10
NF_DROP, NF_ACCEPT = 0, 1
HOOK_INPUT, HOOK_OUTPUT = 1, 3

# where the addresses sit in each family's header: (offset of the source, address size)
_ADDRESSES = {socket.AF_INET: (12, 4), socket.AF_INET6: (8, 16)}
_NFPROTO = {socket.AF_INET: NFPROTO_IPV4, socket.AF_INET6: NFPROTO_IPV6}


def msg_type(msg):
    """The netlink message type of nf_tables message ``msg``."""
    return (netlink.NFNL_SUBSYS_NFTABLES << 8) | msg


def transaction(sock, parts):
    """Send ``parts`` [(NFT_MSG_*, flags, payload)] as one batch; the errnos of the parts
    (0 acked, None not reached)."""
    begin = netlink.nfgenmsg(socket.AF_UNSPEC, netlink.NFNL_SUBSYS_NFTABLES)
    answers = netlink.batch(sock, [(netlink.NFNL_MSG_BATCH_BEGIN, 0, begin)] +
                            [(msg_type(kind), flags, payload) for kind, flags, payload in parts] +
                            [(netlink.NFNL_MSG_BATCH_END, 0, begin)])
    return answers[1:-1]


# expressions ---------------------------------------------------------------------------------
def _expr(name, *attrs):
    return netlink.nested(NFTA_LIST_ELEM, netlink.attr(NFTA_EXPR_NAME, name),
                          netlink.nested(NFTA_EXPR_DATA, *attrs))


def _load(base, offset, length):
    return _expr("payload", netlink.attr_be32(NFTA_PAYLOAD_DREG, NFT_REG_1),
                 netlink.attr_be32(NFTA_PAYLOAD_BASE, base),
                 netlink.attr_be32(NFTA_PAYLOAD_OFFSET, offset),
                 netlink.attr_be32(NFTA_PAYLOAD_LEN, length))


def _meta(key):
    return _expr("meta", netlink.attr_be32(NFTA_META_DREG, NFT_REG_1),
                 netlink.attr_be32(NFTA_META_KEY, key))


def _equals(data):
    return _expr("cmp", netlink.attr_be32(NFTA_CMP_SREG, NFT_REG_1),
                 netlink.attr_be32(NFTA_CMP_OP, NFT_CMP_EQ),
                 netlink.nested(NFTA_CMP_DATA, netlink.attr(NFTA_DATA_VALUE, data)))


def _verdict(code):
    return _expr("immediate", netlink.attr_be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT),
                 netlink.nested(NFTA_IMMEDIATE_DATA, netlink.nested(
                     NFTA_DATA_VERDICT, netlink.attr_be32(NFTA_VERDICT_CODE, code))))


def tcp_match(family, src, dst):
    """Expressions matching TCP segments from ``src`` to ``dst`` ((address, port) of
    ``family``)."""
    offset, size = _ADDRESSES[family]
    exprs = [_meta(NFT_META_NFPROTO), _equals(bytes([_NFPROTO[family]])),
             _meta(NFT_META_L4PROTO), _equals(bytes([socket.IPPROTO_TCP]))]
    for at, (address, _) in ((offset, src), (offset + size, dst)):
        exprs += [_load(NFT_PAYLOAD_NETWORK_HEADER, at, size),
                  _equals(socket.inet_pton(family, address))]
    exprs += [_load(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4),
              _equals(struct.pack("!HH", src[1], dst[1]))]
    return exprs


# a table of drop rules ---------------------------------------------------------------------
def _table_attr(name):
    return netlink.nfgenmsg(NFPROTO_INET) + netlink.attr(NFTA_TABLE_NAME, name)


def _chain(table, name, hook):
    return (NFT_MSG_NEWCHAIN, netlink.NLM_F_CREATE,
            netlink.nfgenmsg(NFPROTO_INET) + netlink.attr(NFTA_CHAIN_TABLE, table) +
            netlink.attr(NFTA_CHAIN_NAME, name) +
            netlink.nested(NFTA_CHAIN_HOOK, netlink.attr_be32(NFTA_HOOK_HOOKNUM, hook),
                           netlink.attr_be32(NFTA_HOOK_PRIORITY, 0)) +
            netlink.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT) + netlink.attr(NFTA_CHAIN_TYPE, "filter"))


def _rule(table, chain, exprs):
    return (NFT_MSG_NEWRULE, netlink.NLM_F_CREATE | netlink.NLM_F_APPEND,
            netlink.nfgenmsg(NFPROTO_INET) + netlink.attr(NFTA_RULE_TABLE, table) +
            netlink.attr(NFTA_RULE_CHAIN, chain) +
            netlink.nested(NFTA_RULE_EXPRESSIONS, *exprs))


def drop_tcp(name, connections):
    """Create table inet ``name`` dropping every segment of ``connections`` [(family,
    local, remote)], both ways, in the input and output hooks; raise OSError if the kernel
    refuses any part (nothing is left then)."""
    parts = [(NFT_MSG_NEWTABLE, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL, _table_attr(name)),
             _chain(name, "input", HOOK_INPUT), _chain(name, "output", HOOK_OUTPUT)]
    both_ways = set()       # a connection with both ends listed needs its rules once
    for family, local, remote in connections:
        if (family, remote, local) in both_ways:
            continue
        both_ways.add((family, local, remote))
        drop = [_verdict(NF_DROP)]
        parts.append(_rule(name, "input", tcp_match(family, remote, local) + drop))
        parts.append(_rule(name, "output", tcp_match(family, local, remote) + drop))
    with netlink.open_socket(netlink.NETLINK_NETFILTER) as sock:
        answers = transaction(sock, parts)
    try:
        _check(answers, f"create nf_tables table inet {name}")
    except OSError:
        # a batch is all or nothing, but a lost answer may hide that it went through
        delete_table(name)
        raise


def tables():
    """Names of the nf_tables tables of family inet."""
    with netlink.open_socket(netlink.NETLINK_NETFILTER) as sock:
        replies = netlink.dump(sock, msg_type(NFT_MSG_GETTABLE), netlink.nfgenmsg(NFPROTO_INET))
    return [netlink.attrs(body, netlink.NFGENMSG.size)[NFTA_TABLE_NAME].rstrip(b"\0").decode()
            for body in replies]


def delete_table(name):
    """Remove table inet ``name``; False when there was none."""
    with netlink.open_socket(netlink.NETLINK_NETFILTER) as sock:
        answer = transaction(sock, [(NFT_MSG_DELTABLE, 0, _table_attr(name))])
    if answer[0] == 2:                                  # ENOENT
        return False
    _check(answer, f"delete nf_tables table inet {name}")
    return True


def _check(answers, what):
    for code in answers:
        if code:
            raise OSError(code, f"cannot {what}")
        if code is None:
            raise OSError(0, f"cannot {what}: the kernel did not answer")
