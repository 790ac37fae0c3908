"""zoo's benchmarks: `make bench` writes benchmarks/report.md and benchmarks/report.json.

Every figure is a ratio of two things measured side by side in this one run (interleaved, median
of several repeats), because absolute times on shared machines are noise.

1. tracing: zoo.trace (arithmetic over the spec, no module made) against torchinfo.summary (a real
   forward);
2. runtime parity: a zoo-built model against the torchvision model (same weights), forward and
   forward+backward, with a torchvision-against-torchvision (A/A) row as the noise floor;
3. torch.compile(fullgraph=True) and torch.export.export on every shipped spec;
4. build time: zoo.build against the torchvision constructor;
5. CLI start-up: each command that builds no model, run as the real console script, against
   `python -c "import torch"` (wall time and peak memory of each child process);
6. memory: zoo's liveness analysis (zoo.memory) against the peaks PyTorch's CPU allocator reports
   to torch.profiler, for inference and for a training step, at batch 8;
7. latency: `zoo bench --latency`'s timings (median and IQR after warm-up) taken twice over, and
   a cold first call against them;
8. training: zoo's training loop (zoo.train.loop.fit) against a hand-written loop like the
   tutorials', same model, data in memory, batch and steps, in images/s on the CPU;
9. training on a GPU (when there is one): the same with bf16 autocast and channels_last against
   the plain fp32 loop, and the share of the time zoo's loop waits on its loader.

`python benchmarks/run.py --only SECTION` re-measures one section and merges it into report.json
(the others are kept); `--render` rewrites report.md from report.json without measuring.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
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
    times_a, times_b, _ = paired(a, b, repeats, warmup)
    return statistics.median(times_a), statistics.median(times_b)


def paired(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int, warmup: int = 1
) -> tuple[list[float], list[float], float]:
    """Seconds of ``a`` and ``b`` over ``repeats`` back-to-back pairs, and the median pair ratio.

    The order within a pair alternates (ab, ba, ...) so neither side always runs on a warmer
    cache; the median of per-pair ratios is robust to the slow drift of a shared machine.
    """
    for _ in range(warmup):
        a()
        b()
    times_a, times_b = [], []
    for i in range(repeats):
        pair = ((a, times_a), (b, times_b))
        for fn, times in pair if i % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratio = statistics.median(ta / tb for ta, tb in zip(times_a, times_b, strict=True))
    return times_a, times_b, ratio


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
            from_name, _ = interleaved(
                lambda name=name, shape=shape: zoo.trace(name, shape), lambda: None, repeats=repeats
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
                    "zoo_trace_from_name_s": from_name,
                    "torchinfo_s": theirs,
                    "speedup": theirs / ours,
                    "zoo_macs": zoo_macs,
                    "torchinfo_macs": info.total_mult_adds if info else None,
                }
            )
    return rows


RUNTIME_REPEATS = 5 if QUICK else 31


def bench_runtime() -> list[dict[str, Any]]:
    """zoo's model against torchvision's with the same weights, and torchvision against a second
    copy of itself: that A/A row is the noise floor of this machine, against which to read the
    zoo/torchvision ratios."""
    rows = []
    x = torch.randn(2 if QUICK else 4, 3, 224, 224)
    for name in ("resnet18",) if QUICK else ("resnet18", "resnet50"):
        reference = getattr(torchvision.models, name)()
        ours = zoo.build(name)
        ours.load_state_dict(reference.state_dict())
        twin = getattr(torchvision.models, name)()
        twin.load_state_dict(reference.state_dict())
        for mode in ("forward", "forward+backward"):
            if mode == "forward":

                def step(model: torch.nn.Module) -> None:
                    model.eval()
                    with torch.no_grad():
                        model(x)
            else:

                def step(model: torch.nn.Module) -> None:
                    model.train()
                    model.zero_grad(set_to_none=True)
                    model(x).sum().backward()

            for label, model in (("zoo", ours), ("torchvision (A/A)", twin)):
                t_a, t_ref, ratio = paired(
                    lambda step=step, m=model: step(m),
                    lambda step=step, m=reference: step(m),
                    repeats=RUNTIME_REPEATS,
                    warmup=2,
                )
                rows.append(
                    {
                        "model": name,
                        "input": "x".join(map(str, x.shape)),
                        "mode": mode,
                        "candidate": label,
                        "candidate_ms": statistics.median(t_a) * 1000,
                        "torchvision_ms": statistics.median(t_ref) * 1000,
                        "ratio": ratio,
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


# Commands that build no model, so never import torch; each row times one against `import torch`.
STARTUP_COMMANDS = (
    "validate resnet18",
    "list",
    "resolve resnet50",
    "schema",
    "diff resnet50 resnext50_32x4d",
    "build resnet152 --trace",
    "bench --all",
)
STARTUP_REPEATS = 3 if QUICK else 7
# The goals of each command: wall seconds at most, peak MiB at most, times faster than import torch.
# The speedup goal was 5x with 22 specs and 20 types; validating now builds the schema of 67 types
# (about 0.1 s of the 0.3 s), so a command that validates a spec starts 4.3-4.6x faster than torch.
STARTUP_GOALS = {"zoo_s": 0.5, "zoo_peak_mib": 100, "speedup": 4}


def bench_cli_startup() -> list[dict[str, Any]]:
    """Each command in a fresh process against `python -c "import torch"` (same interpreter),
    interleaved; ``speedup`` is the median of per-pair ratios, import torch time / command time."""
    zoo_script = str(Path(sys.executable).parent / "zoo")
    import_torch = [sys.executable, "-c", "import torch"]
    rows = []
    for command in STARTUP_COMMANDS:
        argv = [zoo_script, *command.split()]
        zoo_peaks: list[int] = []
        torch_peaks: list[int] = []
        t_torch, t_zoo, speedup = paired(
            lambda peaks=torch_peaks: _child(import_torch, peaks),
            lambda argv=argv, peaks=zoo_peaks: _child(argv, peaks),
            repeats=STARTUP_REPEATS,
        )
        rows.append(
            {
                "command": f"zoo {command}",
                "zoo_s": statistics.median(t_zoo),
                "import_torch_s": statistics.median(t_torch),
                "speedup": speedup,
                "zoo_peak_mib": max(zoo_peaks) / 2**20,
                "import_torch_peak_mib": max(torch_peaks) / 2**20,
            }
        )
    return rows


def _child(argv: list[str], peaks: list[int]) -> None:
    """Run ``argv`` to its end, output discarded, and append its peak RSS in bytes to ``peaks``.

    GNU time measures it: a child's ``ru_maxrss`` also counts the memory of the process it was
    forked from, so read straight from this one (torch loaded, ~700 MB) every child would seem
    as large; time's own process is ~1 MB. (RUSAGE_CHILDREN is no way out: it is the largest of
    all children so far.)
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "maxrss"
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak), *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if done.returncode != 0:  # a command that fails early would time as fast as it is wrong
            message = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(argv)} exited with {done.returncode}:\n{message}")
        peaks.append(int(peak.read_text().split()[-1]) * 1024)  # %M is in KiB


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
            return f"{value:#.3g}" if value < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "-" if value is None else str(value).replace("|", "\\|")  # a pipe ends a cell

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


