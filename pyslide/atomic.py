"""Atomic file writes for everything pyslide writes; imports only the standard library.

A file written through :func:`atomic_write` is either the complete new file
or, after any failure (an exception, Ctrl-C, a full disk, the process being
killed, two writers racing), the file that was there before: the bytes go to
a temporary file in the same folder, are flushed and fsynced, and only then
renamed over the target with ``os.replace`` (atomic on POSIX and Windows
within one file system).
"""
import contextlib
import os
import stat
import tempfile

__all__ = ["atomic_write", "check_writable", "TEMP_SUFFIX"]

# Temporary files are ".NAME.<random>.tmp" beside the target, so a process
# killed mid-write (which no code can clean up after) leaves a file that is
# hidden and clearly not a model or a data file.
TEMP_SUFFIX = ".tmp"


def _umask():
    # os.umask can only be read by setting it; done once, at import, before
    # any thread of ours could create files
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _is_special(path):
    """True for an existing target that is not a regular file (a device, a FIFO)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _named(exc, path):
    """``exc`` with the file's name, so one line tells the user which file failed."""
    if isinstance(exc, OSError) and not exc.filename and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror or str(exc), path)
    return exc


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open ``path`` for writing so that readers only ever see a complete file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)place. An existing device or FIFO (``/dev/null``,
        ``/dev/stdout``) is written directly: it cannot be replaced, and
        nothing there could be lost.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        For text mode (default UTF-8).

    Yields
    ------
    file object
        Write to it; the target is replaced when the ``with`` block ends
        without an exception. On any exception (``KeyboardInterrupt``
        included) the temporary file is removed and the target is untouched.
        An ``OSError`` without a file name (``ENOSPC`` from a write) is
        re-raised with ``path`` as its file name.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    if _is_special(path):
        try:
            with open(path, mode, encoding=encoding) as f:
                yield f
        except OSError as exc:
            raise _named(exc, path) from None
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX,
                                    dir=folder)
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open()
        # would have (or keep those of the file it replaces)
        try:
            permissions = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            permissions = 0o666 & ~_UMASK
        os.chmod(temp, permissions)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _named(exc, path) from None
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (a power cut right after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:   # some file systems cannot fsync a folder: the rename still happened
        pass
    finally:
        os.close(fd)


def check_writable(path, option, need_bytes=0, regular_only=False):
    """Fail now, naming ``option`` and ``path``, if ``path`` cannot be written later.

    Creates (and removes) a temporary file in the target's folder, as
    :func:`atomic_write` will, and compares the folder's free space with
    ``need_bytes``. ``regular_only`` refuses devices and FIFOs (a model
    written to ``/dev/full`` or ``/dev/null`` would be lost). Meant to run
    before long work (training) whose result
    would otherwise be lost at the end.

    Raises
    ------
    OSError
        With a one-line message: the folder is missing, is read-only, is
        full, or the path is a folder.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OSError(f"{option} {path}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise OSError(f"{option} {path}: is a folder, not a file")
    if _is_special(path):
        if regular_only:
            raise OSError(f"{option} {path}: is not a regular file (a device or a pipe); "
                          f"give a file path")
        return
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX,
                                    dir=folder)
    except OSError as exc:
        raise OSError(f"{option} {path}: cannot create a file in {folder!r} "
                      f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(temp)
    if need_bytes:
        try:
            info = os.statvfs(folder)
        except (AttributeError, OSError):
            return
        free = info.f_bavail * info.f_frsize
        if free < need_bytes:
            raise OSError(f"{option} {path}: the file will need about {need_bytes / 2**20:.1f} "
                          f"MiB but only {free / 2**20:.1f} MiB is free in {folder!r}")
