"""Training beyond one process: what a run under ``torch.distributed.run`` (torchrun) needs.

A run is launched as ``python -m torch.distributed.run --nproc-per-node N script.py ...``; the
launcher sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) in
each process. :func:`from_env` reads them, joins the process group (``nccl`` on CUDA, ``gloo`` on
the CPU) and returns a :class:`Distributed` context that :func:`zoo.train.loop.fit` takes as
``distributed=``. Without the launcher's variables it returns ``None``: a single process, unchanged.

What the context does for :func:`~zoo.train.loop.fit`:

- **The model** is trained through :class:`~torch.nn.parallel.DistributedDataParallel` (gradients
  averaged across ranks after each backward), while checkpoints hold the *unwrapped* model's
  ``state_dict`` (keys without ``module.``), loadable by a single process and by any world size.
- **Data**: :meth:`Distributed.train_sampler` is a :class:`~torch.utils.data.DistributedSampler`;
  ``fit`` calls its ``set_epoch`` every epoch, so the order is a function of ``(seed, epoch)``
  only. :meth:`Distributed.eval_sampler` shards the evaluation set *without* the padding a
  DistributedSampler adds (padding repeats samples and would bias the metrics).
- **Metrics** are the same as one process's: the on-device sums (loss sum, correct, seen, the
  confusion matrix) are all-reduced before they are divided.
- **Files**: only rank 0 writes (metrics, checkpoints, curves) and only rank 0's callbacks run.

Equivalence with one process: with per-rank batch ``b`` and ``W`` ranks, step ``s`` trains on
positions ``[s*W*b, (s+1)*W*b)`` of the sampler's permutation (rank ``r`` takes every ``W``-th
index from ``r``), which is the permutation one process with ``DistributedSampler(num_replicas=1)``
and batch ``W*b`` would draw. DDP averages the per-rank mean gradients, i.e. the mean over the
global batch. So the loss curve equals the single-process one to float tolerance provided the
model has no dropout-like randomness and no BatchNorm with batch statistics (each rank would
normalise by its own ``b`` samples; use SyncBatchNorm, :meth:`Distributed.wrap` ``sync_bn=True``),
and the dataset length is a multiple of ``W`` (otherwise the sampler pads the last batch).

Resume across a changed world size: the checkpoint holds the global epoch and step, the global
metric sums of a partial epoch and the world size it was written with; a run resumed with another
world size but the same global batch skips the same samples (the permutation does not depend on
``W``; a single process resuming a distributed run likewise needs the same global batch). Every
rank reads ``last.pt`` to resume, so across machines ``out_dir`` must be on a shared filesystem.
The per-rank RNG states are *not* restored exactly: the checkpoint holds rank 0's, which
every rank loads. That changes nothing for a model without random layers or random augmentation;
with them, the resumed run is a valid continuation but not bitwise the uninterrupted one.

A signal (Ctrl-C, SIGTERM: torchrun forwards them to every rank) stops the run where every rank
agrees: the ranks vote at the ``sync_every`` boundaries, so a stop may take up to that many steps.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import usage_error

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Sampler

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""The environment variables torchrun sets in each process; all three mark a distributed run."""


