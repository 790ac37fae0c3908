"""Writing output files: all or nothing, and one clear line when it cannot be done."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from zoo.errors import ExitCode, Problem, ZooError


def output_path(value: str, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``value`` of an output option as a path, refused (usage error) when it names no file or has
    none of ``suffixes`` (when given)."""
    path = Path(value)
    if not value.strip() or not path.name or value.endswith(("/", os.sep)) or path.name == "..":
        raise ZooError(
            Problem(f"{option} needs a file name, got {value!r}", "zoo", kind="usage"),
            ExitCode.USAGE_ERROR,
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise ZooError(
            Problem(
                f"{option} {value}: the file name must end in {', '.join(suffixes)} "
                "(the suffix picks the format)",
                "zoo",
                kind="usage",
            ),
            ExitCode.USAGE_ERROR,
        )
    return path


def _io_error(path: Path, exc: OSError) -> ZooError:
    reason = exc.strerror or str(exc)
    return ZooError(
        Problem(f"cannot write {path}: {reason}", str(path), kind="io"), ExitCode.IO_ERROR
    )


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, then rename it to ``path``:
    readers see the old file or the whole new one, never half of it; on failure nothing is left."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _io_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _io_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    with contextlib.suppress(OSError):  # already gone; never hide the error being reported
        os.unlink(tmp)
