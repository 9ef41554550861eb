"""Thin typed ctypes wrappers around Linux system calls (x86-64).

This package is the bottom layer of the project: it holds no policy and
imports nothing else of the project.  Every wrapper raises ``OSError`` with
the kernel's errno on failure, so callers decide what an errno means.
"""
