"""A seccomp filter for sandboxed programs, written as classic BPF by hand (stdlib only: no libseccomp here).

Installed in each program's process (and inherited by its threads) just before the program runs. A refused
system call fails with an errno, so Python raises a clear OSError instead of the process dying:

- creating processes: `fork`, `vfork`, and `clone` without CLONE_THREAD get EPERM (threads still work); `clone3`
  gets ENOSYS, so glibc falls back to `clone` as it does on kernels older than 5.3, and the flags are checked
  there (clone3 passes them in memory, which a seccomp filter cannot read);
- replacing the process: `execve`, `execveat` (EPERM): no new interpreter without the audit hook and limits;
- memory the address-space limit does not see: `memfd_create`, SysV `shmget`/`msgget`, POSIX `mq_open`,
  io_uring (anonymous shared memory lives in the kernel's shm mount, not in the program's RLIMIT_AS);
- kernel objects that would outlive the program in its worker: every SysV IPC call (semaphores, shared
  memory, message queues) and POSIX message queues (EPERM);
- channels between programs through files every jail shares (the read-only runtime, bound from the host):
  `flock`, record locks, leases and dnotify through `fcntl` (other fcntl commands are allowed), inotify,
  fanotify, `cachestat` (EPERM), and `preadv2`/`pwritev2` (ENOSYS, so glibc uses preadv/pwritev: no
  RWF_NOWAIT probe of the page cache);
- kernel objects that would outlive the program through a socket: `socket` and `socketpair` of every family
  (EPERM). A program sent descriptors over a socketpair to itself (SCM_RIGHTS): in flight, they kept an
  abstract Unix listener and its tmpfs files alive after it died (150 MiB of Shmem for 10 programs); TCP
  states (TIME_WAIT) would outlive it in the jail's network namespace the same way. `pidfd_getfd` (EPERM):
  no descriptor taken from another process. A session's one socket (to the evaluator) is made before this
  filter; what it sends the evaluator with descriptors attached is dropped unread (the kernel closes them);
- kernel interfaces no program needs: ptrace and reading other processes' memory, namespaces and mounts,
  keyrings, bpf, perf events, userfaultfd, modules, kexec, swap, reboot, accounting, quotas, file handles.

Sources: the BPF encoding and `struct seccomp_data` (nr at offset 0, arch at 4, args[0] at 16) from the Linux
UAPI headers (linux/filter.h, linux/bpf_common.h, linux/seccomp.h) and Documentation/userspace-api/
seccomp_filter.rst; system call numbers from arch/x86/entry/syscalls/syscall_64.tbl and
include/uapi/asm-generic/unistd.h (aarch64), checked against /usr/include/*/asm/unistd_64.h here.
"""

import ctypes
import errno
import platform
import struct

# linux/bpf_common.h: class | size | mode, and the jump/return opcodes used below.
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
# linux/seccomp.h return actions.
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
# struct seccomp_data, little-endian: nr, arch, then args[0] at 16 and args[1] at 24 (their low words)
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW, OFFSET_ARG1_LOW = 0, 4, 16, 24
CLONE_THREAD = 0x00010000  # linux/sched.h
X32_SYSCALL_BIT = 0x40000000  # x86-64's x32 ABI numbers: refused outright
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
# fcntl commands refused (include/uapi/asm-generic/fcntl.h, linux/fcntl.h): POSIX and OFD record locks
# (F_GETLK included: testing for another jail's lock on a shared library reads a bit), leases, dnotify.
FCNTL_REFUSED = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)  # F_GETLK, F_SETLK, F_SETLKW, F_OFD_*, F_*LEASE, F_NOTIFY

# name -> number, per machine. AUDIT_ARCH_* = EM_* | 64-bit | little-endian (linux/audit.h).
ARCHES = {
    "x86_64": {"audit_arch": 0xC000003E, "syscalls": {
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "msgget": 68, "mq_open": 240,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "unshare": 272, "setns": 308, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "fsopen": 430, "fsmount": 432, "fsconfig": 431,
        "fspick": 433, "open_tree": 428, "move_mount": 429, "keyctl": 250, "add_key": 248, "request_key": 249,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "swapon": 167, "swapoff": 168,
        "reboot": 169, "acct": 163, "quotactl": 179, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "uselib": 134,
        # the rest of SysV IPC and POSIX message queues: kernel objects that outlive the program (issue 24)
        "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220,
        "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_unlink": 241, "mq_timedsend": 242,
        "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
        # channels through files every jail shares (the read-only runtime): locks and watches
        "flock": 73, "inotify_init": 253, "inotify_add_watch": 254, "inotify_rm_watch": 255,
        "inotify_init1": 294, "fanotify_init": 300, "fanotify_mark": 301, "cachestat": 451,
        # no new socket of any family: descriptors in flight (SCM_RIGHTS) in a socket kept them alive past the
        # program, abstract Unix names and TCP states lived on in the jail's network namespace (issue 24)
        "socket": 41, "socketpair": 53, "pidfd_getfd": 438},
        "fcntl": 72, "enosys": {"preadv2": 327, "pwritev2": 328}},
    "aarch64": {"audit_arch": 0xC00000B7, "syscalls": {
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "memfd_create": 279, "memfd_secret": 447,
        "shmget": 194, "msgget": 186, "mq_open": 180, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "fsopen": 430,
        "fsmount": 432, "fsconfig": 431, "fspick": 433, "open_tree": 428, "move_mount": 429, "keyctl": 219,
        "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294,
        "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89, "quotactl": 60, "open_by_handle_at": 265,
        "name_to_handle_at": 264,
        "shmat": 196, "shmctl": 195, "shmdt": 197, "semget": 190, "semop": 193, "semctl": 191, "semtimedop": 192,
        "msgsnd": 189, "msgrcv": 188, "msgctl": 187, "mq_unlink": 181, "mq_timedsend": 182,
        "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185,
        "flock": 32, "inotify_add_watch": 27, "inotify_rm_watch": 28, "inotify_init1": 26,
        "fanotify_init": 262, "fanotify_mark": 263, "cachestat": 451,
        "socket": 198, "socketpair": 199, "pidfd_getfd": 438},
        "fcntl": 25, "enosys": {"preadv2": 286, "pwritev2": 287}},
}
PROCESS_CREATION = ("fork", "vfork")  # clone is checked by its flags, clone3 answered ENOSYS