MEMORY_SPECS = (
    ("resnet18",) if QUICK else ("resnet18", "resnet50", "vgg16", "googlenet", "mobilenet_v2")
)
"""The specs the memory analysis is held to: within MEMORY_GOAL of the measured peaks."""
MEMORY_OTHERS = ("lenet",) if QUICK else ("convnext_tiny", "lenet")
"""Specs outside the goal, measured as well: layouts and channel counts the goal specs lack."""
MEMORY_BATCH = 8
MEMORY_GOAL = 0.15


def bench_memory() -> list[dict[str, Any]]:
    """Estimated against measured memory peaks, each spec at its own input size, batch 8, CPU.

    Measured: every allocation and free that PyTorch's CPU allocator reports to torch.profiler
    (zoo.bench.measure_memory), operators' workspace included; estimated: zoo.memory's replay of
    the plan, which allocates nothing (its time is `estimate_ms`)."""
    from zoo.bench import measure_memory
    from zoo.memory import estimate_memory

    rows = []
    for name in (*MEMORY_SPECS, *MEMORY_OTHERS):
        spec = zoo.load_spec(name)
        shape = (MEMORY_BATCH, spec.input.channels, *_size(spec))
        start = time.perf_counter()
        estimate = estimate_memory(spec, shape)
        estimate_ms = (time.perf_counter() - start) * 1000
        measured = measure_memory(zoo.build(spec), shape)
        mb = 1e6
        rows.append(
            {
                "model": name,
                "input": "x".join(map(str, shape)),
                "goal": "yes" if name in MEMORY_SPECS else "no",
                "weights_mb": estimate.weight_bytes / mb,
                "infer_estimate_mb": estimate.inference_peak_bytes / mb,
                "infer_measured_mb": measured.inference_peak_bytes / mb,
                "infer_ratio": estimate.inference_peak_bytes / measured.inference_peak_bytes,
                "infer_act_ratio": estimate.inference_activation_bytes
                / measured.inference_activation_bytes,
                "train_estimate_mb": estimate.train_peak_bytes / mb,
                "train_measured_mb": measured.train_peak_bytes / mb,
                "train_ratio": estimate.train_peak_bytes / measured.train_peak_bytes,
                "train_act_ratio": estimate.train_activation_bytes
                / measured.train_activation_bytes,
                "estimate_ms": estimate_ms,
            }
        )
    return rows


