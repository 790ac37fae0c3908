"""The ``zoo`` command: build, trace, validate and list specs.

Results go to stdout: on a terminal as tables fitted to its width (numbers never cut), in a pipe or
a file as plain rows (a header line, then one tab-separated line per row, exact numbers);
``--json``/``--csv`` write only JSON/CSV there. Diagnostics (problems, warnings, progress, "saved
FILE") go to stderr.
A reader that closes either stream early (``| head``) ends that output quietly but never changes
the exit code; any other failure to write stdout (closed, full) is one line and exit code 3.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import errno
import io
import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from zoo.errors import ExitCode, Problem, ZooError, ZooWarning, usage_error
from zoo.files import Interrupted, output_path, writable_target
from zoo.plot import PLOT_SUFFIXES
from zoo.shapes import pair
from zoo.traces import parse_input_shape

EXIT_CODES = """\
exit codes:
  0  success
  1  invalid spec: YAML syntax, validation or shape error (each reported as file:line:col: path: message)
     weights that do not fit the spec's model (--weights: a line per key); a model export refuses
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


class _Version(argparse.Action):
    """``--version``: the installed package's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("zoo")
        except PackageNotFoundError:  # run from a source tree that was never installed
            text = "unknown (not installed; pip install -e .)"
        sys.stdout.write(f"zoo {text}\n")
        parser.exit()


_SHELLS = ("bash", "zsh", "fish")
_SPEC_ARGUMENTS = ("spec", "specs", "a", "b", "patterns")
"""The positional arguments that name specs: their values complete to spec names and files."""


def _spec_completer(prefix: str, **kwargs: Any) -> list[str]:
    """argcomplete's completer for SPEC: spec names (shipped and on the search path), then the
    spec files, checkpoints and folders that ``prefix`` starts."""
    from argcomplete.completers import FilesCompleter

    from zoo.spec.load import spec_names

    files = FilesCompleter(("yaml", "yml", "pt", "pth"), directories=True)(prefix)
    if "/" in prefix:  # a path: names are bare words
        return list(files)
    return [e.name for e in spec_names() if e.name.startswith(prefix)] + list(files)


def _complete_spec_names(parser: argparse.ArgumentParser) -> None:
    """Give every SPEC argument of every command the spec-name completer (argcomplete reads an
    argument's ``completer`` attribute; nothing is imported until a shell asks)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands.choices.values():
        for action in command._actions:
            if action.dest in _SPEC_ARGUMENTS and not action.option_strings:
                action.completer = _spec_completer  # type: ignore[attr-defined]


def _count(minimum: int) -> Any:
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _add_bench_timing(bench: argparse.ArgumentParser) -> None:
    """``zoo bench``'s options for --latency and the training memory figure."""
    from zoo.bench import DEFAULT_REPEAT, DEFAULT_WARMUP
    from zoo.memory import DEFAULT_OPTIMIZER, OPTIMIZERS

    bench.add_argument(
        "--warmup",
        type=_count(0),
        metavar="N",
        help=f"--latency: untimed calls before timing each mode (default {DEFAULT_WARMUP})",
    )
    bench.add_argument(
        "--repeat",
        type=_count(1),
        metavar="N",
        help=f"--latency: timed calls of each mode; the median and IQR are over them "
        f"(default {DEFAULT_REPEAT})",
    )
    bench.add_argument(
        "--threads",
        type=_count(1),
        metavar="N",
        help="--latency: torch's intra-op threads (default: torch's, recorded in the output)",
    )
    bench.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=DEFAULT_OPTIMIZER,
        help="optimizer whose state the training memory counts: sgd (none), momentum (SGD with "
        f"momentum: one copy of the weights), adam (two) (default {DEFAULT_OPTIMIZER})",
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="zoo",
        description="Define, inspect and compare convolutional architectures from YAML specs.",
        epilog=EXIT_CODES
        + "\nSPEC is a path to a YAML file or a spec name: NAME.yaml in the current folder, then in"
        + "\neach ZOO_SPEC_PATH folder, then a shipped spec (see `zoo list`). Results go to stdout"
        + "\n(a table on a terminal, tab-separated rows in a pipe); diagnostics to stderr.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=_Version, help="print zoo's version (from its package metadata)"
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
        "spec", metavar="SPEC", help="YAML path, spec name, or a zoo checkpoint (.pt/.pth)"
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
        "--weights",
        metavar="FILE",
        help="load these weights instead of initializing (a state_dict saved by torchvision, timm "
        "or torch.save, a training checkpoint holding one, or a zoo checkpoint): builds the model "
        "(--device, default cpu); keys that do not fit are listed with the nearest names, exit 1",
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
    validate.add_argument("specs", metavar="SPEC", nargs="+", help="YAML paths or spec names")
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
    resolve.add_argument("spec", metavar="SPEC", help="YAML path or spec name")
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
        help="list the specs zoo finds by name, with their parameters and multiply-adds",
        description="List the specs that SPEC names reach: yours (*.yaml in the current folder, "
        "then in each ZOO_SPEC_PATH folder; the first of a name wins, before a shipped one) and "
        "the shipped ones, with where each was found.",
    )
    listing.add_argument(
        "patterns",
        metavar="PATTERN",
        nargs="*",
        help="only the specs whose names match one of these shell-style wildcards "
        "(quote them: 'resnet*', '*_bn', 'vgg1?')",
    )
    listing.add_argument("--json", action="store_true", help="write the list as JSON to stdout")

    bench = _command(
        sub,
        "bench",
        help="parameters, multiply-adds, memory and (--latency) speed of specs, side by side",
        description="Compare specs: parameters, multiply-adds, and the float32 memory peaks of "
        "inference and of a training step (weights, optimizer state, activations, gradients), from "
        "a liveness analysis of the plan: no weights allocated. With --latency, the median and "
        "interquartile range of --repeat forward and forward+backward calls after --warmup ones, "
        "and the torch thread count. Results go to stdout: --json, --csv, or a table "
        "(tab-separated rows in a pipe).",
    )
    bench.add_argument("specs", metavar="SPEC", nargs="*", help="YAML paths or spec names")
    bench.add_argument(
        "--all", action="store_true", help="every spec `zoo list` lists (shipped and yours)"
    )
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
    _add_bench_timing(bench)
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
    diff.add_argument("a", metavar="A", help="YAML path or spec name")
    diff.add_argument("b", metavar="B", help="YAML path or spec name")
    diff.add_argument(
        "--input", metavar="[N]xCxHxW", help="input shape for both (default: each spec's)"
    )
    diff.add_argument("--json", action="store_true", help="write the comparison as JSON to stdout")

    _add_train(sub)  # T: zoo train
    _add_export(sub)
    _add_eval_and_runs(sub)  # V: zoo eval, zoo runs

    _command(
        sub,
        "schema",
        help="print the JSON Schema of the spec format (for editor completion)",
    )

    completion = _command(
        sub,
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print a script that completes zoo's commands, options and spec names "
        "(argcomplete). Load it in your shell's start-up file: bash: eval \"$(zoo completion "
        'bash)"; zsh: eval "$(zoo completion zsh)"; fish: zoo completion fish | source.',
    )
    completion.add_argument("shell", choices=_SHELLS, help="the shell to complete in")
    _complete_spec_names(parser)
    return parser


