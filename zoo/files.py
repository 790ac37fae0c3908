"""Writing output files: all or nothing, only over regular files, and one clear line when it fails.

The rules every file zoo writes follows (``--output``, ``--plot``):

- an existing target must be a regular file, or a symlink to one (the link's target is written, the
  link stays); a device, FIFO, socket, directory or dangling symlink is refused, and so is a file
  this user may not write (renaming over it would bypass its permissions);
- a file that is an input of the command (the spec, a base it extends) is never written over;
- the content goes to a temporary file in the target's folder, is flushed to disk, then renamed
  over the target: readers see the old file or the whole new one, never half of it;
- a new file gets ``0666 & ~umask``, a replaced one keeps its mode;
- any failure (disk full, file too large, no permission) and any interrupt (SIGINT, SIGTERM,
  SIGHUP) removes the temporary file and leaves the old file as it was. A failure is a
  :class:`~zoo.errors.ZooError` with exit code 3; an interrupt is :class:`Interrupted`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from zoo.errors import ExitCode, Problem, ZooError, usage_error


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped zoo; ``exit_code`` is the shell's ``128 + N``."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def output_path(value: str, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``value`` of an output option as a path, refused (usage error) when it names no file or has
    none of ``suffixes`` (when given)."""
    path = Path(value)
    if not value.strip() or not path.name or value.endswith(("/", os.sep)) or path.name == "..":
        raise usage_error(f"{option} needs a file name, got {value!r}", file="zoo")
    if suffixes and path.suffix.lower() not in suffixes:
        raise usage_error(
            f"{option} {value}: the file name must end in {', '.join(suffixes)} "
            "(the suffix picks the format)",
            file="zoo",
        )
    return path


def _refuse(path: Path, reason: str) -> ZooError:
    return ZooError(
        Problem(f"will not write over it: {reason}", str(path), kind="io"), ExitCode.IO_ERROR
    )


def _io_error(path: Path, exc: OSError) -> ZooError:
    reason = exc.strerror or str(exc)
    return ZooError(Problem(f"cannot write: {reason}", str(path), kind="io"), ExitCode.IO_ERROR)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` ``mode`` is when it is not a regular file ("a directory", "a FIFO
    (named pipe)", ...); ``None`` for a regular file. Neither read nor written by zoo."""
    if stat.S_ISREG(mode):
        return None
    return next((name for is_kind, name in _KINDS if is_kind(mode)), "not a regular file")


def open_regular(path: Path, check: Callable[[os.stat_result], None]) -> BinaryIO:
    """Open ``path`` for reading after ``check(stat)`` accepted it, and again on the opened file
    (what is there may change between the two): ``check`` raises for a directory, FIFO or device
    (reading one blocks or never ends) and for a size its caller refuses. Opened non-blocking, so
    a FIFO put in the file's place meanwhile cannot hang the open. ``OSError`` passes through."""
    check(os.stat(path))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    handle = os.fdopen(fd, "rb")
    try:
        check(os.fstat(fd))
    except BaseException:
        handle.close()
        raise
    return handle


def writable_target(path: Path, inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The file that writing ``path`` replaces: ``path`` itself, or the regular file a symlink at
    ``path`` points to. Refused (exit 3) when that is not a regular file, is read-only for this
    user, or is one of ``inputs``."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path  # a new file; a missing folder is reported when the file is created
    except OSError as exc:
        raise _io_error(path, exc) from None
    target = path
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.path.realpath(path))
        try:
            info = os.stat(target)
        except OSError:
            raise _refuse(path, "it is a symlink to nothing (a dangling link)") from None
    kind = file_kind(info.st_mode)
    if kind is not None:
        suffix = f" (the target of the symlink {path})" if target != path else ""
        raise _refuse(path, f"it is {kind}{suffix}; zoo only replaces regular files")
    # renaming over a file needs only the folder's permission: honour the file's own, as cp does
    if not os.access(target, os.W_OK):
        raise _refuse(path, "it is read-only; make it writable (chmod u+w) to replace it")
    for source in inputs:
        with contextlib.suppress(OSError):  # an input that is gone cannot be written over
            if os.path.samefile(target, source):
                same = "" if os.path.abspath(source) == os.path.abspath(target) else f" ({source})"
                raise _refuse(path, f"it is an input of this command{same}")
    return target


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask (POSIX has no call that reads it without setting it)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


class _RecordingWriter:
    """Passes writes to ``handle`` and remembers the first exception a write raised.

    ``torch.save`` turns any exception raised by ``write`` (a full disk's ``OSError``, a Ctrl-C)
    into a ``RuntimeError("[enforce fail at inline_container.cc...]")``; the recorded original
    tells what really happened.
    """

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.failure: BaseException | None = None

    def write(self, data: Any) -> int:
        try:
            return self._handle.write(data)
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc
            raise

    def __getattr__(self, name: str) -> Any:  # flush, tell, seek, ... as the file has them
        return getattr(self._handle, name)


_HANDLED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While writing, SIGTERM and SIGHUP raise :class:`Interrupted` (as SIGINT raises
    ``KeyboardInterrupt``), so the temporary file is removed before zoo exits. Handlers that the
    program installed itself, or ignored signals, are left alone; so are other threads."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def interrupt(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    for signum in _HANDLED_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def write_atomically(
    path: Path,
    write: Callable[[BinaryIO], None],
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Call ``write(handle)`` on a temporary file beside the file ``path`` names, then rename it over
    that file, following the rules in this module's docstring. ``inputs`` are files the command read,
    which must not be written over."""
    target = writable_target(path, inputs)
    try:
        existing: os.stat_result | None = os.stat(target)
    except OSError:
        existing = None
    folder = target.parent if str(target.parent) else Path(".")
    with _signals_interrupt():
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as exc:
            raise _io_error(path, exc) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                recorder = _RecordingWriter(handle)
                try:
                    write(recorder)  # type: ignore[arg-type]
                except Exception:
                    if recorder.failure is not None:  # what the writer swallowed, not its wrapper
                        raise recorder.failure from None
                    raise
                handle.flush()
                _set_mode(handle.fileno(), existing)
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            _discard(tmp)
            raise _io_error(path, exc) from None
        except BaseException:
            _discard(tmp)
            raise
    _sync_folder(folder)


def _set_mode(fd: int, existing: os.stat_result | None) -> None:
    """A replaced file keeps its mode (and, for root, its owner); a new one gets 0666 & ~umask
    (``mkstemp`` creates files 0600 whatever the umask)."""
    if existing is None:
        os.fchmod(fd, 0o666 & ~_umask())
        return
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    if os.geteuid() == 0 and (existing.st_uid, existing.st_gid) != (0, 0):
        with contextlib.suppress(OSError):
            os.fchown(fd, existing.st_uid, existing.st_gid)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: some file systems cannot fsync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _discard(tmp: str) -> None:
    with contextlib.suppress(OSError):  # already gone; never hide the error being reported
        os.unlink(tmp)
