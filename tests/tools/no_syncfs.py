#!/usr/bin/env python3
"""Run a command with `syncfs` refused (EPERM) by a seccomp filter, as a
system call filter that lacks it would: `no_syncfs.py PROGRAM ARGS...`.

Used by the test of the daemon's state flush that falls back to syncing
each file when `syncfs` is refused.
"""
import ctypes
import os
import platform
import struct
import sys

# (audit arch, syncfs number) per machine.
ARCH = {"x86_64": (0xC000003E, 306), "aarch64": (0xC00000B7, 267)}

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    arch, nr = ARCH[platform.machine()]
    prog = b"".join([
        insn(BPF_LD_W_ABS, 0, 0, 4),        # the architecture
        insn(BPF_JEQ_K, 0, 3, arch),        # another one: allow
        insn(BPF_LD_W_ABS, 0, 0, 0),        # the system call number
        insn(BPF_JEQ_K, 0, 1, nr),          # not syncfs: allow
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ])
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fprog_buf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    # Pointers are passed whole, not as C ints.
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buf), 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_SECCOMP): {os.strerror(ctypes.get_errno())}")
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
