"""BPF Type Format: a reader for kernel BTF and a builder for tiny BTF blobs.

The reader walks the type section once and keeps, per type id, its name
offset, info word and position, so lookups by name and kind are cheap and
later layers (CO-RE offsets) can decode members on demand.
"""

import array
import itertools
import struct
import sys

VMLINUX = "/sys/kernel/btf/vmlinux"
MAGIC = 0xEB9F

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_FWD, KIND_TYPEDEF, KIND_FUNC, KIND_FUNC_PROTO, KIND_ENUM64 = 7, 8, 12, 13, 19

_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
# bytes after the 12-byte btf_type: fixed part, and per-vlen-entry part
_FIXED_TAIL = {1: 4, 3: 12, 14: 4, 17: 4}
_ENTRY_TAIL = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}


class BTF:
    """One parsed BTF blob (vmlinux or a module's); type ids start at 1."""

    def __init__(self, data: bytes):
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = \
            _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(f"not BTF: magic {magic:#x}")
        self.data = data
        self._strings = hdr_len + str_off
        self._strings_end = self._strings + str_len
        self._types = hdr_len + type_off
        # The type section is a sequence of 4-byte words: walk it as an array of u32, which
        # is about twice as fast as struct.unpack per type (vmlinux has ~130k types).
        words = array.array("I")
        words.frombytes(data[self._types:self._types + type_len])
        if sys.byteorder != "little":
            words.byteswap()
        fixed, entry = [0] * 32, [0] * 32
        for kind, size in _FIXED_TAIL.items():
            fixed[kind] = size // 4
        for kind, size in _ENTRY_TAIL.items():
            entry[kind] = size // 4
        wpos, name_off, infos = [0], [0], [0]   # per type id (id 0 is void)
        add_pos, add_name, add_info = wpos.append, name_off.append, infos.append
        pos, end = 0, len(words)
        while pos < end:
            info = words[pos + 1]
            kind = (info >> 24) & 0x1F
            add_pos(pos)
            add_name(words[pos])
            add_info(info)
            pos += 3 + fixed[kind] + entry[kind] * (info & 0xFFFF)
        self._wpos = wpos      # position of type id i in words from the type section
        self._name_off = name_off
        self._info = infos
        self._by_name = None

    @classmethod
    def vmlinux(cls):
        with open(VMLINUX, "rb") as f:
            return cls(f.read())

    def __len__(self):
        return len(self._wpos) - 1

    def _pos(self, type_id):
        """Byte position of type id's struct btf_type in data."""
        return self._types + 4 * self._wpos[type_id]

    def string(self, off):
        start = self._strings + off
        return self.data[start:self.data.index(b"\0", start)].decode()

    def kind(self, type_id):
        return (self._info[type_id] >> 24) & 0x1F

    def name(self, type_id):
        return self.string(self._name_off[type_id])

    def find(self, name, kind):
        """Id of the type called ``name`` of ``kind``, or None."""
        if self._by_name is None:
            self._by_name = self._index_names()
        by_name, extra, first, last = self._by_name
        key = name.encode()
        for off in (by_name.get(key), *extra.get(key, ())):
            if off is None or off not in first:
                continue
            type_id, stop = first[off], last[off]
            while True:
                if self.kind(type_id) == kind:
                    return type_id
                if type_id >= stop:
                    break
                type_id = self._name_off.index(off, type_id + 1)
        return None

    def _index_names(self):
        """(name -> string offset, name -> further offsets, offset -> first type id,
        offset -> last type id).

        Built with C-level loops (dict/zip/accumulate/set): a Python loop over every type
        costs tens of milliseconds on vmlinux. Types sharing a name are found between the
        first and last id with list.index. Strings stored twice (BTF not deduplicated) and
        names that start inside another string go to the second map.
        """
        strings = self.data[self._strings:self._strings_end].split(b"\0")
        offsets = list(itertools.accumulate(map((1).__add__, map(len, strings)), initial=0))
        by_name = dict(zip(strings, offsets))
        extra = {}
        deduplicated = len(by_name) == len(strings)
        if not deduplicated:
            for string, off in zip(strings, offsets):
                if by_name[string] != off:
                    extra.setdefault(string, []).append(off)
        ids = range(len(self._name_off))
        last = dict(zip(self._name_off, ids))
        first = dict(zip(reversed(self._name_off), reversed(ids)))
        first.pop(0, None)
        starts = by_name.values() if deduplicated else set(offsets)
        for off in first.keys() - starts:
            extra.setdefault(self.string(off).encode(), []).append(off)
        return by_name, extra, first, last

    def size(self, type_id):
        """Byte size of an INT, STRUCT, UNION, ENUM or ENUM64 type (the btf_type size word)."""
        return _TYPE.unpack_from(self.data, self._pos(type_id))[2]

    def enum_values(self, type_id):
        """{name: value} of an ENUM or ENUM64 type."""
        kind, info, pos = self.kind(type_id), self._info[type_id], self._pos(type_id) + 12
        values = {}
        for i in range(info & 0xFFFF):
            if kind == KIND_ENUM:
                name_off, value = struct.unpack_from("<Ii", self.data, pos + 8 * i)
            else:
                name_off, lo, hi = struct.unpack_from("<III", self.data, pos + 12 * i)
                value = lo | (hi << 32)
            values[self.string(name_off)] = value
        return values

    def members(self, type_id):
        """[(name, type_id, bit_offset)] of a STRUCT or UNION."""
        info, pos = self._info[type_id], self._pos(type_id) + 12
        bitfield = info >> 31
        out = []
        for i in range(info & 0xFFFF):
            name_off, member_type, offset = struct.unpack_from("<III", self.data, pos + 12 * i)
            out.append((self.string(name_off), member_type,
                        offset & 0xFFFFFF if bitfield else offset))
        return out


class Builder:
    """Assemble a small BTF blob (e.g. the int types a map's key/value need)."""

    def __init__(self):
        self._types = []
        self._strings = bytearray(b"\0")

    def _str(self, name):
        if not name:
            return 0
        off = len(self._strings)
        self._strings += name.encode() + b"\0"
        return off

    def _add(self, raw):
        self._types.append(raw)
        return len(self._types)  # type id

    def int(self, name, size, signed=False):
        encoding = 1 if signed else 0
        return self._add(_TYPE.pack(self._str(name), KIND_INT << 24, size)
                         + struct.pack("<I", (encoding << 24) | (size * 8)))

    def struct(self, name, size, members):
        """members: [(name, type_id, byte_offset)]."""
        raw = _TYPE.pack(self._str(name), (KIND_STRUCT << 24) | len(members), size)
        for member_name, type_id, offset in members:
            raw += struct.pack("<III", self._str(member_name), type_id, offset * 8)
        return self._add(raw)

    def blob(self):
        types = b"".join(self._types)
        strings = bytes(self._strings)
        return _HEADER.pack(MAGIC, 1, 0, _HEADER.size, 0, len(types), len(types),
                            len(strings)) + types + strings
