"""Checkpoints: a model's weights saved with the spec they fit, and loaded back strictly.

A checkpoint is what ``torch.save`` writes for ``{"format": "zoo/1", "spec": ..., "state_dict":
...}``: the spec as plain data (its ``input`` the one the weights were built for), the weights as
tensors only, so it loads with ``torch.load(path, weights_only=True)`` and no zoo at all. It is
written by the output rules of :mod:`zoo.files` (atomic, only over a regular file, never over an
input of the command) and read back by :func:`load`, or by ``zoo build FILE.pt``.

torch is imported inside the functions: ``import zoo.checkpoint`` (the CLI does) costs nothing.
"""

from __future__ import annotations

import dataclasses
import os
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import output_path, write_atomically
from zoo.shapes import Shape, fmt, pair
from zoo.weights import FORMAT, describe_shape, read_torch_file

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.nn import ZooNet
    from zoo.spec import ModelSpec
    from zoo.spec.load import SpecLike

CHECKPOINT_SUFFIXES = (".pt", ".pth")
"""``zoo build`` reads an argument whose name ends in one of these (any case) as a checkpoint."""

_LISTED = 4  # keys named per kind of mismatch; a whole network's keys would not fit on one line


def is_checkpoint_name(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` ends in ``.pt`` or ``.pth``: what ``zoo build`` reads as a checkpoint."""
    return Path(name).suffix.lower() in CHECKPOINT_SUFFIXES


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read by :func:`read_checkpoint`: its validated spec and its weights (on the
    CPU), not yet checked against each other."""

    path: Path
    spec: ModelSpec
    state_dict: Mapping[str, torch.Tensor]

    def check(self, input_shape: Shape | None = None) -> None:
        """Refuse (exit 1, located at the file) weights that do not fit the model the spec builds
        for ``input_shape`` (C, H, W; default: the spec's input). Nothing is allocated."""
        mismatch = _mismatch(self.spec, input_shape, self.state_dict)
        if mismatch is not None:
            saved_for = (self.spec.input.channels, *pair(self.spec.input.size))
            built_for = saved_for if input_shape is None else tuple(input_shape)
            why = (
                f"they were saved for input {fmt(saved_for)}"
                if built_for != saved_for
                else "the file, or a layer type it uses, changed after zoo wrote it"
            )
            raise ZooError(
                Problem(
                    f"its weights do not fit the model its spec builds for input "
                    f"{fmt(built_for)} ({mismatch}); {why}",
                    str(self.path),
                    path="state_dict",
                    kind="weights",
                )
            )

    def model(
        self, device: torch.device | str | None = None, input_shape: Shape | None = None
    ) -> ZooNet:
        """The spec's model on ``device``, in the weights' dtype, with the weights loaded."""
        from zoo.compiler import build, resolve_device

        # checked on the meta device first: a spec whose model is far larger than the weights
        # that came with it is refused before anything is allocated
        self.check(input_shape)
        # made on meta, it takes the saved tensors as its own (no initialization to redo and
        # overwrite, no copy), then moves; force: the file's size was checked when it was read
        model = build(self.spec, "meta", input_shape, dtype=self._dtype(), force=True)
        model.load_state_dict(self.state_dict, strict=True, assign=True)
        return model.to(resolve_device(device))

    def _dtype(self) -> torch.dtype | None:
        """The dtype of the floating weights, when they share one (a model built in bfloat16 is
        loaded in bfloat16, not widened to float32); else torch's default."""
        dtypes = {t.dtype for t in self.state_dict.values() if t.is_floating_point()}
        return dtypes.pop() if len(dtypes) == 1 else None


def save(
    model: nn.Module,
    path: str | os.PathLike[str],
    spec: SpecLike | None = None,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Write ``model``'s weights and its spec to ``path`` as a checkpoint that :func:`load` (and
    ``zoo build path``) reads back.

    ``spec`` (a spec object, YAML path, shipped name or mapping) defaults to the spec that
    :func:`zoo.build` made ``model`` from; the spec saved has its ``input`` set to the input the
    model was built for. The file is written atomically, only over a regular file and never over
    one of ``inputs`` (files the caller read, such as the spec's). Raises :class:`ZooError`: exit 2
    for a model on the meta device (no weights) or one whose weights do not fit the spec, 3 when
    the file cannot be written.
    """
    import torch
    from torch import nn

    from zoo.nn import ZooNet
    from zoo.spec import ModelSpec
    from zoo.spec.load import spec_argument

    if not isinstance(model, nn.Module):
        raise usage_error(f"save() takes an nn.Module to save, got {type(model).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise usage_error(f"save() takes a file path, got {type(path).__name__}")
    target = output_path(os.fspath(path), "save() path")
    state = model.state_dict()
    if any(isinstance(t, torch.Tensor) and t.is_meta for t in state.values()):
        raise usage_error(
            "the model is on the meta device: it has shapes but no weights to save; "
            'build it on a device that computes (device="cpu")'
        )
    recorded = getattr(model, "spec", None)
    if spec is not None:
        recorded = spec_argument(spec, "save")
    elif not isinstance(recorded, ModelSpec):
        raise usage_error(
            f"the {type(model).__name__} has no spec (zoo.build records it on the models it "
            "builds); pass the spec it was built from: zoo.save(model, path, spec=...)"
        )
    built_for = model.input_shape if isinstance(model, ZooNet) else None
    saved = _spec_for_input(recorded, built_for)
    mismatch = _mismatch(saved, None, state)
    if mismatch is not None:
        raise usage_error(
            f"the model's weights do not fit the spec {saved.name!r} ({mismatch}); "
            "pass the spec the model was built from"
        )
    checkpoint = {
        "format": FORMAT,
        "spec": saved.model_dump(mode="json", exclude_unset=True),
        "state_dict": state,
    }
    write_atomically(target, lambda handle: torch.save(checkpoint, handle), inputs)


def load(
    path: str | os.PathLike[str], device: torch.device | str | None = None, force: bool = False
) -> ZooNet:
    """The model a checkpoint written by :func:`save` (or ``zoo build --output``) holds: built
    from its spec on ``device`` (default: torch's default device), in the weights' dtype, with
    the weights loaded strictly.

    Raises :class:`ZooError` located at the file: exit 3 when it cannot be read or is not a zoo
    checkpoint (a truncated file, a plain ``state_dict``, a pickled module), 1 when its spec does
    not validate or its weights do not fit the spec's model, 2 for a bad argument. A file over
    8 GiB is refused before it is read, unless ``force``.
    """
    from zoo.compiler import resolve_device

    if not isinstance(path, str | os.PathLike):
        raise usage_error(f"load() takes a file path, got {type(path).__name__}")
    if not isinstance(force, bool):
        raise usage_error(f"force must be True or False, got {force!r}")
    resolved = resolve_device(device)  # a device this machine lacks is refused before reading
    return read_checkpoint(Path(path), force).model(resolved)


def _spec_for_input(spec: ModelSpec, input_shape: Shape | None) -> ModelSpec:
    """``spec`` with its ``input`` set to ``input_shape`` (C, H, W), the one weights were built
    for; ``spec`` itself when that is its input already (or ``input_shape`` is ``None``)."""
    if input_shape is None:
        return spec
    c, h, w = input_shape
    if (c, h, w) == (spec.input.channels, *pair(spec.input.size)):
        return spec
    size = h if h == w else (h, w)
    return spec.model_copy(
        update={"input": spec.input.model_copy(update={"channels": c, "size": size})}
    )


def _mismatch(spec: ModelSpec, input_shape: Shape | None, state: Mapping[str, Any]) -> str | None:
    """What keeps ``state`` from loading strictly into the model of ``spec`` (built on the meta
    device, so at no cost): missing, unexpected and mis-shaped keys; ``None`` when it loads."""
    import torch

    from zoo.compiler import build

    expected = {
        key: tuple(t.shape)
        for key, t in build(spec, "meta", input_shape, force=True).state_dict().items()
    }
    got = {key: tuple(t.shape) if isinstance(t, torch.Tensor) else None for key, t in state.items()}
    parts = []
    missing = [key for key in expected if key not in got]
    unexpected = [key for key in got if key not in expected]
    if missing:
        parts.append(f"missing {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected {_listed(unexpected)}")
    misshaped = [
        f"{key} ({describe_shape(got[key])} where the model has {describe_shape(shape)})"
        for key, shape in expected.items()
        if key in got and got[key] != shape
    ]
    if misshaped:
        parts.append(f"mis-shaped {_listed(misshaped)}")
    return "; ".join(parts) or None


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown} and {len(items) - _LISTED} more"


# --------------------------------------------------------------------------- reading
def _not_a_checkpoint(path: Path, what: str) -> ZooError:
    return ZooError(
        Problem(
            f"not a zoo checkpoint: {what}; zoo reads the files that zoo.save and "
            "`zoo build --output` write (a torchvision or timm state_dict goes with a spec: "
            "zoo build SPEC --weights FILE)",
            str(path),
            kind="checkpoint",
        ),
        ExitCode.IO_ERROR,
    )


def read_checkpoint(path: Path, force: bool = False) -> Checkpoint:
    """Read a checkpoint's spec (validated) and weights (on the CPU), checking the file like a
    spec file: a regular file (before it is opened, and again once it is), no larger than the
    weights ``zoo.build`` makes unless ``force``. Raises :class:`ZooError` located at ``path``."""
    from zoo import compiler  # its limit read now: tests lower it

    return _checkpoint(
        path, read_torch_file(path, force, compiler.MAX_WEIGHT_BYTES, _not_a_checkpoint)
    )


def _checkpoint(path: Path, data: Any) -> Checkpoint:
    """The checkpoint in ``data``, what ``torch.load`` read from ``path``, once its layout and
    spec are checked."""
    import torch

    if not isinstance(data, dict):
        raise _not_a_checkpoint(path, f"it holds a {type(data).__name__}, not a dict")
    if "format" not in data:
        raise _not_a_checkpoint(path, "it holds a dict without 'format' (a plain state_dict?)")
    if data["format"] != FORMAT:
        found = reprlib.repr(data["format"])
        raise _not_a_checkpoint(path, f"its format is {found}, and this zoo reads {FORMAT!r}")
    state = data.get("state_dict")
    if not isinstance(data.get("spec"), dict) or not isinstance(state, dict):
        raise _not_a_checkpoint(path, "a zoo/1 checkpoint holds a 'spec' and a 'state_dict' dict")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise _not_a_checkpoint(path, "its state_dict maps names to something besides tensors")
    return Checkpoint(path, _spec(path, data["spec"]), state)


def _spec(path: Path, data: dict[str, Any]) -> ModelSpec:
    """Validate a checkpoint's spec like a file's; its problems are located at the checkpoint."""
    from zoo.spec import load_spec
    from zoo.spec.load import MAPPING_FILE

    try:
        return load_spec(data)
    except ZooError as exc:
        problems = [
            dataclasses.replace(p, file=str(path)) if p.file == MAPPING_FILE else p
            for p in exc.problems
        ]
        raise ZooError(problems, exc.exit_code) from None
