"""Where the sandbox's zygotes run: a bubblewrap jail when this machine allows one, else today's fallback.

The jail (`bwrap`, the sandbox Flatpak uses; Debian package `bubblewrap`) gives each zygote a mount namespace
that holds only what programs need, all read-only: the system's shared libraries, the Python runtime
(interpreter, stdlib, libpython; its own site-packages hidden), the packages programs may import (sympy,
mpmath, numpy) under /sandbox/site, the zygote's six stdlib-only files under /sandbox/zygote, a fresh /proc
of its own PID namespace and a minimal /dev. No /etc, /home, /root, /work, /run, no host /tmp or /dev/shm.
New PID, network, IPC, UTS (and cgroup, where possible) namespaces; a new session (no TIOCSTI into our
terminal); killed with its parent (`--die-with-parent`); the zygote is PID 1 (`--as-pid-1`), so no program
can signal it. As root, the zygote keeps only the capabilities it needs to give each program its own tmpfs
and drop it to an unprivileged uid (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL); as another
user, bubblewrap adds a user namespace and the zygote holds those capabilities only inside it.

Where bubblewrap is missing or cannot run (no user namespaces for this user, a container that forbids
mounts), the zygote runs on the host as before (`unshare --net --pid` where allowed): `choose()` warns once
and `sandbox_layers()` records it. docs/sandbox.md says what each layer contains.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZYGOTE_FILES = ("child.py", "guard.py", "runner.py", "seccomp.py",
                "fs.py", "child_setup.py")
ALLOWED_PACKAGES = ("sympy", "mpmath", "numpy")  # what PoT programs import besides the stdlib
JAIL_ZYGOTE_DIR, JAIL_SITE = "/sandbox/zygote", "/sandbox/site"
ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL")
PROBE_TIMEOUT_S = 60.0
# unshare(1) for the fallback, strongest first: as root a PID + network namespace; otherwise the same inside
# a user namespace. --kill-child: if unshare dies, the zygote (PID 1 of the namespace) and everything in it die.
UNSHARE_FLAGS = (("--net", "--pid", "--fork", "--kill-child"),
                 ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"))


def zygote_env() -> dict:
    # Nothing of the caller's environment (tokens, keys) reaches programs. One BLAS thread each (a program
    # gets one core). MALLOC_ARENA_MAX: glibc reserves 64 MiB of address space per extra malloc arena
    # (mallopt(3), M_ARENA_MAX; up to 8 per core), which a thread pool would spend against RLIMIT_AS.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class Jail:
    """How to start a zygote: `command(config)` is its argv; `mode` is "jail" or "host"."""

    mode: str
    prefix: tuple[str, ...]
    python: tuple[str, ...]
    zygote: str
    description: str
    layers: dict = field(default_factory=dict)

    def command(self, config: dict) -> list[str]:
        return [*self.prefix, *self.python, self.zygote, json.dumps({"mode": self.mode, **config})]


def _bwrap() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.path.exists(p)), None)


def _package_dirs() -> dict[str, str]:
    """{name: folder} for each allowed package installed here, plus its auditwheel `<name>.libs` folder."""
    found = {}
    for name in ALLOWED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = os.path.realpath(list(spec.submodule_search_locations)[0])
        found[name] = folder
        libs = os.path.join(os.path.dirname(folder), f"{name}.libs")  # numpy's bundled OpenBLAS
        if os.path.isdir(libs):
            found[f"{name}.libs"] = os.path.realpath(libs)
    return found


def _runtime_binds() -> tuple[list[str], str]:
    """bwrap arguments binding the Python runtime read-only at its own paths, and the interpreter's path."""
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    args = ["--ro-bind", python, python]
    stdlibs = sorted({os.path.realpath(paths["stdlib"]), os.path.realpath(paths["platstdlib"])})
    for folder in stdlibs:
        args += ["--ro-bind", folder, folder]
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        # libpython under the name the interpreter asks the loader for (libpython3.11.so.1.0). Bound under any
        # other name, the loader would find the system's libpython of another patch release in multiarch.
        shared = os.path.join(libdir, soname)
        if os.path.exists(shared):
            args += ["--ro-bind", os.path.realpath(shared), shared]
    for folder in stdlibs:  # the base install's own site-packages (here: IPython, awscli...) stays hidden
        site = os.path.join(folder, "site-packages")
        if os.path.isdir(site):
            args += ["--tmpfs", site, "--remount-ro", site]
    return args, python