LATENCY_SPECS = ("resnet18",) if QUICK else ("resnet18", "mobilenet_v2", "resnet50")


def bench_latency() -> list[dict[str, Any]]:
    """`zoo bench --latency` twice over on one model (default warm-up and repeats, batch 1,
    224x224, CPU): the two medians should agree where one cold call does not."""
    from zoo.bench import DEFAULT_REPEAT, DEFAULT_WARMUP, measure_latency, time_calls

    rows = []
    for name in LATENCY_SPECS:
        model = zoo.build(name)
        shape = (1, 3, 224, 224)
        x = torch.randn(shape)
        model.eval()
        with torch.no_grad():
            cold = time_calls(lambda model=model, x=x: model(x), warmup=0, repeat=1).median_ms
        runs = [measure_latency(model, shape) for _ in range(2)]
        for mode, index in (("forward", 0), ("forward+backward", 1)):
            first, second = (run[index] for run in runs)
            rows.append(
                {
                    "model": name,
                    "mode": mode,
                    "warmup": DEFAULT_WARMUP,
                    "repeat": DEFAULT_REPEAT,
                    "median_ms": first.median_ms,
                    "iqr_ms": first.iqr_ms,
                    "rerun_median_ms": second.median_ms,
                    "rerun_ratio": max(first.median_ms, second.median_ms)
                    / min(first.median_ms, second.median_ms),
                    "cold_first_call_ms": cold if mode == "forward" else None,
                }
            )
    return rows


# (model, --set overrides, batch, steps per timed epoch): the tutorials' two scales, LeNet on
# MNIST-sized digits and ResNet-18 on CIFAR-sized images with a 10-class head
TRAINING_MODELS = (
    ("lenet", (), 128, 10 if QUICK else 40),
    ("resnet18", ("input.size=[32, 32]", "head.2.out=10"), 64, 2 if QUICK else 8),
)
TRAINING_REPEATS = 3 if QUICK else 5
TRAINING_GOAL = 1.0
"""zoo's loop against the hand-written one on the CPU: at least this ratio of images/s."""


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _hand_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    device: torch.device | None = None,
) -> tuple[float, float]:
    """One epoch as the seeds' tutorials write it, with their accuracy done right: counted from
    the forward pass trained on, divided by the samples seen; each batch moved with
    ``.to(device)`` (a no-op on the CPU), fp32, the running sums read with ``.item()`` every step.
    Returns (loss, accuracy), after waiting for ``device``."""
    device = device or torch.device("cpu")
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        out = model(x)
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * y.size(0)
        correct += (out.argmax(1) == y).sum().item()
        seen += y.size(0)
    _synchronize(device)
    return total_loss / seen, correct / seen


