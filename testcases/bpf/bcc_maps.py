#!/usr/bin/python3
"""Maps made by bcc: a BPF C text declaring a hash with a struct value, a per-CPU array, an
LRU hash, an LPM trie, a queue, a stack and an array of maps (with its inner array), which
bcc compiles and creates at load; the program fills them through bcc's table API, then
after restore reads them through the same bcc objects (the fds bcc holds): every entry,
every CPU's value, the trie's longest-prefix answers, the queue's and stack's pop order, the
inner map behind the outer slot; and the kernel's view (type, name, sizes, max_entries) of
each map is as bcc made it.  Written in Python: bcc is a Python library."""

import ctypes as ct
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "lib"), HERE, os.path.join(HERE, "..", "..")]
import zdtmtst  # noqa: E402
from bcc_headers import kernel_source  # noqa: E402

from kernel import bpf  # noqa: E402

TEXT = """
struct val { u32 a; u64 b; };
struct lpm_key { u32 prefixlen; u32 addr; };
BPF_HASH(counts, u32, struct val, 1024);
BPF_PERCPU_ARRAY(pcpu, u64, 16);
BPF_TABLE("lru_hash", u32, u64, lru, 64);
BPF_LPM_TRIE(trie, struct lpm_key, int, 16);
BPF_QUEUE(q, u32, 8);
BPF_STACK(st, u32, 8);
BPF_ARRAY(inner, u64, 4);
BPF_ARRAY_OF_MAPS(outer, "inner", 4);
"""
PREFIXES = [(8, 0x0a000000, 1), (16, 0x0a010000, 2), (24, 0x0a010200, 3)]  # 10/8 10.1/16...


def fd_of(table):
    return table.map_fd if hasattr(table, "map_fd") else table.get_fd()


def kernel_view(b, names):
    return {n: {k: v for k, v in bpf.map_info(fd_of(b[n])).items() if k != "id"}
            for n in names}


def main():
    zdtmtst.init()
    source = kernel_source()
    if source:
        os.environ["BCC_KERNEL_SOURCE"] = str(source)
    from bcc import BPF
    b = BPF(text=TEXT)
    names = ("counts", "pcpu", "lru", "trie", "q", "st", "inner", "outer")
    counts, pcpu, lru, trie = b["counts"], b["pcpu"], b["lru"], b["trie"]
    for i in range(0, 600, 3):
        counts[ct.c_uint32(i)] = counts.Leaf(a=i * 7, b=(i << 40) | 0xbeef)
    cpus = pcpu.total_cpu
    for i in range(16):
        pcpu[ct.c_int(i)] = pcpu.Leaf(*[i * 100 + c for c in range(cpus)])
    for i in range(40):
        lru[ct.c_uint32(i)] = ct.c_uint64(i * i)
    for length, addr, value in PREFIXES:
        trie[trie.Key(length, socket.htonl(addr))] = ct.c_int(value)  # prefixes: bytes
    for i in (11, 22, 33):
        b["q"].push(ct.c_uint32(i))
        b["st"].push(ct.c_uint32(i))
    b["inner"][ct.c_int(1)] = ct.c_uint64(0x1122334455)
    b["outer"][ct.c_int(2)] = ct.c_int(fd_of(b["inner"]))
    before = kernel_view(b, names)

    zdtmtst.daemon()
    zdtmtst.waitsig()

    bad = []
    after = kernel_view(b, names)
    for n in names:
        if before[n] != after[n]:
            bad.append(f"{n}: the kernel shows {after[n]}, was {before[n]}")
    got = {k.value: (v.a, v.b) for k, v in counts.items()}
    want = {i: (i * 7, (i << 40) | 0xbeef) for i in range(0, 600, 3)}
    if got != want:
        bad.append(f"counts: {len(got)} entries, {sum(got.get(k) == v for k, v in want.items())} "
                   f"of {len(want)} right")
    for i in range(16):
        values = list(pcpu[ct.c_int(i)])
        if values != [i * 100 + c for c in range(cpus)]:
            bad.append(f"pcpu[{i}]: {values}")
    got = {k.value: v.value for k, v in lru.items()}
    if got != {i: i * i for i in range(40)}:
        bad.append(f"lru: {sorted(got.items())[:5]}... ({len(got)} entries)")
    for addr, value in ((0x0a020304, 1), (0x0a01ff01, 2), (0x0a010207, 3)):
        got = trie[trie.Key(32, socket.htonl(addr))].value
        if got != value:
            bad.append(f"trie: {addr:#x} matched {got}, expected {value}")
    popped = [b["q"].pop().value for _ in range(3)], [b["st"].pop().value for _ in range(3)]
    if popped != ([11, 22, 33], [33, 22, 11]):
        bad.append(f"queue and stack popped {popped}")
    inner_id = ct.c_uint32.from_buffer_copy(
        bpf.map_lookup(fd_of(b["outer"]), (2).to_bytes(4, "little"), 4)).value
    if inner_id != bpf.map_info(fd_of(b["inner"]))["id"]:
        bad.append(f"outer[2] holds map {inner_id}, not the inner map bcc holds")
    if b["inner"][ct.c_int(1)].value != 0x1122334455:
        bad.append(f"inner[1] is {b['inner'][ct.c_int(1)].value:#x}")
    counts[ct.c_uint32(1)] = counts.Leaf(a=1, b=2)         # still writable
    if counts[ct.c_uint32(1)].b != 2:
        bad.append("counts: a new entry did not stick")
    for what in bad:
        zdtmtst.fail(what)
    if not bad:
        zdtmtst.passed()


main()
