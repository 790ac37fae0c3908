"""zoo's benchmarks: `make bench` writes benchmarks/report.md and benchmarks/report.json.

Every figure is a ratio of two things measured side by side in this one run (interleaved, median
of several repeats), because absolute times on shared machines are noise.

1. tracing: zoo.trace (arithmetic over the spec) against torchinfo.summary (a real forward);
2. runtime parity: a compiled zoo model against the torchvision model, forward and forward+backward;
3. torch.compile(fullgraph=True) and torch.export.export on every shipped spec;
4. build time: zoo.build against the torchvision constructor.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchinfo
import torchvision

import zoo
from zoo.spec import shipped_spec_names

HERE = Path(__file__).resolve().parent
QUICK = os.environ.get("ZOO_BENCH_QUICK") == "1"  # a smoke run for CI-sized machines
REPEATS = 3 if QUICK else 5


def interleaved(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int = REPEATS, warmup: int = 1
) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, alternating runs so machine noise hits both alike."""
    for _ in range(warmup):
        a()
        b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def bench_tracing() -> list[dict[str, Any]]:
    rows = []
    shapes = [(1, 3, 224, 224)] if QUICK else [(1, 3, 224, 224), (8, 3, 512, 512)]
    for name in ("resnet18", "resnet152", "vgg16"):
        spec = zoo.load_spec(name)
        reference = getattr(torchvision.models, name)().eval()
        for shape in shapes:
            repeats = (
                1 if shape[0] > 1 else REPEATS
            )  # torchinfo's real forward at 8x512x512 takes many seconds
            ours, theirs = interleaved(
                lambda spec=spec, shape=shape: zoo.trace(spec, shape),
                lambda reference=reference, shape=shape: torchinfo.summary(
                    reference, input_size=shape, verbose=0
                ),
                repeats=repeats,
                warmup=0 if shape[0] > 1 else 1,
            )
            zoo_macs = zoo.trace(spec, shape).macs
            info = (
                torchinfo.summary(reference, input_size=shape, verbose=0) if shape[0] == 1 else None
            )
            rows.append(
                {
                    "model": name,
                    "input": "x".join(map(str, shape)),
                    "zoo_trace_s": ours,
                    "torchinfo_s": theirs,
                    "speedup": theirs / ours,
                    "zoo_macs": zoo_macs,
                    "torchinfo_macs": info.total_mult_adds if info else None,
                }
            )
    return rows


def bench_runtime() -> list[dict[str, Any]]:
    rows = []
    x = torch.randn(2 if QUICK else 4, 3, 224, 224)
    for name in ("resnet18",) if QUICK else ("resnet18", "resnet50"):
        ours = zoo.build(name)
        reference = getattr(torchvision.models, name)()
        ours.load_state_dict(reference.state_dict())
        for mode in ("forward", "forward+backward"):
            if mode == "forward":
                ours.eval(), reference.eval()

                def step(model: torch.nn.Module) -> None:
                    with torch.no_grad():
                        model(x)
            else:
                ours.train(), reference.train()

                def step(model: torch.nn.Module) -> None:
                    model.zero_grad(set_to_none=True)
                    model(x).sum().backward()

            t_ours, t_ref = interleaved(
                lambda step=step, m=ours: step(m), lambda step=step, m=reference: step(m)
            )
            rows.append(
                {
                    "model": name,
                    "input": "x".join(map(str, x.shape)),
                    "mode": mode,
                    "zoo_ms": t_ours * 1000,
                    "torchvision_ms": t_ref * 1000,
                    "ratio": t_ours / t_ref,
                }
            )
    return rows