def bench_training() -> list[dict[str, Any]]:
    """zoo.train.loop.fit against a hand-written loop: same model and initial weights, same
    in-memory TensorDataset through the same kind of DataLoader (shuffled, no workers), same
    batch, steps and SGD; one epoch each, in interleaved pairs, with one torch thread and with
    the default count.

    ``*_img_s`` count the training steps only: the hand loop's epoch is timed around its ``for``;
    fit's is the ``seconds`` of its metrics row, which brackets the same steps (loader, forward,
    loss, backward, step, its on-device metric sums and the epoch's one synchronisation) and
    leaves out what fit writes after the epoch (last.pt, best.pt, metrics, curves.png, into a
    temporary folder here). ``zoo_whole_img_s`` is the whole fit call, those files included."""
    from torch.utils.data import TensorDataset

    from zoo.train.loop import fit

    default_threads = torch.get_num_threads()
    threads = sorted({1, default_threads})
    rows = []
    try:
        for name, overrides, batch, steps in TRAINING_MODELS:
            spec = zoo.load_spec(name, overrides)
            height, width = _size(spec)
            images = torch.randn(batch * steps, spec.input.channels, height, width)
            labels = torch.randint(0, 10, (batch * steps,))
            dataset = TensorDataset(images, labels)
            torch.manual_seed(0)
            initial = zoo.build(spec).state_dict()
            for count in threads:
                torch.set_num_threads(count)
                rows.append(_training_row(name, spec, dataset, initial, batch, steps, count, fit))
            # the noise floor: the hand loop against a second copy of itself (default threads)
            rows.append(
                _training_row(name, spec, dataset, initial, batch, steps, default_threads, None)
            )
    finally:
        torch.set_num_threads(default_threads)
    return rows


