"""Fault injection for everything zoo writes: what it refuses to replace, full disks, signals in the
middle of a write, closed and full standard output, and readers that close the pipe early.

The rules under test are those of :mod:`zoo.files` and the README's "What zoo writes" section:
nothing but a regular file (or a symlink's target) is ever replaced, never an input of the command,
a failure or an interrupt leaves the old file and no temporary file, and every case is one line on
stderr with a documented exit code.
"""

from __future__ import annotations

import errno
import glob
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import zoo.files
from tests.conftest import run_cli

ZOO = str(Path(sys.executable).parent / "zoo")
OLD = b"the previous checkpoint"
BAD_SPEC = "name: t\ninput: {channels: 1, size: 8}\nstem: [{type: conv, out: 2}]\n"


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# --------------------------------------------------------------------------- what is never replaced
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    try:  # the same device as /dev/null, made in the test's own folder
        os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the socket file stays


def _directory(path: Path) -> None:
    path.mkdir()


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.pt")


def _link_to_fifo(path: Path) -> None:
    os.mkfifo(path.parent / "fifo")
    path.symlink_to("fifo")


def _link_to_directory(path: Path) -> None:
    (path.parent / "folder").mkdir()
    path.symlink_to("folder")


ONLY_REGULAR = "; zoo only replaces regular files"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_fifo, "it is a FIFO (named pipe)" + ONLY_REGULAR),
        (_device, "it is a character device" + ONLY_REGULAR),
        (_socket, "it is a socket" + ONLY_REGULAR),
        (_directory, "it is a directory" + ONLY_REGULAR),
        (_dangling, "it is a symlink to nothing (a dangling link)"),
        (
            _link_to_fifo,
            "it is a FIFO (named pipe) (the target of the symlink {target})" + ONLY_REGULAR,
        ),
        (
            _link_to_directory,
            "it is a directory (the target of the symlink {target})" + ONLY_REGULAR,
        ),
    ],
    ids=["fifo", "device", "socket", "directory", "dangling", "link-to-fifo", "link-to-directory"],
)
@pytest.mark.parametrize("option", ["--output", "--plot"])
def test_only_regular_files_are_replaced(capsys, tmp_path: Path, make, reason, option) -> None:
    target = tmp_path / ("t.pt" if option == "--output" else "t.png")
    make(target)
    before = os.lstat(target)
    command = ("build", "lenet") if option == "--output" else ("bench", "lenet")
    code, out, err = run_cli(capsys, *command, option, str(target))
    assert code == 3 and out == ""
    expected = f"{target}: will not write over it: " + reason.format(target=target)
    assert _one_line(err) == expected
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # untouched
    assert _leftovers(tmp_path) == []


def test_a_symlink_to_a_file_writes_the_file(capsys, tmp_path: Path) -> None:
    real = tmp_path / "real.pt"
    real.write_bytes(OLD)
    real.chmod(0o640)
    link = tmp_path / "link.pt"
    link.symlink_to("real.pt")
    code, _, err = run_cli(capsys, "build", "lenet", "--output", str(link))
    assert code == 0 and f"saved {link}" in err
    assert link.is_symlink() and os.readlink(link) == "real.pt"  # the link itself stays
    assert torch.load(real, weights_only=True)["format"] == "zoo/1"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- modes
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_follow_the_umask(capsys, tmp_path: Path, umask, mask: int, mode: int) -> None:
    os.umask(mask)
    checkpoint, plot = tmp_path / "m.pt", tmp_path / "p.svg"
    assert run_cli(capsys, "build", "lenet", "--output", str(checkpoint))[0] == 0
    assert run_cli(capsys, "bench", "lenet", "--plot", str(plot))[0] == 0
    assert stat.S_IMODE(checkpoint.stat().st_mode) == mode
    assert stat.S_IMODE(plot.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o755, 0o640])
def test_replaced_files_keep_their_mode(capsys, tmp_path: Path, umask, mode: int) -> None:
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)
    target.chmod(mode)
    assert run_cli(capsys, "build", "lenet", "--output", str(target))[0] == 0
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_bytes() != OLD


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_root_replacing_a_file_keeps_its_owner(capsys, tmp_path: Path) -> None:
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)
    os.chown(target, 1234, 5678)
    assert run_cli(capsys, "build", "lenet", "--output", str(target))[0] == 0
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (1234, 5678) and target.read_bytes() != OLD