def _system_binds() -> list[str]:
    """Top-level links (/lib -> usr/lib on merged-/usr systems) and the system's shared-library folders."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif name.startswith("lib") and os.path.isdir(path):
            args += ["--ro-bind", path, path]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    for folder in ([f"/usr/lib/{multiarch}"] if multiarch else []) + ["/usr/lib64", "/usr/lib/locale"]:
        if os.path.isdir(folder) and not os.path.islink(folder):
            args += ["--ro-bind", folder, folder]
    return args


def _parent_dirs(binds: list[str]) -> list[str]:
    """`--perms 0755 --dir` for every folder above a mount point, outermost first. Left to itself bubblewrap
    copies the host's mode, and /root is 0700 here: the program's uid could not reach the runtime under it."""
    targets = [binds[i + (1 if arg == "--tmpfs" else 2)] for i, arg in enumerate(binds)
               if arg in ("--ro-bind", "--tmpfs", "--symlink")]
    parents: list[str] = []
    for target in targets:
        path = os.path.dirname(target)
        chain = []
        while path not in ("/", ""):
            chain.append(path)
            path = os.path.dirname(path)
        parents += [p for p in reversed(chain) if p not in parents]
    return [arg for folder in parents for arg in ("--perms", "0755", "--dir", folder)]


def bwrap_command(bwrap: str, root: bool) -> tuple[list[str], list[str], dict]:
    """(bwrap prefix, interpreter argv inside the jail, facts for sandbox_layers())."""
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv"]
    if not root:  # bubblewrap without setuid: a user namespace, where our uid is 0 with the caps below
        args += ["--unshare-user", "--uid", "0", "--gid", "0"]
    args += ["--cap-drop", "ALL"]
    for cap in ZYGOTE_CAPS:
        args += ["--cap-add", cap]
    for key, value in zygote_env().items():
        args += ["--setenv", key, value]
    runtime, python = _runtime_binds()
    binds = _system_binds() + runtime
    packages = _package_dirs()
    for name, folder in packages.items():
        binds += ["--ro-bind", folder, f"{JAIL_SITE}/{name}"]
    for name in ZYGOTE_FILES:
        binds += ["--ro-bind", str(HERE / name), f"{JAIL_ZYGOTE_DIR}/{name}"]
    args += _parent_dirs(binds) + binds
    args += ["--proc", "/proc", "--dev", "/dev", "--dir", "/tmp", "--dir", "/box", "--remount-ro", "/dev",
             "--remount-ro", "/", "--chdir", "/", "--"]
    facts = {"bwrap": bwrap, "user_namespace": not root, "network_namespace": True, "mount_namespace": True,
             "packages": sorted(packages)}
    return args, [python, "-I", "-S"], facts


def _probe(jail: Jail, workroot: str | None = None) -> dict:
    """Start a zygote in `jail` in probe mode (no imports, ~50 ms): its layers, or RuntimeError saying why not."""
    config = {"probe": True, "site": JAIL_SITE if jail.mode == "jail" else None, "workroot": workroot}
    try:
        done = subprocess.run(jail.command(config),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S,
                              env=zygote_env(), cwd="/")
    except (OSError, subprocess.TimeoutExpired) as failure:
        raise RuntimeError(str(failure)) from failure
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"exit code {done.returncode}: {' '.join(lines[-3:]) or 'no output'}") from None
    if not report.get("ready"):
        raise RuntimeError(report.get("error", "not ready"))
    return report


def _bubblewrap_jail() -> Jail:
    bwrap = _bwrap()
    if bwrap is None:
        raise RuntimeError("bwrap not found (Debian: apt-get install bubblewrap)")
    prefix, python, facts = bwrap_command(bwrap, root=os.geteuid() == 0)
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    jail = Jail("jail", tuple(prefix), tuple(python), f"{JAIL_ZYGOTE_DIR}/child.py",
                f"{version or 'bubblewrap'} ({'root' if os.geteuid() == 0 else 'user namespace'})",
                {**facts, "bwrap_version": version})
    _probe(jail)
    return jail


def _fallback(reason: str) -> Jail:
    """Today's layers: the zygote on the host, in `unshare --net --pid` where that works."""
    python = (sys.executable, "-I")
    zygote = str(HERE / "child.py")
    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    failures = []
    for flags in UNSHARE_FLAGS if unshare else ():
        if "--user" not in flags and os.geteuid() != 0:
            continue  # PID/network namespaces without a user namespace need root
        jail = Jail("host", (unshare, *flags, "--"), python, zygote, f"fallback: unshare {' '.join(flags)}",
                    {"network_namespace": True, "user_namespace": "--user" in flags, "mount_namespace": False,
                     "fallback_reason": reason})
        with tempfile.TemporaryDirectory(prefix="arithmo-sandbox-probe-") as workroot:
            os.chmod(workroot, 0o711)
            try:
                _probe(jail, workroot)
                return jail
            except RuntimeError as failure:
                failures.append(f"unshare {' '.join(flags)}: {failure}")
    why = "; ".join(failures) if failures else "unshare(1) not found"
    return Jail("host", (), python, zygote, f"fallback: no namespaces ({why})",
                {"network_namespace": False, "user_namespace": False, "mount_namespace": False,
                 "fallback_reason": reason})


@lru_cache(maxsize=2)
def choose(jail: bool | None = None) -> Jail:
    """The strongest containment this machine allows (tried once per process and argument).

    jail=None: bubblewrap if it runs, else the fallback with a warning (once). jail=True: bubblewrap or
    RuntimeError saying why not. jail=False: the fallback (for comparisons and tests).
    """
    if jail is False:
        return _fallback("the fallback was asked for (jail=False)")
    try:
        return _bubblewrap_jail()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as failure:
        if jail is True:
            raise RuntimeError(f"bubblewrap cannot run here: {failure}") from failure
        reason = f"bubblewrap cannot run here: {failure}"
    chosen = _fallback(reason)
    warnings.warn(f"arithmo sandbox: {reason}; running programs with the fallback layers only "
                  f"({chosen.description}): host files stay readable. See docs/sandbox.md.", RuntimeWarning,
                  stacklevel=3)
    return chosen
