"""The open files of processes in binary records, by one pass of a BPF task_file iterator
(5.8+) instead of a readlink, an fdinfo text and a stat per fd, and kcmp to tell which fds
share a file description: the record carries the struct file address, so equal addresses
are one description.

Per fd: what fdinfo prints (f_flags, the close-on-exec bit, f_pos, the mount id), what stat
reads from the inode (i_ino, i_size, i_mode, i_rdev, the super block's s_dev, and its magic
to tell whose getattr may say otherwise), whether the inode has a file lock context (fdinfo
lists locks only then), whether the file may have an owner or a signal (F_SETOWN,
F_SETSIG), and the path /proc's link shows, by bpf_d_path on the iterator's file (the same
d_path() the readlink of /proc/PID/fd/N calls).  A kernel whose verifier refuses bpf_d_path
here gets records without paths (``paths`` False).  Only a process's own fd table is read,
as /proc/PID/fd shows it (a thread that unshared its table is skipped).

    with FileIterator() as it:
        for r in it.records(pid):     # FileRecord, in fd order per process
            ...
"""

import struct
from collections import namedtuple

from . import bpf, btf
from .bpfasm import (ADD_K, ADD_X, EXIT, FP, FUNC_D_PATH, FUNC_MAP_LOOKUP_ELEM,
                     FUNC_PROBE_READ_KERNEL, FUNC_SEQ_WRITE, JEQ_K, JGT_K, JNE_X, JSLE_K,
                     LDX_B, LDX_DW, LDX_H, LDX_W, LSH_K, MOV_K, MOV_X, R0, R1, R2, R3, R4,
                     R6, R7, R8, R9, RSH_K, ST_W, STX_DW, STX_W, Program, insn)
from .iters import Iterator

PATH_MAX = 4096             # d_path's buffer, as /proc's readlink has
# one record per fd, then path_len bytes of path (with its NUL; 0: no path).  file: the
# struct file (equal: one description); cloexec_word: the close_on_exec word holding the
# fd's bit; lock_context: i_flctx; owner: a fown_struct * (6.12+) or an embedded one's pid,
# signum: the embedded one's signal
_FIELDS = (("tgid", "I"), ("fd", "I"), ("file", "Q"), ("f_flags", "I"), ("f_mode", "I"),
           ("pos", "Q"), ("ino", "Q"), ("size", "Q"), ("dev", "I"), ("rdev", "I"),
           ("magic", "Q"), ("mode", "I"), ("mnt_id", "I"), ("cloexec_word", "Q"),
           ("lock_context", "Q"), ("owner", "Q"), ("signum", "I"), ("path_len", "I"))
_RECORD = struct.Struct("<" + "".join(fmt for _, fmt in _FIELDS))
_AT = {name: struct.calcsize("<" + "".join(f for _, f in _FIELDS[:i]))
       for i, (name, _) in enumerate(_FIELDS)}
_WIDTH = {name: struct.calcsize(fmt) for name, fmt in _FIELDS}
_LOAD = {1: LDX_B, 2: LDX_H, 4: LDX_W, 8: LDX_DW}

FileRecord = namedtuple("FileRecord", "tgid fd file f_flags f_mode pos ino size dev rdev "
                                      "magic mode mnt_id cloexec lock_context owned path")


def _offsets(types):
    def at(struct_name, path):
        return types.field(struct_name, path)
    owner = at("file", "f_owner")
    embedded = types.kind(owner.type_id) == btf.KIND_STRUCT      # a pointer since 6.12
    return {"meta": at("bpf_iter__task_file", "meta"), "task": at("bpf_iter__task_file", "task"),
            "fd": at("bpf_iter__task_file", "fd"), "file": at("bpf_iter__task_file", "file"),
            "seq": at("bpf_iter_meta", "seq"),
            "tgid": at("task_struct", "tgid"), "pid": at("task_struct", "pid"),
            "files": at("task_struct", "files"), "fdt": at("files_struct", "fdt"),
            "close_on_exec": at("fdtable", "close_on_exec"),
            "f_flags": at("file", "f_flags"), "f_mode": at("file", "f_mode"),
            "pos": at("file", "f_pos"), "f_inode": at("file", "f_inode"),
            "f_path": at("file", "f_path"), "mnt": at("file", "f_path.mnt"),
            "mnt_id": at("mount", "mnt_id").offset - at("mount", "mnt").offset,
            "owner": at("file", "f_owner.pid") if embedded else owner,
            "signum": at("file", "f_owner.signum") if embedded else None,
            "ino": at("inode", "i_ino"), "size": at("inode", "i_size"),
            "rdev": at("inode", "i_rdev"), "mode": at("inode", "i_mode"),
            "lock_context": at("inode", "i_flctx"), "i_sb": at("inode", "i_sb"),
            "dev": at("super_block", "s_dev"), "magic": at("super_block", "s_magic")}


