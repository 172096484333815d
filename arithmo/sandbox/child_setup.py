"""What a sandboxed program's process does between fork and running the program (stdlib only).

Loaded by path by the zygote (`child.py`). In jail mode the zygote mounts a fresh size-limited tmpfs
for each program (its working directory, /tmp and /dev/shm) and drops it afterwards; in the forked child,
`enter` sets a minimal environment, rlimits, the privilege drop, parent-death SIGKILL, fresh random seeds and
counted stdout, then the seccomp filter and, last, the audit hook (each after everything it would refuse has
been used).
"""

import ctypes
import io
import os
import resource
import signal
import stat
import sys
import tempfile

# Linux constants (include/uapi/linux/prctl.h, capability.h, mount.h); Python's os module lacks them.
PR_SET_PDEATHSIG, PR_SET_KEEPCAPS = 1, 8
CAP_DAC_READ_SEARCH, LINUX_CAPABILITY_VERSION_3 = 2, 0x20080522
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 2, 4, 8, 4096, 16384, 1 << 18, 2
# Jail mode: each program's tmpfs is mounted here; work/ is its cwd, tmp/ and shm/ are bound on /tmp, /dev/shm.
BOX = "/box"
JAIL_WRITABLE = [f"{BOX}/work", "/tmp", "/dev/shm"]  # what mount_box returns, always (the hook is made once)
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1"}


def world_readable(folder: str) -> bool:
    """Can a user with no special rights import from `folder` (every ancestor searchable, itself listable)?"""
    path = os.path.realpath(folder)
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        while True:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
            parent = os.path.dirname(path)
            if parent == path:
                return True
            path = parent
    except OSError:
        return True  # a sys.path entry that does not exist cannot block an import


def vm_size_bytes() -> int:
    """This process's mapped address space (VmSize), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def enter(zygote, request: dict, writable: list[str], code: str = "", fresh_generators: bool = False) -> None:
    """Everything between fork and the program: environment, limits, privileges, stdio, seccomp, audit hook.

    `zygote` is the `child.Zygote` (its uid, privileges mode, libc and loaded helper modules);
    `writable` the program's folders: its working directory first, then (jail mode) /tmp and /dev/shm;
    `code` the program (read only to decide whether its random generators need fresh seeds);
    `fresh_generators`: reseed numpy's and sympy's generators whatever the code (a session's later blocks
    are not known yet)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: write() fails with EFBIG instead
    tmp = writable[1] if len(writable) > 1 else writable[0]
    os.environ.clear()
    os.environ.update({**CHILD_ENV, "HOME": writable[0], "TMPDIR": tmp})
    tempfile.tempdir = tmp
    set_limits(request, zygote.baseline_bytes)
    drop_privileges(zygote)
    os.chdir(writable[0])  # after the drop: as root without CAP_DAC_OVERRIDE it could not enter (0700)
    zygote.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # set after setuid, which clears it
    # PID 1 of its own namespace (a session in the jail) sees no parent (getppid() is 0); its namespace dies
    # with the zygote's, which is PID 1 of the jail, so nothing runs unsupervised either way.
    if os.getpid() != 1 and os.getppid() != zygote.own_pid:
        os._exit(70)  # the zygote already died: do not run unsupervised
    # random's own generator: reseeded from os.urandom by the random module's at-fork hook (CPython's
    # random.py registers os.register_at_fork(after_in_child=_inst.seed)); no second seeding here.
    if fresh_generators or "rand" in code:  # numpy's and sympy's generators too, for a program that names one (random, randint,
        # randprime, rand...): reseeding numpy's costs ~0.5 ms, 7% of a program, so not for the others
        for module, reseed in (("numpy", lambda m: m.random.seed()), ("sympy.core.random", lambda m: m.seed())):
            if module in sys.modules:
                reseed(sys.modules[module])
    zygote.runner.CountingFileIO.written = 0  # stdout counts its bytes: "printed nothing" is known here
    sys.stdin, sys.stdout, sys.stderr = zygote.stdio  # made in the zygote, never used there: empty buffers
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    sys.dont_write_bytecode = True
    if zygote.seccomp_filters:  # before the hook, which refuses the ctypes calls this makes
        zygote.seccomp.install(zygote.libc, prepared=zygote.seccomp_filters[request["max_processes"] > 1])
    if request["audit"]:
        prebuilt = zygote.jail_hook if list(writable) == JAIL_WRITABLE else None
        zygote.guard.install_guard(*writable, hide=zygote.hidden_modules, hook=prebuilt)
    # The program can walk its frames up to the zygote's (this process's copy of it): drop the copy's
    # reference, so the installed hook is referenced by nothing a program reaches (issue 24: a program that
    # finds the hook function could rewrite it or set its __cantrace__).
    zygote.jail_hook = None


