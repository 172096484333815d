"""Remove a folder a sandboxed program wrote into, whatever shape it left it in (stdlib only).

`shutil.rmtree` recurses once per level: a program that made a 3,000-level tree made it raise RecursionError
(Python 3.11), and full paths that deep pass PATH_MAX (4096 bytes, ENAMETOOLONG). This walks with one open
directory descriptor at a time, relative to its parent (`openat`, `unlinkat`), keeping only the names of the
levels above: no recursion, no long paths, no descriptor per level. The program's processes are dead before
this runs (the caller kills them first), so nothing moves underneath it.

Loaded by path by the zygote (`child.py`) and imported by `pool.py`.
"""

import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _open_dir(name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # the program made it 0o000: its owner (or root) may make it searchable again
        os.chmod(name, 0o700, dir_fd=dir_fd, follow_symlinks=False)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _unlink(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except PermissionError:  # a read-only directory (0o500) refuses unlinking inside it
        os.fchmod(dir_fd, 0o700)
        os.unlink(name, dir_fd=dir_fd)


def remove_tree(path: str) -> int:
    """Delete `path` (a folder, a file or a link; nothing if absent) and all under it; return entries removed.

    Raises OSError when something cannot be removed (the caller treats that as a failed cleanup).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(mode):
        os.unlink(path)
        return 1
    removed = 0
    names: list[str] = []  # the levels below `path` that `fd` is in, outermost first
    fd = _open_dir(path, None)
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    _unlink(entry.name, fd)
                    removed += 1
            if child is not None:  # go one level down; come back here once it is empty
                inner = _open_dir(child, fd)
                os.close(fd)
                fd = inner
                names.append(child)
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = parent
            name = names.pop()
            try:
                os.rmdir(name, dir_fd=fd)
            except PermissionError:
                os.fchmod(fd, 0o700)
                os.rmdir(name, dir_fd=fd)
            removed += 1
    finally:
        os.close(fd)
    os.rmdir(path)
    return removed + 1
