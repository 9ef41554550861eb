"""BPF Type Format: a reader for kernel BTF and a builder for tiny BTF blobs.

The reader walks the type section once and keeps, per type id, its name
offset, info word and position, so lookups by name and kind are cheap and
later layers (CO-RE offsets) can decode members on demand.
"""

import struct

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
        self._pos = [0]       # position of type id i (id 0 is void)
        self._name_off = [0]
        self._info = [0]
        pos, end = hdr_len + type_off, hdr_len + type_off + type_len
        unpack = _TYPE.unpack_from
        fixed, entry = _FIXED_TAIL, _ENTRY_TAIL
        while pos < end:
            name_off, info, _ = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            self._pos.append(pos)
            self._name_off.append(name_off)
            self._info.append(info)
            pos += 12 + fixed.get(kind, 0) + entry.get(kind, 0) * (info & 0xFFFF)
        self._by_name = None

    @classmethod
    def vmlinux(cls):
        with open(VMLINUX, "rb") as f:
            return cls(f.read())

    def __len__(self):
        return len(self._pos) - 1

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
        for type_id in self._by_name.get(name.encode(), ()):
            if self.kind(type_id) == kind:
                return type_id
        return None

    def _index_names(self):
        # decode each distinct name offset once; many types share names
        by_off = {}
        for type_id, off in enumerate(self._name_off):
            if off:
                by_off.setdefault(off, []).append(type_id)
        data, base = self.data, self._strings
        index = {}
        for off, ids in by_off.items():
            start = base + off
            index.setdefault(data[start:data.index(b"\0", start)], []).extend(ids)
        return index

    def enum_values(self, type_id):
        """{name: value} of an ENUM or ENUM64 type."""
        kind, info, pos = self.kind(type_id), self._info[type_id], self._pos[type_id] + 12
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
        info, pos = self._info[type_id], self._pos[type_id] + 12
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
