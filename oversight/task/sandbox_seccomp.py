"""The sandbox's seccomp filter: system calls a model-written program never needs.

Built with libseccomp (through `pyseccomp`, its ctypes bindings) and handed to bubblewrap
as a compiled BPF program (`--seccomp FD`); bwrap installs it last, just before it
executes the launcher, so it binds the program and everything it starts, and no process
can lift it. Every other call is allowed: this is a deny list of kernel surface that
ordinary Python (numbers, strings, files in /tmp, threads, subprocesses) does not touch and
that has a history of privilege-escalation bugs, on top of the namespaces, which already
make most of these calls fail without capabilities.

A denied call fails with EPERM, as it would for an unprivileged user, so a program that
tries one gets an ordinary `PermissionError` instead of being killed. Two exceptions:
`clone3` fails with ENOSYS (its flags sit in memory, out of a filter's reach; the C
library then falls back to `clone`, whose flags the filter can check), and a call made
through another architecture's system-call table (32-bit `int 0x80`, x32) kills the
process, libseccomp's default for a foreign architecture.
"""

from __future__ import annotations

import errno
import functools
import os

# Grouped by what they reach; all denied with EPERM.
DENIED = (
    # another process's memory or file descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # io_uring: a second system-call interface with a long list of kernel bugs
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # the kernel keyring (per user, so shared with other processes of the uid)
    "keyctl", "add_key", "request_key",
    # programs loaded into the kernel, performance counters, page-fault handlers
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init", "lookup_dcookie",
    # mounts and namespaces
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "unshare", "setns",
    # files by handle (bypasses path permissions on some file systems)
    "name_to_handle_at", "open_by_handle_at",
    # the machine itself: kernels, modules, swap, accounting, quotas, clocks, host names, the log
    "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module", "delete_module",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "syslog", "vhangup",
    # x86 I/O ports and segment tables, old binary formats
    "iopl", "ioperm", "modify_ldt", "uselib",
)

# clone() flags that make a new namespace (<linux/sched.h>).
_CLONE_NEW = {
    "CLONE_NEWTIME": 0x00000080, "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}
# ioctl()s that push characters into a terminal's input (<asm-generic/ioctls.h>); stdin
# is a pipe, but a program might open /dev/tty.
_TTY_INJECT = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}


class SeccompUnavailable(Exception):
    """libseccomp (Debian/Ubuntu package `libseccomp2`) or its bindings cannot be loaded."""


@functools.cache
def program() -> bytes:
    """The compiled filter for this machine's architecture (built once per process)."""
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError, OSError) as exc:
        raise SeccompUnavailable(f"the seccomp library cannot be loaded ({exc})") from None
    f = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED:
        # libseccomp resolves names per architecture; a call this architecture lacks
        # (iopl on arm64) has nothing to deny.
        if sc.resolve_syscall(sc.Arch.NATIVE, name) < 0:
            continue
        f.add_rule(deny, name)
    for flag in _CLONE_NEW.values():
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for request in _TTY_INJECT.values():
        f.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    fd = os.memfd_create("oversight-seccomp")
    try:
        f.export_bpf(_Fd(fd))  # libseccomp writes to the descriptor itself
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


class _Fd:
    """What `export_bpf` asks of a file: its descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def memfd(name: str, data: bytes) -> int:
    """A read fd positioned at the start of `data` (anonymous memory: no file on disk)."""
    fd = os.memfd_create(name)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