def test_a_read_only_file_is_refused(capsys, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)
    target.chmod(0o444)
    # root may write anything, so the tests (often run as root) ask os.access as another user would
    real_access = os.access
    monkeypatch.setattr(
        zoo.files.os, "access", lambda p, mode: False if Path(p) == target else real_access(p, mode)
    )
    code, _, err = run_cli(capsys, "build", "lenet", "--output", str(target))
    assert code == 3
    assert _one_line(err) == (
        f"{target}: will not write over it: it is read-only; make it writable (chmod u+w) to "
        "replace it"
    )
    assert target.read_bytes() == OLD


# --------------------------------------------------------------------------- inputs and meta
def test_the_spec_itself_is_never_overwritten(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "lenet.yaml"
    shutil.copy(Path(__file__).parents[1] / "specs" / "lenet.yaml", spec)
    text = spec.read_text()
    (tmp_path / "alias.pt").symlink_to("lenet.yaml")
    for target in (spec, tmp_path / "alias.pt"):
        code, _, err = run_cli(capsys, "build", str(spec), "--output", str(target))
        assert code == 3
        assert "will not write over it: it is an input of this command" in _one_line(err)
    assert spec.read_text() == text


def test_a_base_it_extends_is_never_overwritten(capsys, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    shutil.copy(Path(__file__).parents[1] / "specs" / "lenet.yaml", base)
    (tmp_path / "variant.yaml").write_text("extends: base.yaml\nname: variant\n")
    (tmp_path / "plot.png").symlink_to("base.yaml")
    text = base.read_text()
    code, _, err = run_cli(capsys, "build", str(tmp_path / "variant.yaml"), "--output", str(base))
    assert code == 3 and "it is an input of this command" in _one_line(err)
    code, _, err = run_cli(
        capsys, "bench", str(tmp_path / "variant.yaml"), "--plot", str(tmp_path / "plot.png")
    )
    assert code == 3 and "it is an input of this command" in _one_line(err)
    assert base.read_text() == text


def test_meta_weights_are_not_saved(capsys, tmp_path: Path) -> None:
    target = tmp_path / "m.pt"
    code, _, err = run_cli(capsys, "build", "lenet", "--device", "meta", "--output", str(target))
    assert code == 2 and "--device meta makes none" in _one_line(err)
    assert not target.exists()


# --------------------------------------------------------------------------- failures while writing
class _FailingFile:
    """A file whose writes fail with ``error`` once ``limit`` bytes are written."""

    def __init__(self, handle, error: BaseException, limit: int = 64 * 1024):
        self._handle, self._error, self._left = handle, error, limit

    def write(self, data) -> int:
        self._left -= len(data)
        if self._left < 0:
            raise self._error
        return self._handle.write(data)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


@pytest.fixture
def failing_writes(monkeypatch):
    """Make the temporary file of the next write fail with the given exception."""

    def install(error: BaseException, limit: int = 64 * 1024) -> None:
        real = os.fdopen
        monkeypatch.setattr(
            zoo.files.os, "fdopen", lambda fd, mode: _FailingFile(real(fd, mode), error, limit)
        )

    return install


def test_a_full_disk_is_one_line_and_keeps_the_old_file(capsys, tmp_path, failing_writes) -> None:
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)
    failing_writes(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    code, _, err = run_cli(capsys, "build", "resnet18", "--output", str(target))
    assert code == 3
    assert _one_line(err) == f"{target}: cannot write: No space left on device"
    assert target.read_bytes() == OLD and _leftovers(tmp_path) == []


def test_ctrl_c_inside_torch_save_is_an_interrupt(capsys, tmp_path, failing_writes) -> None:
    # torch.save turns an exception raised by write() into a RuntimeError; zoo sees through it
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)
    failing_writes(KeyboardInterrupt())
    code, _, err = run_cli(capsys, "build", "resnet18", "--output", str(target))
    assert code == 130
    assert _one_line(err) == "interrupted (SIGINT); no file was left half-written"
    assert target.read_bytes() == OLD and _leftovers(tmp_path) == []


def test_a_full_disk_while_plotting(capsys, tmp_path, failing_writes) -> None:
    failing_writes(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), limit=1024)
    code, _, err = run_cli(capsys, "bench", "lenet", "--plot", str(tmp_path / "p.pdf"))
    assert code == 3 and "No space left on device" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_file_size_limit_in_a_real_process(tmp_path: Path) -> None:
    """RLIMIT_FSIZE is how a full disk looks to a process (Python ignores SIGXFSZ: EFBIG)."""
    target = tmp_path / "m.pt"
    target.write_bytes(OLD)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    result = subprocess.run(
        [ZOO, "build", "resnet18", "--output", str(target)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    assert result.returncode == 3
    assert _one_line(result.stderr) == f"{target}: cannot write: File too large"
    assert target.read_bytes() == OLD and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_mid_write_leaves_no_temp_file(tmp_path: Path, signum: int, code: int) -> None:
    """A real `zoo build vgg16 --output` (a 550 MB checkpoint) is stopped (SIGSTOP) once its
    temporary file holds a megabyte, sent the signal, and resumed: the signal lands mid-write."""
    target = tmp_path / "vgg16.pt"
    target.write_bytes(OLD)
    proc = subprocess.Popen(
        [ZOO, "build", "vgg16", "--output", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pattern = str(tmp_path / ".vgg16.pt.*.tmp")
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no temporary file appeared"
            temps = glob.glob(pattern)
            if temps and os.path.getsize(temps[0]) > 1 << 20:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGSTOP)
        assert glob.glob(pattern), "the write finished before the signal could be sent"
        proc.send_signal(signum)
        proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code
    name = signal.Signals(signum).name
    assert _one_line(err.decode()) == f"interrupted ({name}); no file was left half-written"
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg16.pt"]


# --------------------------------------------------------------------------- standard output
def test_closed_stdout_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", f"exec {ZOO} schema >&-"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 3
    assert _one_line(result.stderr) == (
        "zoo: cannot write the results to standard output: it is closed"
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_stdout_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [ZOO, "list", "--json"], stdout=full, stderr=subprocess.PIPE, text=True, check=False
        )
    assert result.returncode == 3
    assert _one_line(result.stderr) == (
        "zoo: cannot write the results to standard output: No space left on device"
    )


class _FullStream:
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "argv", [("schema",), ("validate", "lenet", "--json"), ("resolve", "lenet")], ids=" ".join
)
def test_full_stdout_in_process(capsys, monkeypatch, argv) -> None:
    monkeypatch.setattr(sys, "stdout", _FullStream())
    code, _, err = run_cli(capsys, *argv)
    assert code == 3
    assert _one_line(err) == (
        "zoo: cannot write the results to standard output: No space left on device"
    )


def _closed_pipe(*argv: str, close: str = "stdout") -> tuple[int, str]:
    """Run zoo with the reading end of its stdout (or stderr) closed before it writes."""
    proc = subprocess.Popen(
        [ZOO, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    getattr(proc, close).close()  # the reader is gone (importing torch takes seconds)
    _, err = proc.communicate(timeout=120) if close == "stdout" else (None, b"")
    proc.wait(timeout=120)
    return proc.returncode, (err or b"").decode()


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("validate", "{bad}", "--json"), 1),
        (("build", "{bad}", "--json"), 1),
        (("resolve", "{bad}"), 1),
        (("validate", "lenet", "--json"), 0),
        (("bench", "lenet", "--json"), 0),
    ],
    ids=["validate-bad", "build-bad", "resolve-bad", "validate-ok", "bench-ok"],
)
def test_a_closed_pipe_never_changes_the_exit_code(tmp_path: Path, argv, code: int) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    got, err = _closed_pipe(*(a.format(bad=bad) for a in argv))
    assert got == code and "Traceback" not in err


def test_a_closed_stderr_pipe_never_changes_the_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    assert _closed_pipe("validate", str(bad), close="stderr")[0] == 1
    assert _closed_pipe("list", close="stderr")[0] == 0