@dataclass
class Distributed:
    """One process of a distributed run: its rank, the world size, its local rank (GPU index on
    its machine) and the device it trains on. Build it with :func:`from_env` (or :func:`init`)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and reports progress."""
        return self.rank == 0

    def wrap(self, model: nn.Module, *, sync_bn: bool = False) -> nn.Module:
        """``model`` (already on :attr:`device`) inside DistributedDataParallel; the returned
        wrapper shares ``model``'s parameters, so an optimizer built on ``model`` trains it.
        ``sync_bn`` converts BatchNorm layers to SyncBatchNorm first (statistics over the global
        batch, as one process would compute them; needs CUDA with nccl)."""
        import torch
        from torch.nn.parallel import DistributedDataParallel

        if sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def train_sampler(self, dataset: Any, *, seed: int = 0, shuffle: bool = True) -> Sampler:
        """The training sampler: a DistributedSampler over ``dataset`` (its order depends on
        ``seed`` and the epoch, which :func:`~zoo.train.loop.fit` sets; never on the world size)."""
        from torch.utils.data import DistributedSampler

        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=seed
        )

    def eval_sampler(self, dataset: Any) -> Sampler:
        """The evaluation sampler: this rank's every ``world_size``-th sample, no padding."""
        return ShardSampler(len(dataset), self.rank, self.world_size)

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce ``tensor`` in place across ranks (``op``: ``sum``, ``max`` or ``min``); it is
        moved to :attr:`device` for the collective (nccl needs CUDA tensors) and returned there."""
        import torch.distributed as torch_dist

        ops = {"sum": torch_dist.ReduceOp.SUM, "max": torch_dist.ReduceOp.MAX}
        ops["min"] = torch_dist.ReduceOp.MIN
        tensor = tensor.to(self.device)
        torch_dist.all_reduce(tensor, op=ops[op])
        return tensor

    def barrier(self) -> None:
        """Wait for every rank (e.g. before reading what rank 0 wrote)."""
        import torch.distributed as torch_dist

        if self.device.type == "cuda":
            torch_dist.barrier(device_ids=[self.device.index])
        else:
            torch_dist.barrier()

    def close(self) -> None:
        """Leave the process group (call once at the end of the run, on every rank)."""
        import torch.distributed as torch_dist

        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


class ShardSampler:
    """Indices ``rank, rank + W, rank + 2W, ...`` of ``0..length-1``: every sample lands on exactly
    one rank (ranks may get one sample fewer). For evaluation only: training needs equal step
    counts on every rank (DDP's collectives), which DistributedSampler's padding gives."""

    def __init__(self, length: int, rank: int, world_size: int):
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Any:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def launched() -> bool:
    """Whether this process was started by torchrun (its variables are all set)."""
    return all(name in os.environ for name in LAUNCHER_VARIABLES)


def init(
    rank: int, world_size: int, local_rank: int, *, backend: str | None = None, device: str = "auto"
) -> Distributed:
    """Join the process group (``MASTER_ADDR``/``MASTER_PORT`` from the environment). ``device``
    ``auto`` is ``cuda:LOCAL_RANK`` when CUDA is there, else the CPU; ``backend`` defaults to
    ``nccl`` on CUDA and ``gloo`` on the CPU."""
    import torch
    import torch.distributed as torch_dist

    if not 0 <= rank < world_size or local_rank < 0:
        raise usage_error(f"rank {rank} / world size {world_size} / local rank {local_rank}")
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not torch_dist.is_initialized():
        _import_before_the_group()
        torch_dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Distributed(rank, world_size, local_rank, dev, backend)


def _import_before_the_group() -> None:
    """Import ``torch.distributed.nn.functional`` while no process group exists.

    Ten of its functions take ``group=group.WORLD`` as a default argument, evaluated on import.
    Imported after ``init_process_group`` (DistributedDataParallel's constructor imports it,
    through ``torch._dynamo``), they hold the default group for good: ``destroy_process_group``
    cannot free it, so gloo's worker threads outlive :meth:`Distributed.close` and run into the
    interpreter's finalization. A worker that releases its last collective's tensor only then
    needs the GIL, Python ends the thread inside a C++ destructor ("terminate called without an
    active exception") and the rank dies with SIGABRT after a successful run: rarely, and more
    often on a loaded machine, where that thread runs late. Imported first, the defaults are
    ``None``."""
    with contextlib.suppress(ImportError):  # a torch without it has no such defaults either
        import torch.distributed.nn.functional  # noqa: F401


def from_env(*, backend: str | None = None, device: str = "auto") -> Distributed | None:
    """The :class:`Distributed` context of a process started by torchrun, or ``None`` when the
    launcher's variables are not set (a plain single-process run)."""
    if not launched():
        return None
    try:
        rank, world, local = (int(os.environ[name]) for name in LAUNCHER_VARIABLES)
    except ValueError:
        values = ", ".join(f"{n}={os.environ[n]!r}" for n in LAUNCHER_VARIABLES)
        raise usage_error(f"the launcher's variables must be integers: {values}") from None
    return init(rank, world, local, backend=backend, device=device)


def launcher_command(
    nproc_per_node: int, argv: list[str], nnodes: int = 1, rdzv_endpoint: str | None = None
) -> list[str]:
    """The command that re-runs ``argv`` (a python module or script and its arguments, e.g.
    ``["-m", "zoo", "train", ...]``) under torchrun with ``nproc_per_node`` processes on this
    machine, one of ``nnodes`` machines meeting at ``rdzv_endpoint`` (HOST:PORT; a single machine
    needs none): what ``zoo train --nproc-per-node N`` runs (the child processes see the launcher's
    variables, so they take the distributed path)."""
    import sys

    for name, value in (("nproc-per-node", nproc_per_node), ("nnodes", nnodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise usage_error(f"{name} must be a positive int, got {value!r}")
    if nnodes > 1 and not rdzv_endpoint:
        raise usage_error(
            "--nnodes above 1 needs --rdzv-endpoint HOST:PORT, the same on every node"
        )
    where = (
        ["--standalone"]
        if nnodes == 1 and not rdzv_endpoint
        else [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
    )
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *where,
        f"--nproc-per-node={nproc_per_node}",
        *argv,
    ]


__all__ = [
    "LAUNCHER_VARIABLES",
    "Distributed",
    "ShardSampler",
    "from_env",
    "init",
    "launched",
    "launcher_command",
]
