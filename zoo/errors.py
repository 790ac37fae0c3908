"""The one error type zoo raises for bad input, and the exit codes the CLI maps it to.

Every problem zoo finds in user input (a YAML file, a spec, a CLI argument) becomes a
:class:`Problem` that knows where it is (``file:line:col``), which spec field it concerns
(``stages.2.depth``), what is wrong, and what kind of problem it is. A :class:`ZooError` carries
one or more problems, so a file with three mistakes reports all three at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``zoo`` command (documented in ``zoo --help`` and the README)."""

    OK = 0
    SPEC_ERROR = 1  # the spec is invalid: YAML syntax, validation or shape inference
    USAGE_ERROR = 2  # the command line is invalid (unknown option, malformed --input, ...)
    IO_ERROR = 3  # a file could not be found, read or written


@dataclass(frozen=True)
class Problem:
    """One located problem in user input.

    ``line`` and ``column`` are 1-based (what editors show); ``None`` when unknown.
    ``kind`` is a short machine-readable tag such as ``yaml``, ``extra_forbidden`` or ``shape``.
    """

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""
    kind: str = "error"

    def format(self) -> str:
        """Render as ``file:line:col: path: message``, leaving out the parts that are unknown."""
        where = self.file or "zoo"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        message = " ".join(self.message.split())  # one problem, one line
        path = " ".join(self.path.split())
        return f"{where}: {path}: {message}" if path else f"{where}: {message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ZooError(Exception):
    """Bad input: carries every :class:`Problem` found and the exit code that fits them."""

    def __init__(
        self, problems: list[Problem] | Problem, exit_code: ExitCode = ExitCode.SPEC_ERROR
    ):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.exit_code = exit_code
        super().__init__("\n".join(p.format() for p in self.problems))


class ZooWarning(UserWarning):
    """A spec that compiles but is probably not what its author meant; carries a located Problem."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.format())


def usage_error(message: str, kind: str = "usage", file: str | None = None) -> ZooError:
    """A bad argument to the Python API (or the command line, ``file="zoo"``): exit code
    ``USAGE_ERROR``."""
    return ZooError(Problem(message, file, kind=kind), ExitCode.USAGE_ERROR)


def describe_error(exc: BaseException) -> str:
    """``exc`` as ``Type: message`` on one line, for a problem about foreign code that failed
    (PyTorch's messages span several lines; ``SystemExit``'s alone is only its code)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())