def _program(o, buffer, paths):
    """The record is built in the one-entry map ``buffer``, the path after it (more than
    the stack holds), and written with one bpf_seq_write."""
    p = Program()

    def copy(name, base):       # record.name = *(base + offset of name), as wide as it is
        field = o[name]
        if field.size > _WIDTH[name]:
            raise KeyError(f"{name} of {field.size} bytes")
        p.emit(insn(_LOAD[field.size], R1, base, field.offset),
               insn(STX_DW if _WIDTH[name] == 8 else STX_W, R7, R1, _AT[name]))

    def read_kernel(name):      # record.name = its width of bytes at r3, by helper
        p.emit(insn(MOV_X, R1, R7), insn(ADD_K, R1, imm=_AT[name]),
               insn(MOV_K, R2, imm=_WIDTH[name]))
        p.call(FUNC_PROBE_READ_KERNEL)

    p.emit(insn(MOV_X, R6, R1), insn(LDX_DW, R8, R6, o["task"].offset))
    p.jump(JEQ_K, R8, "out")                # the end of the walk
    p.emit(insn(LDX_DW, R9, R6, o["file"].offset))
    p.jump(JEQ_K, R9, "out")
    # a thread with a table of its own: /proc/PID/fd shows the leader's only
    p.emit(insn(LDX_W, R1, R8, o["pid"].offset), insn(LDX_W, R2, R8, o["tgid"].offset))
    p.jump(JNE_X, R1, "out", src=R2)
    p.emit(insn(ST_W, FP, 0, -4, 0))
    p.ld_map_fd(R1, buffer)
    p.emit(insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=-4))
    p.call(FUNC_MAP_LOOKUP_ELEM)
    p.jump(JEQ_K, R0, "out")
    p.emit(insn(MOV_X, R7, R0))
    p.zero(R7, 0, _RECORD.size)
    copy("tgid", R8)
    copy("fd", R6)
    p.emit(insn(STX_DW, R7, R9, _AT["file"]))
    for name in ("f_flags", "f_mode", "pos", "owner") + (("signum",) if o["signum"] else ()):
        copy(name, R9)
    p.emit(insn(LDX_DW, R2, R9, o["f_inode"].offset))
    p.jump(JEQ_K, R2, "mount")
    for name in ("ino", "size", "rdev", "mode", "lock_context"):
        copy(name, R2)
    p.emit(insn(LDX_DW, R2, R2, o["i_sb"].offset))
    p.jump(JEQ_K, R2, "mount")
    copy("dev", R2)
    copy("magic", R2)
    # fdinfo's mnt_id: in the struct mount around f_path.mnt, outside the vfsmount the
    # verifier knows of: by helper
    p.label("mount")
    p.emit(insn(LDX_DW, R3, R9, o["mnt"].offset), insn(ADD_K, R3, imm=o["mnt_id"]))
    read_kernel("mnt_id")
    # the fd's close-on-exec bit: task->files->fdt->close_on_exec[fd / 64]
    p.emit(insn(LDX_DW, R3, R8, o["files"].offset))
    p.jump(JEQ_K, R3, "path")
    p.emit(insn(LDX_DW, R3, R3, o["fdt"].offset))
    p.jump(JEQ_K, R3, "path")
    p.emit(insn(LDX_DW, R3, R3, o["close_on_exec"].offset),
           insn(LDX_W, R4, R6, o["fd"].offset), insn(RSH_K, R4, imm=6),
           insn(LSH_K, R4, imm=3), insn(ADD_X, R3, R4))
    read_kernel("cloexec_word")
    p.label("path")
    p.emit(insn(MOV_K, R3, imm=_RECORD.size))
    if paths:
        p.emit(insn(MOV_X, R1, R9), insn(ADD_K, R1, imm=o["f_path"].offset),
               insn(MOV_X, R2, R7), insn(ADD_K, R2, imm=_RECORD.size),
               insn(MOV_K, R3, imm=PATH_MAX))
        p.call(FUNC_D_PATH)
        p.emit(insn(MOV_K, R3, imm=_RECORD.size))
        p.jump(JSLE_K, R0, "write")         # an error: no path (the reader readlinks)
        p.jump(JGT_K, R0, "write", imm=PATH_MAX)
        p.emit(insn(STX_W, R7, R0, _AT["path_len"]), insn(ADD_X, R3, R0))
    p.label("write")
    p.emit(insn(LDX_DW, R1, R6, o["meta"].offset), insn(LDX_DW, R1, R1, o["seq"].offset),
           insn(MOV_X, R2, R7))
    p.call(FUNC_SEQ_WRITE)
    p.label("out")
    p.emit(insn(MOV_K, R0, imm=0), insn(EXIT))
    return p.assemble()


class FileIterator(Iterator):
    target = "task_file"

    def __init__(self, types=None, paths=True):
        """``paths``: False for records without paths (as where bpf_d_path is refused)."""
        self.paths = paths
        try:
            super().__init__(types)
        except OSError:
            if not paths:
                raise
            # refused, most likely for bpf_d_path (the one helper verifiers have been
            # strict about): records without paths
            self.paths = False
            super().__init__(types)

    def program(self, types):
        offsets = _offsets(types)
        self.buffer = self.own(bpf.map_create(bpf.MAP_TYPES["array"], 4,
                                              _RECORD.size + PATH_MAX, 1))
        return _program(offsets, self.buffer, self.paths)

    def rows(self, pid=None):
        """(fields, path) per fd of process ``pid`` (None: of every process): the record's
        fields in _FIELDS order and the path's bytes (None where the iterator gave none),
        unnamed, for readers of many."""
        data, at, out = self.read(pid), 0, []
        unpack, size, end = _RECORD.unpack_from, _RECORD.size, len(data)
        while at + size <= end:
            fields = unpack(data, at)
            at += size
            path_len = fields[-1]
            if pid is None or fields[0] == pid:
                out.append((fields, data[at:at + path_len - 1] if path_len else None))
            at += path_len
        return out

    def records(self, pid=None):
        """FileRecords of process ``pid`` (None: of every process)."""
        out = []
        for (tgid, fd, file, f_flags, f_mode, pos, ino, size, dev, rdev, magic, mode, mnt_id,
             cloexec_word, lock_context, owner, signum, _), path in self.rows(pid):
            out.append(FileRecord(
                tgid, fd, file, f_flags, f_mode, pos, ino, size, dev, rdev, magic, mode,
                mnt_id, bool(cloexec_word >> fd % 64 & 1), bool(lock_context),
                bool(owner or signum), path))
        return out