# --------------------------------------------------------------------------- commands
def _cmd_build(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.checkpoint import is_checkpoint_name, save
    from zoo.render import emit, human, shape_text, trace_listing, trace_tree
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
    if from_checkpoint and args.weights is not None:
        raise usage_error(
            "a checkpoint brings its own weights; give --weights with a spec (YAML or name)",
            file="zoo",
        )
    # checked before any work; torch is imported only when a model is built
    building = output is not None or args.device is not None or args.weights is not None
    if building:
        from zoo.compiler import build, resolve_device

        device = resolve_device(args.device or "cpu")
    if output is not None and device.type == "meta":
        raise usage_error(
            "--output saves weights, and --device meta makes none (shapes only); "
            "leave out --device meta, or use --device cpu",
            file="zoo",
        )
    if args.weights is not None and device.type == "meta":
        raise usage_error(
            "--weights loads tensors, and --device meta holds none (shapes only); "
            "leave out --device meta, or use --device cpu",
            file="zoo",
        )
    checkpoint, spec, weights, inputs = _spec_and_weights(args, from_checkpoint)
    if output is not None:
        writable_target(output, inputs)  # refused now, not after a long build
    # validates shapes; costs nothing at any input size
    result = trace(spec, dims, depth=args.depth)
    if dims is not None and checkpoint is None:
        _note_input_changes(spec, dims, err)
    if checkpoint is not None and not building:
        checkpoint.check(result.input[1:])  # the rows traced are those of the saved weights
    if building:
        if checkpoint is not None:  # the saved weights, not fresh ones
            model = checkpoint.model(device, result.input[1:])
        else:  # build() refuses oversized weights (unless --force) before allocating
            model = build(
                spec,
                device=device,
                input_shape=result.input[1:],
                force=args.force,
                weights=weights,
            )
            if weights is not None:
                err.print(
                    _loaded(weights, model, spec.name),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        if output is not None:
            # the spec the model was built from, its input set to the one built for
            save(model, output, spec, inputs=inputs)
            err.print(f"saved {output}", markup=False, highlight=False)
    if args.json:
        out.write(json.dumps(result.to_dict()) + "\n")
    elif args.trace or args.tree or args.depth is not None:  # --tree and --depth imply --trace
        emit(results_console(out), trace_tree(result) if args.tree else trace_listing(result))
    else:
        summary = Text(result.name, style="bold")
        summary.append(
            f": {result.params:,} parameters, {human(result.macs)} MACs, "
            f"{shape_text(result.input)} -> {shape_text(result.output)}"
        )
        emit(results_console(out), summary)
    return ExitCode.OK


def _cmd_validate(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.render import Column, Listing, emit, human, number, text
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
        if not args.json:  # diagnostics as each spec is checked; the summary at the end
            _report_warnings(found, err)
            if failure is not None:
                _report(failure, err)
    if args.json:
        out.write(json.dumps(results) + "\n")
        return status
    summary = Listing(
        title="zoo validate",
        columns=[
            text("spec", "Spec", 12),
            Column("status", "Status"),
            number("problems", "Problems"),
            number("warnings", "Warnings"),
            number("params", "Params"),
            number("macs", "MACs", human),
        ],
        rows=[
            (
                r["spec"],
                "ok" if r["ok"] else "invalid",
                len(r["problems"]),
                len(r["warnings"]),
                r.get("params"),
                r.get("macs"),
            )
            for r in results
        ],
        styles=["green" if r["ok"] else "red" for r in results],
    )
    emit(results_console(out), summary)
    return status


def _cmd_list(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.render import Column, Listing, emit, human, number, text
    from zoo.spec.load import catalogue, find_named
    from zoo.summaries import SummaryCache

    entries, unreadable = catalogue()
    _report_unreadable(unreadable, err)
    status = ExitCode.OK
    if args.patterns:
        chosen = [e for e in entries if any(fnmatchcase(e.name, p) for p in args.patterns)]
        for pattern in args.patterns:
            if not any(fnmatchcase(e.name, pattern) for e in entries):
                hint = difflib.get_close_matches(pattern, [e.name for e in entries], n=1)
                more = f"; did you mean {hint[0]!r}?" if hint else "; run `zoo list` for them all"
                _report(ZooError(Problem(f"no spec name matches {pattern!r}{more}", "zoo")), err)
                status = ExitCode.IO_ERROR  # like a spec name that names nothing
        entries = chosen
    rows = []
    summaries = SummaryCache()  # validating and planning every spec is most of the run: remembered
    for entry in entries:
        if not entry.shipped:
            find_named(entry.name)  # a user spec that hides a shipped one is reported (a warning)
        try:
            summary = summaries.summary(entry.path)
        except ZooError as exc:  # one broken spec of yours is reported; the others are listed
            _report(exc, err)
            status = max(status, exc.exit_code)
            continue
        rows.append(
            {
                "name": entry.name,
                "input": list(summary.input),
                "params": summary.params,
                "macs": summary.macs,
                "source": entry.source,
                "path": str(entry.path),
                "description": summary.description,
            }
        )
    summaries.save()
    if args.json:
        out.write(json.dumps(rows) + "\n")
        return status
    listing = Listing(
        title="zoo specs",
        columns=[
            text("name", "Spec", 10),
            Column("input", "Input"),
            number("params", "Params"),
            number("macs", "MACs", human),
            text("source", "Source", 8),
            text("description", "Description", 30),
        ],
        rows=[
            [
                row["name"],
                tuple(row["input"]),
                row["params"],
                row["macs"],
                row["source"],
                row["description"],
            ]
            for row in rows
        ],
    )
    emit(results_console(out), listing)
    return status


def _report_unreadable(paths: Sequence[Path], err: Console) -> None:
    """One note for the YAML files of the search path that do not parse (a folder such as /tmp
    holds many): they may be specs gone wrong, or no specs at all."""
    if paths:
        shown = ", ".join(map(str, paths[:3])) + (", ..." if len(paths) > 3 else "")
        message = (
            f"left out {len(paths)} YAML file(s) of the spec search path that do not parse "
            f"({shown}); `zoo validate FILE` says what is wrong"
        )
        err.print(f"zoo: {message} [unreadable]", markup=False, highlight=False, soft_wrap=True)


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


def _cmd_bench(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from rich.progress import Progress

    from zoo.bench import (
        COLUMNS,
        DEFAULT_REPEAT,
        DEFAULT_WARMUP,
        LATENCY_COLUMNS,
        BenchRow,
        check_latency_memory,
        measure_latency,
        measure_spec,
        with_latency,
    )
    from zoo.spec import load_spec
    from zoo.spec.load import catalogue
    from zoo.summaries import SummaryCache

    if args.all and args.specs:
        raise usage_error("give SPEC names or --all, not both", file="zoo")
    # --all: what `zoo list` shows, by path (a shipped spec's name may be hidden by a user file)
    if args.all:
        entries, unreadable = catalogue()
        _report_unreadable(unreadable, err)
        names = [str(e.path) for e in entries]
    else:
        names = args.specs
    if not names:
        raise usage_error("name at least one SPEC, or --all", file="zoo")
    sort_key = args.sort
    if sort_key is not None and sort_key not in COLUMNS:
        raise usage_error(
            f"--sort: unknown column {sort_key!r}; one of {', '.join(COLUMNS)}", file="zoo"
        )
    if sort_key in LATENCY_COLUMNS and not args.latency:
        raise usage_error(f"--sort {sort_key} needs --latency", file="zoo")
    for option in ("warmup", "repeat", "threads"):
        if getattr(args, option) is not None and not args.latency:
            raise usage_error(f"--{option} only matters with --latency", file="zoo")
    warmup = DEFAULT_WARMUP if args.warmup is None else args.warmup
    repeat = DEFAULT_REPEAT if args.repeat is None else args.repeat
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
    if args.latency:
        import torch

        if args.threads is not None:
            torch.set_num_threads(args.threads)
        threads = torch.get_num_threads()
    rows: list[BenchRow] = []
    inputs: list[str] = []

    def counts(spec: Any) -> BenchRow:
        shape = dims
        if args.batch is not None:
            shape = parse_input_shape((args.batch, spec.input.channels, *pair(spec.input.size)))
        return measure_spec(spec, shape, args.optimizer, args.threads)

    # without --latency or --input (whose notes come from the spec), each row is arithmetic on
    # the spec alone: remembered (zoo.summaries), so `zoo bench --all` need not plan 83 networks
    remembered = SummaryCache() if not args.latency and dims is None else None
    # one step per spec, and with --latency one per call timed or warming up, so the bar moves
    # while a large model is timed; only on a terminal: in a pipe or a log it leaves a blank line
    calls = 2 * (warmup + repeat) if args.latency else 0
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("bench", total=len(names) * (1 + calls))
        for name in names:
            progress.update(task, description=name)
            if remembered is not None:  # counts and memory alone: remembered between runs
                options = {
                    "batch": args.batch,
                    "optimizer": args.optimizer,
                    "threads": args.threads,
                }
                found, located = remembered.remember(
                    name, "bench", options, lambda spec: counts(spec).to_dict()
                )
                row = BenchRow(**{**found, "input": tuple(found["input"])})
                inputs += located_files(located)
                progress.advance(task)
                rows.append(row)
                continue
            spec = load_spec(name)
            inputs += spec_files(spec)
            if args.batch is None and dims is not None:
                _note_input_changes(spec, dims, err)
            row = counts(spec)
            progress.advance(task)
            if args.latency:
                check_latency_memory(row, device)
                model = build(spec, device=device, input_shape=row.input[1:])

                def step(mode: str, phase: str, i: int, name: str = name) -> None:
                    count = warmup if phase == "warm-up" else repeat
                    progress.update(
                        task, advance=1, description=f"{name} {mode} {phase} {i + 1}/{count}"
                    )

                fwd, train = measure_latency(
                    model, row.input, str(device), repeat, warmup, on_call=step
                )
                row = with_latency(row, fwd, train, threads, warmup)
            rows.append(row)
    if remembered is not None:
        remembered.save()
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
        from zoo.display import BenchTable
        from zoo.render import emit

        emit(results_console(out), *BenchTable(tuple(rows), _bench_title(rows)).listings())
    return ExitCode.OK


def _bench_title(rows: Sequence[Any]) -> str:
    """The bench table's title: what its memory columns assume, and how latencies were taken."""
    from zoo.memory import OPTIMIZER_NAMES

    optimizer = OPTIMIZER_NAMES[rows[0].optimizer] if rows else ""
    title = f"zoo bench (float32 peaks; training with {optimizer})"
    timed = [r for r in rows if r.threads is not None]
    if timed:
        r = timed[0]
        title += (
            f"; latency: median and IQR of {r.repeat} calls after {r.warmup} warm-up, "
            f"{r.threads} torch thread{'s' if r.threads != 1 else ''}"
        )
    return title


def _note_input_changes(spec: Any, dims: Sequence[int], err: Console) -> None:
    """Report, as a note on stderr, the layers whose parameters an ``--input`` changes (a
    Linear after a flatten): the network built is then not the spec's own."""
    from zoo.bench import input_param_changes, param_change_note

    changes = input_param_changes(spec, dims)
    if changes:
        _report_warnings([param_change_note(spec, dims, changes)], err)


def _cmd_diff(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.compare import diff

    dims = parse_input(args.input) if args.input else None
    result = diff(args.a, args.b, dims)
    if args.json:
        out.write(json.dumps(result.to_dict()) + "\n")
    else:
        from zoo.render import emit

        emit(results_console(out), *result.render())
    return ExitCode.OK


def _cmd_schema(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.reference import json_schema_text

    out.write(json_schema_text())
    return ExitCode.OK


def _cmd_completion(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    import argcomplete

    out.write(argcomplete.shellcode(["zoo"], shell=args.shell))
    return ExitCode.OK


def _add_export(sub: Any) -> None:
    export = _command(
        sub,
        "export",
        help="write a model as TorchScript, ONNX or a torch.export program",
        description="Build SPEC (or load a zoo checkpoint, .pt/.pth) and write it for deployment: "
        "TorchScript (torch.jit.script, .pt), ONNX (torch.onnx.export, .onnx; needs "
        "pip install 'zoo[onnx]') or an exported program (torch.export, .pt2). The model is in "
        "eval mode; the batch size stays free, the height and width are the spec's (or --input's). "
        "The file is written atomically, as --output always is.",
    )
    export.add_argument(
        "spec", metavar="SPEC", help="YAML path, spec name, or a zoo checkpoint (.pt/.pth)"
    )
    export.add_argument(
        "--format",
        choices=["torchscript", "onnx", "exported-program"],
        help="what to write (default: from the --output suffix: .pt/.ts, .onnx, .pt2)",
    )
    export.add_argument("--output", metavar="FILE", required=True, help="the file to write")
    export.add_argument(
        "--weights",
        metavar="FILE",
        help="load these weights into SPEC's model first (as `zoo build --weights`)",
    )
    export.add_argument(
        "--input", metavar="[N]xCxHxW", help="input size to export for (the batch stays free)"
    )
    export.add_argument(
        "--force", action="store_true", help="build (or read) even above the 8 GiB weight limit"
    )
    _add_set(export)


def _cmd_export(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.checkpoint import is_checkpoint_name
    from zoo.export import check_format_available, format_for
    from zoo.render import human, shape_text

    output = output_path(args.output, "--output")
    format = format_for(output, args.format)
    check_format_available(format)  # a missing onnx is reported before anything is built
    dims = parse_input(args.input) if args.input is not None else None
    from_checkpoint = is_checkpoint_name(args.spec)
    if from_checkpoint and (args.overrides or args.weights is not None):
        raise usage_error(
            "a checkpoint brings its spec and its weights; leave out --set and --weights, or "
            "export the spec with them",
            file="zoo",
        )
    checkpoint, spec, weights, inputs = _spec_and_weights(args, from_checkpoint)
    writable_target(output, inputs)  # refused now, not after a long export
    from zoo.compiler import build
    from zoo.export import export_model

    shape = dims[1:] if dims is not None else None
    if checkpoint is not None:
        model = checkpoint.model("cpu", shape)
    else:
        model = build(spec, "cpu", shape, force=args.force, weights=weights)
        if weights is not None:
            err.print(
                _loaded(weights, model, spec.name), markup=False, highlight=False, soft_wrap=True
            )
    export_model(model, output, format, inputs=inputs)
    size = human(output.stat().st_size, "B")
    example = shape_text(("N", *model.input_shape))
    err.print(f"wrote {output} ({format}, input {example}, {size})", markup=False, highlight=False)
    return ExitCode.OK


def _spec_and_weights(
    args: argparse.Namespace, from_checkpoint: bool
) -> tuple[Any, Any, Any, list[str]]:
    """The checkpoint (or None), the spec, the weights of ``--weights`` (or None) that ``build`` and
    ``export`` start from, and the files they read: no output may write over those (--output never
    writes over the weights it converts)."""
    from zoo.checkpoint import read_checkpoint
    from zoo.spec import load_spec

    checkpoint = read_checkpoint(Path(args.spec), args.force) if from_checkpoint else None
    if checkpoint is not None:
        spec, inputs = checkpoint.spec, [args.spec]
    else:
        spec = load_spec(args.spec, args.overrides)
        inputs = spec_files(spec)
    weights = _read_weights(args.weights, args.force) if args.weights is not None else None
    if weights is not None:
        inputs.append(args.weights)
    return checkpoint, spec, weights, inputs


def _read_weights(path: str, force: bool) -> Any:
    """``zoo build --weights``'s file, read before any model is built (a bad file fails fast)."""
    from zoo.compiler import MAX_WEIGHT_BYTES
    from zoo.weights import read_weights

    return read_weights(path, force, MAX_WEIGHT_BYTES)


def _loaded(weights: Any, model: Any, name: str) -> str:
    """What ``--weights`` loaded: ``r50.pth: loaded 320 tensors (25,557,032 parameters) into
    resnet50, from a state_dict``, with how the keys were adapted, if they were."""
    _, adapted = weights.fit(model, name)
    params = sum(p.numel() for p in model.parameters())
    return (
        f"{weights.path}: loaded {len(weights.state_dict)} tensors into {name} "
        f"({params:,} parameters), from {weights.source}" + (f"; {adapted}" if adapted else "")
    )


# --------------------------------------------------------------------------- train (T)
_TRAIN_EXIT_CODES = """\
zoo train exits 1 when the spec or recipe is invalid (a value given with --set, --recipe-set,
--epochs, --batch or --lr included), the spec does not fit the data (each mismatch located, with its
fix) or the loss is not finite (last.pt keeps the last good epoch); 2 for a malformed option, a
device this machine lacks, a run folder that holds a run (--resume or --force) or other files, or
--resume with another spec or recipe; 3 when the data or recipe cannot be found or read, or the run
folder cannot be made; 130 on Ctrl-C (last.pt is saved first: --resume continues at the same step,
with the recipe in the run folder).
"""


def _add_train(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train a spec on mnist, fashion_mnist, cifar10, cifar100 or an image folder",
        description="Train SPEC on DATA with a recipe (default: the shipped one named after the "
        "dataset). The spec is checked against the data before any step. The run folder gets "
        "metrics.csv/.jsonl, curves.png, last.pt, best.pt, spec.yaml, recipe.yaml and run.json.",
        epilog=_TRAIN_EXIT_CODES + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("spec", metavar="SPEC", help="YAML path or spec name")
    train.add_argument(
        "--data",
        required=True,
        metavar="DATA",
        help="mnist, fashion_mnist, cifar10, cifar100 (under --data-dir), or an image folder "
        "(train/ and val/ with a subfolder per class, or one folder of class subfolders)",
    )
    train.add_argument(
        "--recipe", metavar="FILE", help="a recipe: shipped name or .yaml (default: DATA's own)"
    )
    _add_set(train)
    train.add_argument(
        "--recipe-set",
        dest="recipe_overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a recipe field (e.g. --recipe-set optimizer.type=sgd); repeatable",
    )
    train.add_argument("--epochs", type=_count(1), metavar="N", help="the recipe's epochs")
    train.add_argument("--batch", type=_count(1), metavar="N", help="the recipe's batch size")
    train.add_argument("--lr", type=float, metavar="X", help="the recipe's learning rate")
    train.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps"
    )
    train.add_argument(
        "--out", metavar="DIR", help="the run folder (default runs/SPEC-DATA-TIMESTAMP)"
    )
    again = train.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt"
    )
    again.add_argument(
        "--force", action="store_true", help="start over in an --out that holds a run"
    )
    train.add_argument("--seed", type=_count(0), default=0, metavar="N", help="seed (default 0)")
    train.add_argument(
        "--data-dir", metavar="DIR", help="where the named datasets' files are (default ./data)"
    )
    train.add_argument(
        "--download", action="store_true", help="fetch a named dataset into --data-dir"
    )
    train.add_argument(
        "--workers",
        type=_count(0),
        metavar="N",
        help="data-loading processes (default 0 on the CPU, min(8, cores) on a GPU)",
    )
    train.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="an image folder without val/: the share held out (default 0.1)",
    )
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument(
        "--nproc-per-node",
        type=_count(1),
        default=1,
        metavar="N",
        help="train with N processes on this machine under torch's elastic launcher (torchrun), "
        "with DistributedDataParallel: one per GPU, or gloo on the CPU",
    )
    train.add_argument(
        "--nnodes", type=_count(1), default=1, metavar="M", help="machines taking part (torchrun)"
    )
    train.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="where the machines of a --nnodes run meet (the same on every one)",
    )


def _cmd_train(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.train import dist
    from zoo.train.run import ConsoleProgress, train

    several = args.nproc_per_node > 1 or args.nnodes > 1 or args.rdzv_endpoint is not None
    if several and not dist.launched():  # run this same command under torchrun, and wait
        import subprocess

        command = dist.launcher_command(
            args.nproc_per_node, ["-m", "zoo", *args.argv], args.nnodes, args.rdzv_endpoint
        )
        # torchrun sets one thread per process anyway, with a banner saying so; set it ourselves
        env = {"OMP_NUM_THREADS": "1", **os.environ}
        return subprocess.run(command, check=False, env=env).returncode

    with ConsoleProgress(err) as progress:
        result = train(
            args.spec,
            args.data,
            recipe=args.recipe,
            overrides=args.overrides,
            recipe_overrides=args.recipe_overrides,
            epochs=args.epochs,
            batch=args.batch,
            lr=args.lr,
            device=args.device,
            out=args.out,
            resume=args.resume,
            force=args.force,
            seed=args.seed,
            data_dir=args.data_dir,
            download=args.download,
            workers=args.workers,
            val_fraction=args.val_fraction,
            compile=args.compile,
            callbacks=progress,
        )
    if result.is_main:  # one summary for a torchrun run, not one per process
        out.write(result.summary() + "\n")
    return ExitCode.OK


# --------------------------------------------------------------------------- eval, runs (V)
def _add_eval_and_runs(sub: Any) -> None:
    evaluation = _command(
        sub,
        "eval",
        help="accuracy, per-class accuracy and confusion matrix of a trained model on a dataset",
        description="Evaluate SPEC_OR_CHECKPOINT on DATA. A training checkpoint (last.pt, best.pt, "
        "or the run folder holding them) brings its spec, weights and recipe: images are normalized "
        "exactly as in training. A spec is evaluated with its initialized weights, or --weights.",
    )
    evaluation.add_argument(
        "spec",
        metavar="SPEC_OR_CHECKPOINT",
        help="a training checkpoint (.pt), a run folder, or a YAML path / spec name",
    )
    evaluation.add_argument(
        "--data",
        required=True,
        metavar="DATA",
        help="mnist, fashion_mnist, cifar10, cifar100, or an image folder",
    )
    evaluation.add_argument(
        "--data-dir", metavar="DIR", help="where the named datasets' files are (default ./data)"
    )
    evaluation.add_argument(
        "--split", choices=("val", "train"), default="val", help="which split (default val)"
    )
    evaluation.add_argument(
        "--batch", type=_count(1), default=256, metavar="N", help="images per batch (default 256)"
    )
    evaluation.add_argument(
        "--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, mps (default auto)"
    )
    evaluation.add_argument(
        "--weights", metavar="FILE", help="weights for a SPEC (not with a checkpoint)"
    )
    evaluation.add_argument(
        "--out",
        metavar="DIR",
        help="write eval-SPLIT.json and confusion-SPLIT.png here (default: a checkpoint's run "
        "folder; nothing for a spec)",
    )
    evaluation.add_argument("--json", action="store_true", help="write the results as JSON")
    _add_set(evaluation)

    runs = _command(
        sub,
        "runs",
        help="trained runs side by side: spec, data, parameters, MACs, best accuracy, epochs, time",
        description="Summarize every run folder (run.json, metrics.jsonl and last.pt, as `zoo "
        "train` writes them) under DIR. A run that has not finished an epoch is listed with 0 "
        "epochs and no best accuracy; a run folder that cannot be read is reported and left out "
        "(exit 3).",
    )
    runs.add_argument("dir", metavar="DIR", nargs="?", default="runs", help="default: runs/")
    output = runs.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="write rows as JSON to stdout")
    output.add_argument("--csv", action="store_true", help="write rows as CSV to stdout")
    runs.add_argument(
        "--plot", metavar="FILE.png", help="plot best accuracy against multiply-adds (log x)"
    )


def _cmd_eval(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.render import Column, Listing, emit, text
    from zoo.train.runs import (
        checkpoint_path,
        evaluate_source,
        is_checkpoint_source,
        write_eval_files,
    )

    report = evaluate_source(
        args.spec,
        args.data,
        data_dir=args.data_dir,
        split=args.split,
        batch=args.batch,
        device=args.device,
        weights=args.weights,
        overrides=args.overrides,
    )
    for note in report.notes:
        err.print(f"zoo: {note}", markup=False, highlight=False, soft_wrap=True)
    folder = Path(args.out) if args.out is not None else None
    if folder is None and is_checkpoint_source(args.spec):
        folder = checkpoint_path(args.spec).parent
    if folder is not None:
        written, notes = write_eval_files(report, folder)
        for note in notes:
            err.print(f"zoo: {note}", markup=False, highlight=False, soft_wrap=True)
        err.print(
            "wrote " + " and ".join(map(str, written)),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if args.json:
        out.write(json.dumps(report.to_dict()) + "\n")
        return ExitCode.OK
    console = results_console(out)
    counts = [sum(row) for row in report.confusion]
    listing = Listing(
        title=f"{report.model}, {report.split} split: accuracy {report.accuracy:.2%}, "
        f"loss {report.loss:.4f} (normalization: {report.normalization})",
        columns=[
            text("class", "Class", 8),
            Column("images", "Images", justify="right"),
            Column(
                "accuracy",
                "Accuracy",
                justify="right",
                show=lambda v: "-" if v is None else f"{v:.2%}",
            ),
        ],
        rows=[
            [name, count, acc]
            for name, count, acc in zip(report.classes, counts, report.per_class, strict=True)
        ]
        + [["(all)", report.samples, report.accuracy]],  # the overall figure, in a pipe too
    )
    emit(console, listing)
    return ExitCode.OK


def _cmd_runs(args: argparse.Namespace, err: Console, out: Stdout) -> int:
    from zoo.render import Listing, emit, human, number, text
    from zoo.train.runs import RUN_COLUMNS, find_runs, write_runs_plot

    plot = output_path(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    records, errors = find_runs(args.dir)
    status = ExitCode.OK
    for error in errors:
        _report(error, err)
        status = max(status, error.exit_code)
    if not records and not errors:
        err.print(
            f"zoo: no runs in {args.dir} (a run folder holds run.json, metrics.jsonl or last.pt)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if plot is not None:
        note = write_runs_plot(records, plot)
        err.print(
            f"zoo: {note}" if note else f"wrote {plot}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if args.json:
        out.write(json.dumps([r.to_dict() for r in records]) + "\n")
        return status
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(RUN_COLUMNS)
        for r in records:
            writer.writerow(["" if v is None else v for v in r.to_dict().values()])
        out.write(buffer.getvalue())
        return status

    def epochs(r: Any) -> str:
        return str(r.epochs) if r.planned_epochs is None else f"{r.epochs}/{r.planned_epochs}"

    listing = Listing(
        title=f"{len(records)} run(s) in {args.dir}",
        columns=[
            text("run", "Run", 10),
            text("spec", "Spec", 8),
            text("data", "Data", 8),
            number("params", "Params"),
            number("macs", "MACs", human),
            number("best", "Best acc", lambda v: "-" if v is None else f"{v:.2%}"),
            text("epochs", "Epochs", 5),
            number("seconds", "Time s", lambda v: f"{v:.1f}"),
            number("images_per_s", "Images/s", lambda v: "-" if v is None else f"{v:,.0f}"),
        ],
        rows=[
            [
                Path(r.folder).name,
                r.spec,
                r.data or "-",
                r.params,
                r.macs,
                r.best,
                epochs(r),
                r.seconds,
                r.images_per_s,
            ]
            for r in records
        ],
    )
    emit(results_console(out), listing)
    return status


_COMMANDS = {
    "build": _cmd_build,
    "validate": _cmd_validate,
    "resolve": _cmd_resolve,
    "list": _cmd_list,
    "bench": _cmd_bench,
    "diff": _cmd_diff,
    "schema": _cmd_schema,
    "export": _cmd_export,
    "completion": _cmd_completion,
    "train": _cmd_train,
    "eval": _cmd_eval,
    "runs": _cmd_runs,
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


class _ResultsFile(io.TextIOBase):
    """stdout for rich: writes go through :class:`Stdout` (a reader that stops early ends them
    quietly), and the terminal test is stdout's own."""

    def __init__(self, out: Stdout):
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text)
        return len(text)

    def flush(self) -> None:  # Stdout.write flushes each write
        pass

    def isatty(self) -> bool:
        try:
            return sys.stdout is not None and sys.stdout.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return sys.stdout.fileno()


def results_console(out: Stdout) -> Console:
    """Where a command prints its results: stdout. On a terminal rich fits tables to its width
    (``COLUMNS`` when set); elsewhere nothing is wrapped (plain rows, a tree, a summary line are
    each written whole)."""
    stream = _ResultsFile(out)
    console = Console(file=stream)
    if not console.is_terminal:
        console = Console(file=stream, width=10_000)
    return console


def spec_files(spec: Any) -> list[str]:
    """The files a loaded spec was read from (itself and every base it extends): the inputs no
    output of the command may overwrite."""
    located = getattr(spec, "_located", None)
    return [] if located is None else located_files(located)


def located_files(located: Any) -> list[str]:
    """The files resolved spec data was read from (see :func:`spec_files`)."""
    marks = (*located.key_marks.values(), *located.value_marks.values())
    return sorted({located.file, *(file for file, *_ in marks)} - {"--set"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zoo`` console script; returns the exit code."""
    err = _stderr_console()
    out = Stdout()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZooWarning)
        try:
            parser = _parser()
            if argv is None and "_ARGCOMPLETE" in os.environ:  # a shell's completion asks
                import argcomplete

                argcomplete.autocomplete(parser)  # answers and exits
            args = parser.parse_args(argv)
            args.argv = list(argv if argv is not None else sys.argv[1:])  # `train` re-runs it
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