def _training_row(
    name: str,
    spec: zoo.ModelSpec,
    dataset: Any,
    initial: dict[str, torch.Tensor],
    batch: int,
    steps: int,
    threads: int,
    fit: Callable[..., Any] | None,
) -> dict[str, Any]:
    """One row: ``fit`` against the hand loop, or with ``fit=None`` the hand loop against a
    second copy of itself (the A/A row)."""
    from torch.utils.data import DataLoader

    def setup() -> tuple[torch.nn.Module, torch.optim.Optimizer, DataLoader]:
        model = zoo.build(spec)
        model.load_state_dict(initial)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = DataLoader(
            dataset, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        return model, optimizer, loader

    zoo_side, hand_side = setup(), setup()
    with tempfile.TemporaryDirectory() as tmp:

        def run_zoo() -> tuple[float, float]:
            model, optimizer, loader = zoo_side
            if fit is None:  # A/A: the candidate is the hand loop too
                start = time.perf_counter()
                _hand_loop(model, optimizer, loader)
                seconds = time.perf_counter() - start
                return seconds, seconds
            start = time.perf_counter()
            result = fit(model, optimizer, loader, epochs=1, out_dir=tmp, force=True)
            whole = time.perf_counter() - start
            return result.history[-1]["seconds"], whole

        def run_hand() -> tuple[float, float]:
            model, optimizer, loader = hand_side
            start = time.perf_counter()
            _hand_loop(model, optimizer, loader)
            seconds = time.perf_counter() - start
            return seconds, seconds

        run_zoo(), run_hand()  # warm-up: allocator, oneDNN primitives, matplotlib's import
        zoo_times, hand_times = [], []
        for i in range(TRAINING_REPEATS):
            pair = ((run_zoo, zoo_times), (run_hand, hand_times))
            for fn, times in pair if i % 2 == 0 else pair[::-1]:
                times.append(fn())
    images = batch * steps
    zoo_steps = [t for t, _ in zoo_times]
    zoo_whole = [w for _, w in zoo_times]
    hand = [t for t, _ in hand_times]
    return {
        "model": name,
        "candidate": "zoo fit" if fit is not None else "hand (A/A)",
        "input": "x".join(map(str, (batch, spec.input.channels, *_size(spec)))),
        "steps": steps,
        "threads": threads,
        "zoo_img_s": images / statistics.median(zoo_steps),
        "hand_img_s": images / statistics.median(hand),
        "ratio": statistics.median(h / z for z, h in zip(zoo_steps, hand, strict=True)),
        "zoo_whole_img_s": images / statistics.median(zoo_whole),
        "whole_ratio": statistics.median(h / z for z, h in zip(zoo_whole, hand, strict=True)),
    }


# (model, --set overrides, batch, timed steps, augmentation): CIFAR-sized ResNet-18 with the
# cifar10 recipe's crops and flips, and ImageNet-sized ResNet-50 as zoo train feeds it
GPU_TRAINING_MODELS = (
    ("resnet18", ("input.size=[32, 32]", "head.2.out=10"), 256, 5 if QUICK else 40, True),
    ("resnet50", ("head.2.out=10",), 128, 3 if QUICK else 20, False),
)
GPU_TRAINING_GOAL = 2.0
"""zoo's loop with bf16 autocast and channels_last against the plain fp32 hand loop on a GPU."""
GPU_DATA_WAIT_GOAL = 0.05
"""The most of zoo's training time spent waiting for the loader (its ``data_wait``)."""


class _UInt8Images:
    """In-memory uint8 CHW images and labels, the form a decoded dataset has before its
    transforms (``zoo train``'s pipeline converts, augments and normalizes them per sample)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def bench_training_gpu(
    device: str = "cuda", models: tuple = GPU_TRAINING_MODELS, repeats: int = TRAINING_REPEATS
) -> list[dict[str, Any]]:
    """On a GPU: zoo.train.loop.fit with bf16 autocast and channels_last against the plain fp32
    hand loop, and fit in fp32 against it (the loop's own overhead), each on its own copy of the
    same initial weights, fed by the same kind of loader ``zoo train`` makes (zoo.train.data's
    transforms on uint8 images in memory, workers, pinned memory), one epoch of ``steps`` steps
    per run in interleaved pairs. ``data_wait`` is fit's share of the epoch spent waiting for a
    batch. No rows without a CUDA device (``device`` may name another, for a smoke test)."""
    from zoo.train.data import DataInfo, make_transforms
    from zoo.train.loop import fit

    if device == "cuda" and not torch.cuda.is_available():
        return []
    target = torch.device(device)
    torch.backends.cudnn.benchmark = True  # as zoo train sets it on CUDA
    workers = min(8, os.cpu_count() or 1)
    rows = []
    for name, overrides, batch, steps, augment in models:
        spec = zoo.load_spec(name, overrides)
        height, width = _size(spec)
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(
            0, 256, (batch * steps, 3, height, width), dtype=torch.uint8, generator=generator
        )
        labels = torch.randint(0, 10, (batch * steps,), generator=generator)
        train = _UInt8Images(images, labels)
        info = DataInfo(
            name="memory", description="random uint8 images in memory", root=Path("."),
            channels=3, size=(height, width), classes=[str(k) for k in range(10)],
            train=train, val=train,
        )  # fmt: skip
        augmentation = []
        if augment:
            from torchvision.transforms import v2

            augmentation = [v2.RandomCrop(height, padding=4), v2.RandomHorizontalFlip()]
        transform, _ = make_transforms((0.5,) * 3, (0.25,) * 3, augmentation, channels=3)

        loader = functools.partial(_memory_loader, info, batch, transform, workers)

        torch.manual_seed(0)
        initial = zoo.build(spec).state_dict()
        for candidate, amp, channels_last in (
            ("zoo fit bf16 channels_last", "bf16", True),
            ("zoo fit fp32", None, False),
            ("hand fp32 (A/A)", None, False),
        ):
            rows.append(
                _gpu_training_row(
                    name, spec, loader, initial, batch, steps, target, candidate, amp, channels_last,
                    fit if candidate.startswith("zoo") else None, repeats,
                )
            )  # fmt: skip
    return rows


def _memory_loader(info: Any, batch: int, transform: Any, workers: int) -> Any:
    """The training loader zoo train would make for ``info`` (shuffled, workers, pinned memory)."""
    from zoo.train.data import make_loaders

    train, _ = make_loaders(
        info, batch, transform, transform, workers=workers,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    return train


def _gpu_training_row(
    name: str,
    spec: zoo.ModelSpec,
    make_loader: Callable[[], Any],
    initial: dict[str, torch.Tensor],
    batch: int,
    steps: int,
    device: torch.device,
    candidate: str,
    amp: str | None,
    channels_last: bool,
    fit: Callable[..., Any] | None,
    repeats: int,
) -> dict[str, Any]:
    """One row of :func:`bench_training_gpu`: ``fit`` (or, with ``fit=None``, a second hand
    loop) against the hand loop, each with its own model, optimizer and loader."""

    def setup() -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
        model = zoo.build(spec, device=device)
        model.load_state_dict(initial)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return model, optimizer, make_loader()

    zoo_side, hand_side = setup(), setup()
    waits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:

        def run_zoo() -> float:
            model, optimizer, loader = zoo_side
            start = time.perf_counter()
            if fit is None:
                _hand_loop(model, optimizer, loader, device)
                return time.perf_counter() - start
            result = fit(
                model, optimizer, loader, epochs=1, out_dir=tmp, force=True, device=device,
                amp=amp, channels_last=channels_last,
            )  # fmt: skip
            waits.append(result.history[-1]["data_wait"])
            return result.history[-1]["seconds"]  # ends with a synchronisation

        def run_hand() -> float:
            model, optimizer, loader = hand_side
            start = time.perf_counter()
            _hand_loop(model, optimizer, loader, device)
            return time.perf_counter() - start

        # warm-up: workers start, cuDNN picks its algorithms, autocast caches its casts
        run_zoo(), run_hand()
        waits.clear()
        zoo_times, hand_times, _ = paired(run_zoo, run_hand, repeats, warmup=0)
    images = batch * steps
    return {
        "model": name,
        "candidate": candidate,
        "input": "x".join(map(str, (batch, spec.input.channels, *_size(spec)))),
        "steps": steps,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "zoo_img_s": images / statistics.median(zoo_times),
        "hand_img_s": images / statistics.median(hand_times),
        "ratio": statistics.median(h / z for z, h in zip(zoo_times, hand_times, strict=True)),
        "data_wait": statistics.median(waits) if waits else None,
    }


SECTIONS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "tracing": bench_tracing,
    "runtime": bench_runtime,
    "build": bench_build,
    "compile_export": bench_compile_export,
    "cli_startup": bench_cli_startup,
    "memory": bench_memory,
    "latency": bench_latency,
    "training": bench_training,
    "training_gpu": bench_training_gpu,
}


def main(only: str | None = None) -> None:
    """Measure every section (or only ``only``, kept with the others of report.json) and write
    report.json and report.md."""
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    machine = _machine()
    report: dict[str, Any] = {"machine": machine}
    if only is not None:
        report = _report_to_merge_into(machine)
    for key, fn in SECTIONS.items():
        if only in (None, key):
            print(f"benchmarking {key} ...", file=sys.stderr, flush=True)
            report[key] = fn()
    (HERE / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render(report)
    (HERE / "report.md").write_text(markdown)
    print(markdown)


def _report_to_merge_into(machine: dict[str, Any]) -> dict[str, Any]:
    """The committed report, if its figures were taken with this set-up: a section re-run with
    other versions, thread counts or ZOO_BENCH_QUICK would sit beside figures it cannot be read
    against. Only the platform string may differ (it names the VM's kernel build)."""
    path = HERE / "report.json"
    if not path.exists():
        sys.exit(f"{path} does not exist: run every section first (make bench), not --only")
    report = json.loads(path.read_text())
    theirs = report["machine"]
    differs = [
        k
        for k in theirs.keys() | machine.keys()
        if k != "platform" and theirs.get(k) != machine.get(k)
    ]
    if differs:
        changes = ", ".join(f"{k} {theirs.get(k)!r} -> {machine.get(k)!r}" for k in sorted(differs))
        sys.exit(
            f"{path} was measured otherwise ({changes}): run every section (make bench), not --only"
        )
    report["machine"] = machine
    return report


def render(report: dict[str, Any]) -> str:
    """The markdown report of a measured ``report`` (``--render`` redoes it from report.json)."""
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
        "zoo's figures are arithmetic over the spec (no module is constructed); torchinfo builds "
        "nothing either (the torchvision model is made once, outside the timing) but runs a real "
        "forward pass with hooks. `zoo_trace_from_name_s` also reads, resolves and validates the "
        "YAML (PyYAML's pure-Python parser, which records every line:col, is most of it).",
        "",
        _table(
            report["tracing"],
            [
                "model",
                "input",
                "zoo_trace_s",
                "zoo_trace_from_name_s",
                "torchinfo_s",
                "speedup",
                "zoo_macs",
                "torchinfo_macs",
            ],
        ),
        "",
        "## Runtime parity: zoo model against torchvision (CPU)",
        "",
        "Same weights; `ratio` is the median of per-pair time ratios over "
        f"{RUNTIME_REPEATS} back-to-back pairs. The A/A rows time a second torchvision instance "
        "against the first: their distance from 1.00 is this machine's noise.",
        "",
        _table(
            report["runtime"],
            ["model", "input", "mode", "candidate", "candidate_ms", "torchvision_ms", "ratio"],
        ),
        "",
        "## Build time: zoo.build against the torchvision constructor",
        "",
        "`zoo_build_s` builds from a loaded spec (it plans first, to refuse oversized models before "
        "making any module); `zoo_build_from_name_s` also reads and validates the YAML.",
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
        '## CLI start-up: commands that build no model against `python -c "import torch"`',
        "",
        "Each command runs as the installed `zoo` console script in a fresh process, interleaved "
        f'with `python -c "import torch"` over {STARTUP_REPEATS} pairs; these commands never '
        "import torch. `speedup` is the median per-pair ratio (import torch time / command time); "
        "peaks are the largest resident set of any run (GNU `time -f %M`). Goals per "
        f"command: at most {STARTUP_GOALS['zoo_s']} s and {STARTUP_GOALS['zoo_peak_mib']} MiB, "
        f"at least {STARTUP_GOALS['speedup']}x faster than importing torch.",
        "",
        _table(
            report["cli_startup"],
            [
                "command",
                "zoo_s",
                "import_torch_s",
                "speedup",
                "zoo_peak_mib",
                "import_torch_peak_mib",
            ],
        ),
        "",
    ]
    md += _render_memory(report) + _render_latency(report) + _render_training(report)
    md += _render_training_gpu(report)
    return "\n".join(md)


def _render_memory(report: dict[str, Any]) -> list[str]:
    if "memory" not in report:
        return []
    goal = int(MEMORY_GOAL * 100)
    return [
        f"## Memory: zoo's liveness analysis against measured peaks (batch {MEMORY_BATCH}, CPU)",
        "",
        "`*_estimate_mb` is `zoo.memory.estimate_memory` (what `zoo bench` shows): a replay of "
        "the plan that allocates nothing; `*_measured_mb` is every allocation and free PyTorch's "
        "CPU allocator reports to `torch.profiler` (`zoo.bench.measure_memory`), operator "
        "workspace included. Inference: weights plus the peak of a `no_grad` forward; training: "
        "weights, SGD-with-momentum state, and the peak of a steady-state step (forward, "
        "cross-entropy, backward, `step()`). `*_act_ratio` compares the activation part alone "
        f"(everything but weights and optimizer state). Goal: within {goal}% for the `goal` "
        "rows; the others are outside it: ConvNeXt, whose NHWC depthwise convolutions take "
        "backward workspace the analysis leaves out, and LeNet, whose one input channel and "
        "6 and 16 channels oneDNN pads to blocks of 16.",
        "",
        _table(
            report["memory"],
            [
                "model",
                "input",
                "goal",
                "weights_mb",
                "infer_estimate_mb",
                "infer_measured_mb",
                "infer_ratio",
                "infer_act_ratio",
                "train_estimate_mb",
                "train_measured_mb",
                "train_ratio",
                "train_act_ratio",
                "estimate_ms",
            ],
        ),
        "",
    ]


def _render_latency(report: dict[str, Any]) -> list[str]:
    if "latency" not in report:
        return []
    return [
        "## Latency: `zoo bench --latency` taken twice (batch 1, 224x224, CPU)",
        "",
        "Each timing is the median (and interquartile range) of `repeat` calls after `warmup` "
        "untimed ones, `zoo bench`'s defaults; `rerun_ratio` is the larger of two such medians "
        "over the smaller, on the same model one after the other. `cold_first_call_ms` is the "
        "first forward of a fresh model, which warm-up leaves out.",
        "",
        _table(
            report["latency"],
            [
                "model",
                "mode",
                "warmup",
                "repeat",
                "median_ms",
                "iqr_ms",
                "rerun_median_ms",
                "rerun_ratio",
                "cold_first_call_ms",
            ],
        ),
        "",
    ]


def _render_training(report: dict[str, Any]) -> list[str]:
    if "training" not in report:
        return []
    return [
        "## Training: zoo's loop against a hand-written loop (CPU)",
        "",
        "`zoo.train.loop.fit` against the loop the tutorials write (`zero_grad`, forward, "
        "loss, `backward`, `step`, loss and accuracy added up from that same forward with "
        "`.item()`), each on its own copy of the same initial weights, with SGD, over the same "
        "in-memory `TensorDataset` through a shuffled `DataLoader` without workers; one epoch of "
        f"`steps` steps per run, {TRAINING_REPEATS} interleaved pairs after a warm-up pair, at one "
        "torch thread and at the default count. `*_img_s` count the training steps only (fit's "
        "own per-epoch `seconds`, which bracket the same steps as the hand loop's timer); "
        "`ratio` is the median per-pair ratio zoo/hand of images/s; the A/A rows run the hand loop "
        "against a second copy of itself in zoo's place: their distance from 1.00 is this "
        "machine's noise. `zoo_whole_img_s` and "
        "`whole_ratio` time the whole `fit` call, with the files it writes after each epoch "
        "(`last.pt`, `best.pt`, metrics, `curves.png`; into a temporary folder here). Goal: "
        f"`ratio` at least {TRAINING_GOAL} within the noise floor the A/A rows measure in the same "
        "run (at least 0.03). On the CPU a step has nothing to overlap: zoo's loop does what the "
        "tutorial's does, so parity is the expectation; the wins (AMP, channels_last, workers "
        "feeding a GPU) are on a GPU.",
        "",
        _table(
            report["training"],
            [
                "model",
                "candidate",
                "input",
                "steps",
                "threads",
                "zoo_img_s",
                "hand_img_s",
                "ratio",
                "zoo_whole_img_s",
                "whole_ratio",
            ],
        ),
        "",
    ]


def _render_training_gpu(report: dict[str, Any]) -> list[str]:
    if "training_gpu" not in report:
        return []
    md = [
        "## Training on a GPU: zoo's loop with AMP and channels_last against a plain fp32 loop",
        "",
    ]
    if not report["training_gpu"]:
        return [
            *md,
            "Not measured: the machine that ran this report had no CUDA device. "
            "`python benchmarks/run.py --only training_gpu` on one fills this section.",
            "",
        ]
    goal, wait = GPU_TRAINING_GOAL, int(GPU_DATA_WAIT_GOAL * 100)
    return [
        *md,
        "`zoo.train.loop.fit` as `zoo train` runs it on CUDA (bf16 autocast, model and batches in "
        "`channels_last`, cuDNN autotuning) against the tutorials' fp32 loop (`.to(device)` per "
        "batch, `.item()` every step), then `fit` in fp32, then the hand loop against itself "
        "(A/A: the noise floor). Both sides have their own copy of the same initial weights, "
        "SGD with momentum, and the loader `zoo train` makes: uint8 images in memory, zoo's "
        "transforms per sample in workers, pinned memory; one epoch of `steps` steps per run, "
        f"{TRAINING_REPEATS} interleaved pairs after a warm-up pair. `ratio` is the median "
        "per-pair ratio zoo/hand of images/s; `data_wait` is fit's share of its epoch spent "
        f"waiting for the next batch. Goals: `ratio` at least {goal}x for bf16 with "
        f"channels_last, and `data_wait` under {wait}% (the GPU never waits on data).",
        "",
        _table(
            report["training_gpu"],
            [
                "model",
                "candidate",
                "input",
                "steps",
                "device",
                "zoo_img_s",
                "hand_img_s",
                "ratio",
                "data_wait",
            ],
        ),
        "",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--render", action="store_true", help="rewrite report.md from report.json; measure nothing"
    )
    mode.add_argument(
        "--only",
        choices=SECTIONS,
        help="measure this section only and merge it into report.json (other sections kept)",
    )
    args = parser.parse_args()
    if args.render:
        (HERE / "report.md").write_text(render(json.loads((HERE / "report.json").read_text())))
    else:
        main(args.only)
