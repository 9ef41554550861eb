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
KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG = 9, 10, 11, 18
_QUALIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)

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

    _vmlinux = None

    @classmethod
    def vmlinux(cls):
        """The running kernel's BTF, parsed once per process (it cannot change)."""
        if BTF._vmlinux is None:
            with open(VMLINUX, "rb") as f:
                BTF._vmlinux = cls(f.read())
        return BTF._vmlinux

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


    def resolve(self, type_id):
        """``type_id`` with typedefs and qualifiers (const, volatile, ...) peeled off."""
        while self.kind(type_id) in _QUALIFIERS:
            type_id = _TYPE.unpack_from(self.data, self._pos(type_id))[2]
        return type_id

    def target(self, type_id):
        """What a PTR points to, or an ARRAY's element type (qualifiers peeled); for an
        ARRAY also its length: (type id, nelems)."""
        type_id = self.resolve(type_id)
        if self.kind(type_id) == KIND_ARRAY:
            elem, _index, nelems = struct.unpack_from("<III", self.data, self._pos(type_id) + 12)
            return self.resolve(elem), nelems
        return self.resolve(_TYPE.unpack_from(self.data, self._pos(type_id))[2]), None

    def sizeof(self, type_id):
        """Byte size of any sized type (pointers are 8 bytes, arrays their whole length)."""
        type_id = self.resolve(type_id)
        kind = self.kind(type_id)
        if kind == KIND_PTR:
            return 8
        if kind == KIND_ARRAY:
            elem, nelems = self.target(type_id)
            return self.sizeof(elem) * nelems
        return self.size(type_id)

    def field(self, struct_name, path):
        """Where member ``path`` ("a.b.c"; members of anonymous structs and unions are
        found through them) of struct ``struct_name`` lies: a Field, or KeyError naming
        what this kernel's BTF lacks.  This is the engine's CO-RE: layouts come from the
        running kernel, never from one kernel's headers."""
        type_id = self.find(struct_name, KIND_STRUCT)
        if type_id is None:
            raise KeyError(f"struct {struct_name}")
        bit_offset, bits = 0, 0
        for name in path.split("."):
            found = self._member(type_id, name)
            if found is None:
                raise KeyError(f"{struct_name}.{path}")
            member_type, offset, bits = found
            bit_offset += offset
            type_id = self.resolve(member_type)
        return Field(bit_offset // 8 if not bits else bit_offset // 32 * 4, bit_offset, bits,
                     type_id, self.sizeof(type_id) if not bits else 4)

    def _member(self, type_id, name):
        """(type id, bit offset, bitfield size or 0) of member ``name``, looked for
        through anonymous members too."""
        info, pos = self._info[type_id], self._pos(type_id) + 12
        kind_flag = info >> 31
        for i in range(info & 0xFFFF):
            name_off, member_type, offset = struct.unpack_from("<III", self.data, pos + 12 * i)
            bits = offset >> 24 if kind_flag else 0
            offset = offset & 0xFFFFFF if kind_flag else offset
            if name_off == 0:
                inner = self.resolve(member_type)
                if self.kind(inner) in (KIND_STRUCT, KIND_UNION):
                    found = self._member(inner, name)
                    if found is not None:
                        return found[0], offset + found[1], found[2]
            elif self.string(name_off) == name:
                return member_type, offset, bits
        return None


class Field:
    """A member's place: ``offset`` in bytes (for a bitfield, of the 32-bit word holding
    it), ``bit_offset`` from the struct's start, ``bits`` (0 unless a bitfield), its type
    id and ``size`` in bytes (4, the word, for a bitfield)."""
    __slots__ = ("offset", "bit_offset", "bits", "type_id", "size")

    def __init__(self, offset, bit_offset, bits, type_id, size):
        self.offset, self.bit_offset, self.bits = offset, bit_offset, bits
        self.type_id, self.size = type_id, size

    def value(self, data, base=0):
        """The member's value in ``data`` (the struct's bytes from ``base``), unsigned."""
        if self.bits:
            word = int.from_bytes(data[base + self.offset:base + self.offset + 4], "little")
            return word >> (self.bit_offset % 32) & ((1 << self.bits) - 1)
        return int.from_bytes(data[base + self.offset:base + self.offset + self.size], "little")


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