def _check(libc, result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def make_mounts_private(zygote) -> None:
    """Once, in the zygote (jail mode): no mount made in the jail propagates anywhere else."""
    _check(zygote.libc, zygote.libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


PROC_OPTIONS = b"hidepid=invisible"  # proc(5): processes a reader may not ptrace are not even listed
# Each program's process gets this PID (the counter is set to one below it before each fork), whatever the
# earlier programs of its worker started (issue 24: the next program's os.getpid() told how many threads the
# previous one started, and /proc/loadavg's last PID too).
PROGRAM_PID = 100
MS_REMOUNT, MS_RDONLY = 32, 1


def hide_other_processes(zygote) -> str:
    """Once, in the zygote (jail mode): remount the jail's /proc with hidepid=invisible, so a program sees
    only its own process, not the zygote's /proc/1/stat (whose cutime/cstime add up every earlier program's
    CPU time) nor, in the session host, another session's process. Returns what was done, for the layers."""
    flags = MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC
    if zygote.libc.mount(b"proc", b"/proc", b"proc", flags, PROC_OPTIONS) != 0:
        return f"off: remount /proc: {os.strerror(ctypes.get_errno())}"
    return "on (hidepid=invisible)"


def open_pid_counter(zygote) -> int | None:
    """Once, in the zygote (jail mode): a descriptor on this PID namespace's ns_last_pid (proc(5)), to set
    before each fork. bubblewrap binds /proc/sys read-only, so a private proc instance is mounted on /box for
    the open and detached again (the descriptor stays writable). None where that is refused."""
    for folder in ("/proc", BOX):
        mounted = False
        try:
            if folder == BOX:
                _check(zygote.libc, zygote.libc.mount(b"proc", BOX.encode(), b"proc",
                                                      MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount proc")
                mounted = True
            return os.open(f"{folder}/sys/kernel/ns_last_pid", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        finally:
            if mounted:
                zygote.libc.umount2(BOX.encode(), MNT_DETACH)
    return None


def reset_pid_counter(zygote) -> None:
    """Before each fork of a program: its PID is PROGRAM_PID, whatever ran before (every earlier process of
    the namespace is reaped by now, so the number is free). Raises OSError if the kernel refuses."""
    if zygote.pid_counter_fd is not None:
        os.pwrite(zygote.pid_counter_fd, str(PROGRAM_PID - 1).encode(), 0)


def own_proc(zygote) -> None:
    """In a session's process, PID 1 of its own PID namespace, in its own mount namespace: a fresh /proc of
    that namespace (hidepid=invisible), with /proc/sys bound read-only over itself as bubblewrap had it. The
    session then sees only its own process and threads, numbered from 1, whatever other sessions do."""
    libc = zygote.libc
    _check(libc, libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, PROC_OPTIONS),
           "mount proc")
    _check(libc, libc.mount(b"/proc/sys", b"/proc/sys", None, MS_BIND | MS_REC, None), "bind /proc/sys")
    _check(libc, libc.mount(None, b"/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
                            | MS_NOEXEC, None), "remount /proc/sys read-only")


def mount_box(zygote, request: dict) -> list[str]:
    """Jail mode, in the zygote before each fork: a fresh size-limited tmpfs for the program's working
    directory, bound on /tmp and /dev/shm too. One program runs at a time in a jail, so no other program
    ever sees it; `unmount_box` drops it (and everything in it) after the program's processes are dead.

    Done in the jail's own mount namespace, not a new one per program: unshare(CLONE_NEWNS) and its teardown
    cost ~3.6 ms of wall time per program here against 0.3 ms for these mounts (measured in the jail)."""
    libc = zygote.libc
    # nr_inodes: the program's files plus the root and the three folders made below
    options = f"size={request['disk_mb']}m,nr_inodes={request['max_files'] + 4},mode=0711".encode()
    _check(libc, libc.mount(b"tmpfs", BOX.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options),
           "mount tmpfs")
    folders = [f"{BOX}/{name}" for name in ("work", "tmp", "shm")]
    for folder in folders:
        os.mkdir(folder, 0o700)
        if zygote.privileges == "uid drop":
            os.chown(folder, zygote.uid, zygote.uid)
    for source, target in ((folders[1], "/tmp"), (folders[2], "/dev/shm")):
        _check(libc, libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind {target}")
    return list(JAIL_WRITABLE)


def unmount_box(zygote) -> None:
    """Unmount the program's tmpfs and its two binds, after its processes are dead. A plain umount first:
    it fails with EBUSY when anything still holds a file there (nothing should: issue 24, descriptors kept in
    flight in a socket kept 15 MiB of tmpfs alive per program). Then the mounts are detached anyway and
    OSError says what survived: the zygote reports a failed clean-up and the pool restarts the worker, whose
    jail takes every kernel object of it down with it."""
    survived = []
    for target in ("/dev/shm", "/tmp", BOX):
        if zygote.libc.umount2(target.encode(), 0) != 0:
            number = ctypes.get_errno()
            survived.append(f"{target}: {os.strerror(number)}")
            _check(zygote.libc, zygote.libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")
    if survived:
        raise OSError(f"something outlived the program and held its files ({'; '.join(survived)})")


def make_stdio(counting_file_io) -> tuple:
    """stdin, stdout (counting its bytes) and stderr on descriptors 0, 1, 2, for a child to take over."""
    stdout = io.TextIOWrapper(io.BufferedWriter(counting_file_io(1, "w", closefd=False)), encoding="utf-8",
                              errors="backslashreplace", line_buffering=True)
    return (open(0, encoding="utf-8", closefd=False), stdout,
            open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False))


def set_limits(request: dict, baseline: int) -> None:
    """The program's rlimits; `baseline`: the zygote's mapped size in bytes (RLIMIT_AS comes on top of it)."""
    # wall clock normally stops it first; this bounds CPU regardless (a session: its whole life, "cpu_s")
    cpu_s = int(request.get("cpu_s") or request["timeout_s"] + 2)
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