def machine() -> str | None:
    """The machine name this filter knows (x86_64, aarch64), or None."""
    name = platform.machine().lower()
    name = {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)
    return name if name in ARCHES else None


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}


def build_filter(arch: str, allow_processes: bool) -> bytes:
    """The filter program (struct sock_filter[], 8 bytes each) for `arch`; see the module docstring."""
    table = ARCHES[arch]
    numbers = table["syscalls"]
    refused = [n for name, n in numbers.items() if name not in ("clone", "clone3", *PROCESS_CREATION)]
    if not allow_processes:
        refused += [numbers[name] for name in PROCESS_CREATION if name in numbers]
    program = [_insn(LD_W_ABS, OFFSET_ARCH), _insn(JEQ_K, table["audit_arch"], 1, 0),
               _insn(RET_K, RET_KILL_PROCESS),  # another ABI (i386 via int 0x80): its numbers differ
               _insn(LD_W_ABS, OFFSET_NR)]
    if arch == "x86_64":
        program += [_insn(JGE_K, X32_SYSCALL_BIT, 0, 1), _insn(RET_K, RET_ERRNO | errno.ENOSYS)]
    for number in refused:
        program += [_insn(JEQ_K, number, 0, 1), _insn(RET_K, RET_ERRNO | errno.EPERM)]
    program += [_insn(JEQ_K, numbers["clone3"], 0, 1), _insn(RET_K, RET_ERRNO | errno.ENOSYS)]
    for number in table["enosys"].values():  # glibc falls back to preadv/pwritev (no flags, no RWF_NOWAIT)
        program += [_insn(JEQ_K, number, 0, 1), _insn(RET_K, RET_ERRNO | errno.ENOSYS)]
    # fcntl: locks, leases and directory notifications refused (EPERM); every other command allowed.
    # Layout: JEQ fcntl; load args[1]; one JEQ per command (to EPERM); ALLOW; EPERM.
    count = len(FCNTL_REFUSED)
    program += [_insn(JEQ_K, table["fcntl"], 0, count + 3), _insn(LD_W_ABS, OFFSET_ARG1_LOW)]
    program += [_insn(JEQ_K, command, count - index, 0) for index, command in enumerate(FCNTL_REFUSED)]
    program += [_insn(RET_K, RET_ALLOW), _insn(RET_K, RET_ERRNO | errno.EPERM)]
    if not allow_processes:  # clone: allowed only with CLONE_THREAD (a thread, not a process)
        program += [_insn(JEQ_K, numbers["clone"], 0, 3), _insn(LD_W_ABS, OFFSET_ARG0_LOW),
                    _insn(JSET_K, CLONE_THREAD, 1, 0), _insn(RET_K, RET_ERRNO | errno.EPERM)]
    program.append(_insn(RET_K, RET_ALLOW))
    return b"".join(program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def prepare(allow_processes: bool):
    """The filter as the kernel takes it (a struct sock_fprog and its buffer), built once in the zygote so
    each child only makes the two prctl calls (building it per child cost ~0.6 ms, measured here).
    Raises RuntimeError on a machine this module has no system call table for."""
    arch = machine()
    if arch is None:
        raise RuntimeError(f"no seccomp system call table for {platform.machine()!r}")
    program = build_filter(arch, allow_processes)
    buffer = ctypes.create_string_buffer(program, len(program))
    return _SockFprog(len(program) // 8, ctypes.addressof(buffer)), buffer


def install(libc, allow_processes: bool = False, prepared=None) -> None:
    """Install the filter on the calling thread (threads it starts inherit it); raises OSError if refused.

    Sets PR_SET_NO_NEW_PRIVS first, which the kernel requires of a process without CAP_SYS_ADMIN.
    `prepared`: the result of `prepare(allow_processes)`, when built beforehand.
    """
    fprog, _buffer = prepared or prepare(allow_processes)
    ulong = ctypes.c_ulong
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
