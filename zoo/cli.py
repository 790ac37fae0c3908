"""The ``zoo`` command: build, trace, validate and list specs.

Human output (tables, progress, errors) goes to stderr; ``--json`` writes only JSON to stdout.
A reader that closes either stream early (``| head``) ends that output quietly but never changes
the exit code; any other failure to write stdout (closed, full) is one line and exit code 3.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import io
import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zoo.errors import ExitCode, Problem, ZooError, ZooWarning, usage_error
from zoo.files import Interrupted, output_path, writable_target
from zoo.plot import PLOT_SUFFIXES
from zoo.shapes import pair
from zoo.traces import parse_input_shape

EXIT_CODES = """\
exit codes:
  0  success
  1  invalid spec: YAML syntax, validation or shape error (each reported as file:line:col: path: message)
  2  invalid command line (unknown option, malformed --input, a --device this machine lacks, ...)
  3  a file could not be found, read or written (zoo refuses to write over anything but a
     regular file, and over the command's own inputs); standard output is closed or full
  130, 143, 129  interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP; a file being written is
     removed and the old one kept
"""

# at most 9 digits a size: more than any size zoo takes (2^20), and int() refuses 4,300+ digits
_INPUT_RE = re.compile(r"^(?:(\d{1,9})x)?(\d{1,9})x(\d{1,9})x(\d{1,9})$")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2, without a traceback, and
    takes no abbreviated options (``--js`` would silently mean ``--json``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise usage_error(f"{message} (see `{self.prog} --help`)", file=self.prog)


def parse_input(text: str) -> tuple[int, int, int, int]:
    """``8x3x1024x1024`` or ``3x224x224`` -> ``(N, C, H, W)`` (batch 1 when left out)."""
    match = _INPUT_RE.match(text.strip().lower())
    if not match or any(int(g) == 0 for g in match.groups() if g is not None):
        raise usage_error(
            f"--input must look like [N]xCxHxW with positive sizes (e.g. 3x224x224), got {text!r}",
            file="zoo",
        )
    n, c, h, w = match.groups()
    return parse_input_shape((int(n or 1), int(c), int(h), int(w)))  # type: ignore[return-value]


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, validated like the file (e.g. --set stages.2.depth=23); repeatable",
    )


def _command(
    sub: Any, name: str, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with the exit codes."""
    return sub.add_parser(
        name,
        help=help,
        description=description or help[0].upper() + help[1:] + ".",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="zoo",
        description="Define, inspect and compare convolutional architectures from YAML specs.",
        epilog=EXIT_CODES
        + "\nSPEC is a path to a YAML file or the name of a shipped spec (see `zoo list`).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    build = _command(
        sub,
        "build",
        help="compile a spec; --trace prints per-layer shapes, parameters and multiply-adds",
        description="Compile SPEC into an nn.Module. Without --output or --device nothing is built: "
        "shapes and counts are worked out from the spec, with no memory for weights. SPEC may be a "
        "checkpoint that --output wrote (.pt/.pth): its spec is traced, and --output or --device "
        "load its weights instead of initializing fresh ones.",
    )
    build.add_argument(
        "spec", metavar="SPEC", help="YAML path, shipped spec name, or a zoo checkpoint (.pt/.pth)"
    )
    build.add_argument(
        "--trace", action="store_true", help="print one row per layer (output shape, params, MACs)"
    )
    build.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="trace rows at most N levels deep (1: blocks only; a top-level sequential such as "
        "torchvision's features takes no level)",
    )
    build.add_argument(
        "--tree", action="store_true", help="render the trace as a tree instead of a table"
    )
    build.add_argument(
        "--input", metavar="[N]xCxHxW", help="input shape (default: the spec's input, batch 1)"
    )
    build.add_argument("--json", action="store_true", help="write the trace as JSON to stdout")
    build.add_argument(
        "--output",
        metavar="FILE.pt",
        help="save the weights and the spec: a checkpoint that `zoo build FILE.pt` and zoo.load read",
    )
    build.add_argument(
        "--device", metavar="DEVICE", help="materialize the model on this device (cpu, cuda, ...)"
    )
    build.add_argument(
        "--force",
        action="store_true",
        help="materialize (or read a checkpoint) even above the 8 GiB weight-memory limit",
    )
    _add_set(build)

    validate = _command(
        sub,
        "validate",
        help="check specs (YAML, fields, shapes) and report every problem",
        description="Validate each SPEC and infer its shapes (nothing is built); report all problems "
        "found.",
    )
    validate.add_argument(
        "specs", metavar="SPEC", nargs="+", help="YAML paths or shipped spec names"
    )
    validate.add_argument(
        "--json", action="store_true", help="write results and problems as JSON to stdout"
    )
    _add_set(validate)

    resolve = _command(
        sub,
        "resolve",
        help="print the fully resolved spec (extends and --set applied) as YAML",
        description="Resolve SPEC's extends: chain and --set overrides, validate the result, and "
        "print it as plain YAML that builds the same model.",
    )
    resolve.add_argument("spec", metavar="SPEC", help="YAML path or shipped spec name")
    resolve.add_argument(
        "--expand",
        action="store_true",
        help="apply the spec's scale and write every preset (basic, inception, ...) as the "
        "generic block it stands for: the spec exactly as zoo plans it",
    )
    _add_set(resolve)

    listing = _command(
        sub,
        "list",
        help="list the shipped specs with their parameters and multiply-adds",
    )
    listing.add_argument("--json", action="store_true", help="write the list as JSON to stdout")

    bench = _command(
        sub,
        "bench",
        help="parameters, multiply-adds, memory and (--latency) speed of specs, side by side",
        description="Compare specs: parameters, multiply-adds, weight and activation memory (float32 "
        "estimates, from shape inference: no weights allocated), and with --latency the median "
        "forward and forward+backward time after warm-up. The table goes to stderr; --json/--csv "
        "go to stdout.",
    )
    bench.add_argument("specs", metavar="SPEC", nargs="*", help="YAML paths or shipped spec names")
    bench.add_argument("--all", action="store_true", help="every shipped spec")
    bench.add_argument(
        "--input", metavar="[N]xCxHxW", help="input shape for every spec (default: each spec's)"
    )
    bench.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="batch size, each spec at its own input size (instead of --input)",
    )
    bench.add_argument(
        "--latency", action="store_true", help="also time forward and forward+backward"
    )
    bench.add_argument("--device", help="device for --latency (default cpu; cuda, ...)")
    output = bench.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="write rows as JSON to stdout")
    output.add_argument("--csv", action="store_true", help="write rows as CSV to stdout")
    bench.add_argument(
        "--plot", metavar="FILE.png", help="plot parameters against multiply-adds (log axes)"
    )
    bench.add_argument(
        "--sort",
        metavar="COLUMN",
        help="sort by a column: spec A-Z, numbers largest first (params, macs, latency_ms, ...)",
    )

    diff = _command(
        sub,
        "diff",
        help="compare two specs stage by stage, and the spec fields that differ",
    )
    diff.add_argument("a", metavar="A", help="YAML path or shipped spec name")
    diff.add_argument("b", metavar="B", help="YAML path or shipped spec name")
    diff.add_argument(
        "--input", metavar="[N]xCxHxW", help="input shape for both (default: each spec's)"
    )
    diff.add_argument("--json", action="store_true", help="write the comparison as JSON to stdout")

    _command(
        sub,
        "schema",
        help="print the JSON Schema of the spec format (for editor completion)",
    )
    return parser


