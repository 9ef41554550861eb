"""Kernels in QEMU: `python -m vm run` runs a command under Debian's 5.10, 6.1 or 6.12 kernel
(or a local image, or the host's) over the host's root file system; `python -m vm matrix`
runs the probes and the conformance suite under each and reports what differs.

kernels    which kernel, fetched once from Debian's registry, unpacked, cached
initramfs  the guest's init, busybox and the modules it needs, built per run
qemu       one run: the guest, its outcome (ok, failed, timeout, panic, crashed)
matrix     the probes and the suite under each kernel
report     the matrix as Markdown and a self-contained HTML grid
"""
