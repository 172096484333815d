"""What a sandboxed program's process does between fork and running the program (stdlib only).

Loaded by path by the zygote (`_sandbox_child.py`) and run in each forked child: in jail mode a new mount
namespace with a fresh size-limited tmpfs for its working directory, /tmp and /dev/shm; a minimal
environment; rlimits; the privilege drop; parent-death SIGKILL; fresh random seeds; counted stdout; then the
seccomp filter and, last, the audit hook (each after everything it would refuse has been used).
"""

import ctypes
import io
import os
import random
import resource
import signal
import sys
import tempfile

# Linux constants (include/uapi/linux/prctl.h, capability.h, sched.h, mount.h); Python's os module lacks them.
PR_SET_PDEATHSIG, PR_SET_KEEPCAPS = 1, 8
CAP_DAC_READ_SEARCH, LINUX_CAPABILITY_VERSION_3 = 2, 0x20080522
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 8, 4096, 16384, 1 << 18
# Jail mode: each program's tmpfs is mounted here; work/ is its cwd, tmp/ and shm/ are bound on /tmp, /dev/shm.
BOX = "/box"
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1"}


def vm_size_bytes() -> int:
    """This process's mapped address space (VmSize), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def enter(zygote, request: dict, workdir: str | None) -> None:
    """Everything between fork and the program: files, limits, privileges, stdio, seccomp, audit hook.

    `zygote` is the `_sandbox_child.Zygote` (its uid, privileges mode, libc and loaded helper modules)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: write() fails with EFBIG instead
    writable = [workdir] if workdir is not None else enter_box(zygote, request)
    tmp = workdir if workdir is not None else "/tmp"
    os.environ.clear()
    os.environ.update({**CHILD_ENV, "HOME": writable[0], "TMPDIR": tmp})
    tempfile.tempdir = tmp
    set_limits(request)
    drop_privileges(zygote)
    os.chdir(writable[0])  # after the drop: as root without CAP_DAC_OVERRIDE it could not enter (0700)
    zygote.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # set after setuid, which clears it
    if os.getppid() != zygote.own_pid:
        os._exit(70)  # the zygote already died: do not run unsupervised
    random.seed()  # a fresh interpreter seeds from os.urandom; a fork would copy the zygote's state
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # numpy's global generator too
    zygote.runner.CountingFileIO.written = 0  # stdout counts its bytes: "printed nothing" is known here
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(zygote.runner.CountingFileIO(1, "w", closefd=False)),
                                  encoding="utf-8", errors="backslashreplace", line_buffering=True)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    sys.dont_write_bytecode = True
    if not zygote.seccomp_state.startswith("off"):  # before the hook, which refuses the ctypes calls it makes
        zygote.seccomp.install(zygote.libc, allow_processes=request["max_processes"] > 1)
    if request["audit"]:
        zygote.guard.install_guard(*writable)


def enter_box(zygote, request: dict) -> list[str]:
    """Jail mode: a new mount namespace with a fresh size-limited tmpfs for the cwd, /tmp and /dev/shm."""
    def check(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")
    check(zygote.libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(zygote.libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    # nr_inodes: the program's files plus the root and the three folders made below
    options = f"size={request['disk_mb']}m,nr_inodes={request['max_files'] + 4},mode=0711".encode()
    check(zygote.libc.mount(b"tmpfs", BOX.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options),
          "mount tmpfs")
    folders = [f"{BOX}/{name}" for name in ("work", "tmp", "shm")]
    for folder in folders:
        os.mkdir(folder, 0o700)
        if zygote.privileges == "uid drop":
            os.chown(folder, zygote.uid, zygote.uid)
    for source, target in ((folders[1], "/tmp"), (folders[2], "/dev/shm")):
        check(zygote.libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind {target}")
    return [folders[0], "/tmp", "/dev/shm"]


def set_limits(request: dict) -> None:
    cpu_s = int(request["timeout_s"]) + 2  # wall clock normally stops it first; this bounds CPU regardless
    baseline = vm_size_bytes()  # the preloaded libraries are already mapped: the allowance comes on top
    # Tasks of the program's uid (the kernel counts threads too): itself + its threads, or max_processes.
    tasks = request["max_processes"] if request["max_processes"] > 1 else 1 + request["max_threads"]
    limits = {resource.RLIMIT_CPU: (cpu_s, cpu_s + 1),
              resource.RLIMIT_AS: (baseline + (request["memory_mb"] << 20),) * 2,
              resource.RLIMIT_FSIZE: (request["max_file_bytes"],) * 2,
              resource.RLIMIT_NPROC: (tasks, tasks),
              resource.RLIMIT_NOFILE: (64, 64),
              resource.RLIMIT_CORE: (0, 0)}
    for kind, value in limits.items():
        resource.setrlimit(kind, value)


def drop_privileges(zygote) -> None:
    if zygote.privileges == "uid drop":
        drop_uid(zygote)
    elif zygote.privileges == "capabilities dropped":
        capset(zygote.libc, 0)


def drop_uid(zygote) -> None:
    """setuid to the zygote's unprivileged uid (keeping CAP_DAC_READ_SEARCH only where the runtime needs it)."""
    if zygote.keep_read_search and zygote.libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_KEEPCAPS)")
    os.setgroups([])
    os.setgid(zygote.uid)
    os.setuid(zygote.uid)
    if zygote.keep_read_search:
        capset(zygote.libc, 1 << CAP_DAC_READ_SEARCH)


def capset(libc, mask: int) -> None:
    """capset(2): effective = permitted = `mask` (capability bits 0-31), nothing inheritable."""
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(mask, mask, 0, 0, 0, 0)
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