# --------------------------------------------------------------------------- commands
def _cmd_build(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.checkpoint import is_checkpoint_name, read_checkpoint, save
    from zoo.render import human, shape_text, trace_table, trace_tree
    from zoo.spec import load_spec
    from zoo.tracing import trace

    if args.depth is not None and args.depth < 1:
        raise usage_error("--depth must be at least 1", file="zoo")
    dims = parse_input(args.input) if args.input is not None else None
    output = output_path(args.output, "--output") if args.output is not None else None
    from_checkpoint = is_checkpoint_name(args.spec)
    if from_checkpoint and args.overrides:
        raise usage_error(
            "--set changes the spec, and a checkpoint's weights fit only its own; "
            "leave out --set, or build the changed spec from its YAML file",
            file="zoo",
        )
    # checked before any work; torch is imported only when a model is built
    building = output is not None or args.device is not None
    if building:
        from zoo.compiler import build, resolve_device

        device = resolve_device(args.device or "cpu")
    if output is not None and device.type == "meta":
        raise usage_error(
            "--output saves weights, and --device meta makes none (shapes only); "
            "leave out --device meta, or use --device cpu",
            file="zoo",
        )
    checkpoint = read_checkpoint(Path(args.spec), args.force) if from_checkpoint else None
    if checkpoint is not None:
        spec, inputs = checkpoint.spec, [args.spec]
    else:
        spec = load_spec(args.spec, args.overrides)
        inputs = spec_files(spec)
    if output is not None:
        writable_target(output, inputs)  # refused now, not after a long build
    # validates shapes; costs nothing at any input size
    result = trace(spec, dims, depth=args.depth)
    if checkpoint is not None and not building:
        checkpoint.check(result.input[1:])  # the rows traced are those of the saved weights
    if building:
        if checkpoint is not None:  # the saved weights, not fresh ones
            model = checkpoint.model(device, result.input[1:])
        else:  # build() refuses oversized weights (unless --force) before allocating
            model = build(spec, device=device, input_shape=result.input[1:], force=args.force)
        if output is not None:
            # the spec the model was built from, its input set to the one built for
            save(model, output, spec, inputs=inputs)
            err.print(f"saved {output}", markup=False, highlight=False)
    if args.json:
        out.write(json.dumps(result.to_dict()) + "\n")
    elif args.trace or args.tree or args.depth is not None:  # --tree and --depth imply --trace
        err.print(trace_tree(result) if args.tree else trace_table(result))
    else:
        err.print(
            f"[bold]{result.name}[/]: {result.params:,} parameters, {human(result.macs)} MACs, "
            f"{shape_text(result.input)} -> {shape_text(result.output)}"
        )
    return ExitCode.OK


def _cmd_validate(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.spec import load_spec
    from zoo.tracing import trace

    results = []
    status = ExitCode.OK
    for name in args.specs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ZooWarning)
            try:
                spec = load_spec(name, args.overrides)
                result = trace(spec, depth=0)
            except ZooError as exc:
                failure: ZooError | None = exc
            else:
                failure = None
        # a plugin that failed to load is reported with the spec's "unknown type" it explains
        found = _zoo_warnings(caught)
        if failure is None:
            entry = {"ok": True, "params": result.params, "macs": result.macs, "problems": []}
        else:
            status = max(status, failure.exit_code)
            entry = {"ok": False, "problems": [p.to_dict() for p in failure.problems]}
        results.append({"spec": name, **entry, "warnings": [p.to_dict() for p in found]})
        if not args.json:
            _report_warnings(found, err)
            if failure is None:
                err.print(f"[green]ok[/] {escape(name)}: {result.params:,} parameters")
            else:
                _report(failure, err)
    if args.json:
        out.write(json.dumps(results) + "\n")
    return status


def _cmd_list(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.render import human
    from zoo.spec import load_spec, shipped_spec_names
    from zoo.tracing import trace

    rows = []
    for name in shipped_spec_names():
        spec = load_spec(name)
        result = trace(spec, depth=0)
        rows.append(
            {
                "name": name,
                "input": list(result.input[1:]),
                "params": result.params,
                "macs": result.macs,
                "description": spec.description,
            }
        )
    if args.json:
        out.write(json.dumps(rows) + "\n")
        return ExitCode.OK
    table = Table(title="Shipped specs", header_style="bold")
    table.add_column("Spec")
    table.add_column("Input")
    table.add_column("Params", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("Description", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            "x".join(map(str, row["input"])),
            f"{row['params']:,}",
            human(row["macs"]),
            row["description"],
        )
    err.print(table)
    return ExitCode.OK


def _cmd_resolve(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.spec.load import resolve, resolved_yaml, validate
    from zoo.tracing import trace

    located = resolve(args.spec, args.overrides)
    spec = validate(located)
    trace(spec, depth=0)  # only a spec that builds is printed
    if args.expand:
        from zoo.expansion import expanded

        data = expanded(spec).model_dump(mode="json", exclude_defaults=True)
        out.write(resolved_yaml(located, data))
    else:
        out.write(resolved_yaml(located))
    return ExitCode.OK


_LATENCY_COLUMNS = ("latency_ms", "train_latency_ms")


def _cmd_bench(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from rich.progress import Progress

    from zoo.bench import COLUMNS, BenchRow, check_latency_memory, measure_latency, measure_spec
    from zoo.spec import load_spec, shipped_spec_names

    if args.all and args.specs:
        raise usage_error("give SPEC names or --all, not both", file="zoo")
    names = shipped_spec_names() if args.all else args.specs
    if not names:
        raise usage_error("name at least one SPEC, or --all", file="zoo")
    sort_key = args.sort
    if sort_key is not None and sort_key not in COLUMNS:
        raise usage_error(
            f"--sort: unknown column {sort_key!r}; one of {', '.join(COLUMNS)}", file="zoo"
        )
    if sort_key in _LATENCY_COLUMNS and not args.latency:
        raise usage_error(f"--sort {sort_key} needs --latency", file="zoo")
    plot = output_path(args.plot, "--plot", PLOT_SUFFIXES) if args.plot is not None else None
    if plot is not None:
        writable_target(plot)  # a FIFO or a folder there is refused before measuring anything
    if args.batch is not None and (args.input is not None or args.batch < 1):
        message = "--batch and --input exclude each other" if args.input else "--batch must be >= 1"
        raise usage_error(message, file="zoo")
    dims = parse_input(args.input) if args.input is not None else None
    if args.device is not None and not args.latency:
        raise usage_error("--device only matters with --latency", file="zoo")
    # checked before measuring anything; torch is imported only to time models
    if args.latency:
        from zoo.compiler import build, resolve_device

        device = resolve_device(args.device or "cpu")
    if args.latency and device.type == "meta":
        raise usage_error("--latency needs a device that computes (cpu, cuda)", file="zoo")
    rows: list[BenchRow] = []
    inputs: list[str] = []
    # a progress bar only on a terminal: in a pipe or a log it would leave a blank line
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("bench", total=len(names))
        for name in names:
            progress.update(task, description=name)
            spec = load_spec(name)
            inputs += spec_files(spec)
            if args.batch is not None:
                dims = parse_input_shape((args.batch, spec.input.channels, *pair(spec.input.size)))
            row = measure_spec(spec, dims)
            if args.latency:
                check_latency_memory(row, device)
                model = build(spec, device=device, input_shape=row.input[1:])
                fwd, train = measure_latency(model, row.input, str(device))
                row = BenchRow(**{**row.to_dict(), "latency_ms": fwd, "train_latency_ms": train})
            rows.append(row)
            progress.advance(task)
    if sort_key in ("spec", "input"):
        rows.sort(key=lambda r: getattr(r, sort_key))
    elif sort_key is not None:  # numbers largest first; rows without a value (no --latency) last
        rows.sort(key=lambda r: -(getattr(r, sort_key) or 0))
    if plot is not None:
        from zoo.plot import write_plot

        write_plot(rows, plot, inputs)
        err.print(f"wrote {plot}", markup=False, highlight=False)
    if args.json:
        out.write(json.dumps([r.to_dict() for r in rows]) + "\n")
    elif args.csv:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    "x".join(map(str, v)) if isinstance(v, tuple) else ("" if v is None else v)
                    for v in r.to_dict().values()
                ]
            )
        out.write(text.getvalue())
    else:
        err.print(_bench_table(rows, args.latency))
    return ExitCode.OK


def _bench_table(rows: Sequence[Any], latency: bool) -> Table:
    from zoo.render import add_stacked_rows, human

    table = Table(title="zoo bench (memory: float32 estimates)", header_style="bold")
    for column in ("Spec", "Input", "Params", "MACs", "Weights", "Act. (infer)", "Act. (train)"):
        table.add_column(column, justify="left" if column in ("Spec", "Input") else "right")
    if latency:
        table.add_column("Forward", justify="right")
        table.add_column("Fwd+bwd", justify="right")
    cells = []
    for r in rows:
        row = [
            r.spec,
            "x".join(map(str, r.input)),
            f"{r.params:,}",
            human(r.macs),
            human(r.weight_bytes, "B"),
            human(r.activation_bytes, "B"),
            human(r.train_activation_bytes, "B"),
        ]
        if latency:
            row += [f"{r.latency_ms:.1f} ms", f"{r.train_latency_ms:.1f} ms"]
        cells.append(row)
    add_stacked_rows(table, cells)
    return table


def _cmd_diff(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.diff import diff_specs

    dims = parse_input(args.input) if args.input else None
    result = diff_specs(args.a, args.b, dims)
    if args.json:
        out.write(json.dumps(result.to_dict()) + "\n")
    else:
        for renderable in result.render():
            err.print(renderable)
    return ExitCode.OK


def _cmd_schema(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.reference import json_schema_text

    out.write(json_schema_text())
    return ExitCode.OK


_COMMANDS = {
    "build": _cmd_build,
    "validate": _cmd_validate,
    "resolve": _cmd_resolve,
    "list": _cmd_list,
    "bench": _cmd_bench,
    "diff": _cmd_diff,
    "schema": _cmd_schema,
}


def _report_warnings(problems: Sequence[Problem], err: Console) -> None:
    # a spec planned twice (traced, then built; or diffed against itself) warns once
    for problem in dict.fromkeys(problems):
        err.print(
            f"{problem.format()} [{problem.kind}]",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _report(exc: ZooError, err: Console) -> None:
    for problem in exc.problems:
        line = problem.format()
        if problem.kind not in ("error", "usage", "io", "not_found"):
            line += f" [{problem.kind}]"
        err.print(line, markup=False, highlight=False, soft_wrap=True)


def _to_devnull(stream: Any) -> None:
    """Point ``stream``'s file descriptor at the null device, so that later writes to it, and
    Python's flush at exit, succeed instead of failing (or printing "Exception ignored") again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


class Stdout:
    """Where results go. A reader that stops early (``zoo list --json | head -c 10``) ends the
    output quietly and leaves the exit code to the command; a closed or full stdout is an error."""

    def __init__(self) -> None:
        self.gone = False  # the reader closed the pipe: what is left to write goes nowhere

    def write(self, text: str) -> None:
        if self.gone:
            return
        stream = sys.stdout
        try:
            if stream is None:  # started with stdout closed (`zoo schema >&-`)
                raise OSError(errno.EBADF, "it is closed")
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self.gone = True
            _to_devnull(stream)
        except (OSError, ValueError) as exc:  # ValueError: a file object closed by Python code
            self.gone = True
            _to_devnull(stream)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ZooError(
                Problem(f"cannot write the results to standard output: {reason}", "zoo", kind="io"),
                ExitCode.IO_ERROR,
            ) from None


class _Diagnostics(io.TextIOBase):
    """stderr for rich: a closed pipe or a full disk there silences diagnostics, never the command
    (`zoo validate *.yaml 2>&1 | head -1` still exits with the validation's code)."""

    def __init__(self, stream: Any):
        self._stream = stream
        self._gone = stream is None

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._gone = True
                _to_devnull(self._stream)
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._gone = True
                _to_devnull(self._stream)

    def isatty(self) -> bool:
        return not self._gone and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def _stderr_console() -> Console:
    stream = _Diagnostics(sys.stderr)
    console = Console(file=stream)
    if not console.is_terminal:
        # Piped or captured output (make demo, CI logs) gets a wide console instead of rich's
        # 80-column fallback, so dotted layer paths are never cut.
        console = Console(file=stream, width=160)
    return console


def spec_files(spec: Any) -> list[str]:
    """The files a loaded spec was read from (itself and every base it extends): the inputs no
    output of the command may overwrite."""
    located = getattr(spec, "_located", None)
    if located is None:
        return []
    marks = (*located.key_marks.values(), *located.value_marks.values())
    return sorted({located.file, *(file for file, *_ in marks)} - {"--set"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zoo`` console script; returns the exit code."""
    err = _stderr_console()
    out = Stdout()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZooWarning)
        try:
            args = _parser().parse_args(argv)
            code = int(_COMMANDS[args.command](args, err, out))
        except ZooError as exc:
            code = int(exc.exit_code)
            # a plugin that failed to load is what explains an "unknown type": warnings first
            _report_warnings(_zoo_warnings(caught), err)
            if "--json" in (argv if argv is not None else sys.argv):
                with contextlib.suppress(ZooError):  # a failing stdout cannot change the code
                    out.write(json.dumps({"problems": [p.to_dict() for p in exc.problems]}) + "\n")
            _report(exc, err)
            return code
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP while writing a file
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            err.print(
                f"interrupted ({signal.Signals(signum).name}); no file was left half-written",
                markup=False,
                highlight=False,
            )
            return 128 + signum
    # `validate` reports its own warnings next to each spec; others report them at the end
    _report_warnings(_zoo_warnings(caught), err)
    return code


def _zoo_warnings(caught: Sequence[warnings.WarningMessage]) -> list[Problem]:
    return [w.message.problem for w in caught if isinstance(w.message, ZooWarning)]


if __name__ == "__main__":
    sys.exit(main())