def bench_compile_export() -> list[dict[str, Any]]:
    rows = []
    for name in shipped_spec_names():
        spec = zoo.load_spec(name)
        model = zoo.build(spec).eval()
        x = torch.randn(1, spec.input.channels, *_size(spec))
        row: dict[str, Any] = {"spec": name}
        for check, fn in (
            # graph capture with no graph break; the eager backend skips codegen, which is slow on CPU
            (
                "compile_fullgraph",
                lambda model=model, x=x: torch.compile(model, fullgraph=True, backend="eager")(x),
            ),
            ("export", lambda model=model, x=x: torch.export.export(model, (x,))),
        ):
            torch._dynamo.reset()
            start = time.perf_counter()
            try:
                fn()
                row[check] = "ok"
            except Exception as exc:  # a failure is a result to report, not a crash of the report
                row[check] = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            row[f"{check}_s"] = time.perf_counter() - start
        rows.append(row)
    # one end-to-end inductor compile, to show generated code runs and matches eager
    torch._dynamo.reset()
    model = zoo.build("resnet18").eval()
    x = torch.randn(1, 3, 224, 224)
    start = time.perf_counter()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        error = (compiled(x) - model(x)).abs().max().item()
    rows.append(
        {
            "spec": "resnet18 (inductor)",
            "compile_fullgraph": f"ok, max |diff| {error:.1e}",
            "compile_fullgraph_s": time.perf_counter() - start,
            "export": "-",
        }
    )
    return rows


def bench_build() -> list[dict[str, Any]]:
    rows = []
    for name in ("resnet18", "resnet50", "vgg16") if not QUICK else ("resnet18",):
        spec = zoo.load_spec(name)
        constructor = getattr(torchvision.models, name)
        t_ours, t_ref = interleaved(lambda spec=spec: zoo.build(spec), constructor)
        t_name, _ = interleaved(lambda name=name: zoo.build(name), constructor)
        rows.append(
            {
                "model": name,
                "zoo_build_s": t_ours,
                "zoo_build_from_name_s": t_name,
                "torchvision_s": t_ref,
                "ratio": t_ours / t_ref,
            }
        )
    return rows


def _size(spec: zoo.ModelSpec) -> tuple[int, int]:
    size = spec.input.size
    return (size, size) if isinstance(size, int) else tuple(size)


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torchinfo": torchinfo.__version__,
        "quick": QUICK,
    }


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    report = {"machine": _machine()}
    for key, fn in (
        ("tracing", bench_tracing),
        ("runtime", bench_runtime),
        ("build", bench_build),
        ("compile_export", bench_compile_export),
    ):
        print(f"benchmarking {key} ...", file=sys.stderr, flush=True)
        report[key] = fn()
    (HERE / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    machine = report["machine"]
    md = [
        "# zoo benchmark report",
        "",
        f"Generated by `make bench` on {machine['platform']}, {machine['cpus']} CPUs "
        f"({machine['torch_threads']} torch threads), Python {machine['python']}, torch {machine['torch']}, "
        f"torchvision {machine['torchvision']}, torchinfo {machine['torchinfo']}. Times are medians of interleaved "
        "runs; compare the ratios, not the absolute times.",
        "",
        "## Tracing: zoo.trace against torchinfo.summary",
        "",
        "zoo's figures are arithmetic over the spec (meta device); torchinfo runs a real forward pass.",
        "",
        _table(
            report["tracing"],
            [
                "model",
                "input",
                "zoo_trace_s",
                "torchinfo_s",
                "speedup",
                "zoo_macs",
                "torchinfo_macs",
            ],
        ),
        "",
        "## Runtime parity: compiled zoo model against torchvision (CPU)",
        "",
        _table(report["runtime"], ["model", "input", "mode", "zoo_ms", "torchvision_ms", "ratio"]),
        "",
        "## Build time: zoo.build against the torchvision constructor",
        "",
        "`zoo_build_s` builds from a loaded spec (it compiles on the meta device first, to refuse oversized "
        "models before allocating); `zoo_build_from_name_s` also reads and validates the YAML.",
        "",
        _table(
            report["build"],
            ["model", "zoo_build_s", "zoo_build_from_name_s", "torchvision_s", "ratio"],
        ),
        "",
        "## torch.compile(fullgraph=True) and torch.export on every shipped spec",
        "",
        _table(
            report["compile_export"],
            ["spec", "compile_fullgraph", "compile_fullgraph_s", "export", "export_s"],
        ),
        "",
    ]
    (HERE / "report.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
