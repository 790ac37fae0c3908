"""Weights from anywhere: the tensors of a ``state_dict`` file (torchvision's, timm's, a training
checkpoint's, zoo's own), fitted to a model with a report of every key that does not fit.

``zoo.build(spec, weights=path)`` and ``zoo build SPEC --weights FILE`` load through here;
:mod:`zoo.checkpoint` reads its files with :func:`read_torch_file` too. Files are read with
``torch.load(weights_only=True)``: no code of the file's runs. torch is imported inside the
functions, so importing this module costs nothing.
"""

from __future__ import annotations

import difflib
import os
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import file_kind, open_regular
from zoo.shapes import fmt

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT = "zoo/1"
"""The ``format`` tag of the checkpoints this zoo writes and reads (:mod:`zoo.checkpoint`)."""

_ROOM = 2**26  # beside the weights: the spec and the archive's record of each tensor


def describe_shape(shape: tuple[int, ...] | None) -> str:
    """A tensor's shape as ``64x3x7x7`` (``a scalar``; ``not a tensor`` for ``None``)."""
    if shape is None:
        return "not a tensor"
    return fmt(shape) if shape else "a scalar"


_PICKLED_OBJECT = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _unreadable(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words (torch's own messages are
    paragraphs, with terminal escapes)."""
    found = _PICKLED_OBJECT.search(str(exc))
    if found:
        return (
            f"it holds Python objects ({found[1]}), not only tensors (a pickled module?), and "
            "zoo runs no code from a file"
        )
    lines = str(exc).strip().splitlines()
    first = lines[0].split(". ")[0] if lines else ""
    return (
        "torch.load cannot read it: it is truncated, damaged or not a PyTorch file "
        f"({type(exc).__name__}{': ' + first if first else ''})"
    )


def _io_error(path: Path, message: str, kind: str = "io") -> ZooError:
    return ZooError(Problem(message, str(path), kind=kind), ExitCode.IO_ERROR)


def _refuse_irregular(path: Path, mode: int) -> None:
    """Refuse anything but a regular file: reading a FIFO blocks and a device never ends."""
    kind = file_kind(mode)
    if kind is not None:
        raise _io_error(path, f"it is {kind}; give a checkpoint file (.pt)")


def _refuse_large(path: Path, size: int, force: bool, limit: int) -> None:
    """Refuse a file larger than ``limit`` bytes of weights (the most :func:`zoo.build` makes
    without ``force``; the file is read whole into memory), unless ``force``."""
    if size > limit + _ROOM and not force:
        raise _io_error(
            path,
            f"the file is {size / 2**30:,.1f} GiB, more than the {limit / 2**30:g} GiB "
            "limit on weights; pass force=True (--force) to load it anyway",
            "too_large",
        )


def read_torch_file(
    path: Path,
    force: bool,
    limit: int,
    unreadable: Callable[[Path, str], ZooError],
    mmap: bool = False,
) -> Any:
    """What ``torch.load(weights_only=True)`` reads from ``path`` onto the CPU, once the file is
    checked: a regular file (before it is opened, and again once it is), no larger than
    ``limit`` bytes of weights unless ``force``. ``argparse.Namespace`` is
    allowed besides tensors and plain data: timm's training checkpoints keep their arguments in
    one, and making one runs no code of the file's. ``unreadable(path, why)`` is the error for
    a file torch cannot read. ``mmap`` maps the tensors of a zip-format file instead of reading
    them (for a caller that needs only the other entries)."""
    import argparse
    import zipfile

    import torch

    def check(info: os.stat_result) -> None:
        _refuse_irregular(path, info.st_mode)
        _refuse_large(path, info.st_size, force, limit)

    try:
        with open_regular(path, check) as handle:
            try:
                with torch.serialization.safe_globals([argparse.Namespace]):
                    if mmap and zipfile.is_zipfile(handle):  # torch maps a file by its name
                        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                    handle.seek(0)
                    return torch.load(handle, map_location="cpu", weights_only=True)
            except OSError:
                raise  # the disk failed, not the format
            except Exception as exc:  # torch raises anything from zipfile, pickle and itself
                raise unreadable(path, _unreadable(exc)) from None
    except FileNotFoundError:
        raise _io_error(path, "no such file", "not_found") from None
    except OSError as exc:
        raise _io_error(path, f"cannot read the file: {exc.strerror or exc}") from None


STATE_DICT_ENTRIES = ("state_dict", "model", "model_state_dict")
"""Where a training checkpoint keeps its weights, in the order they are looked for (timm's and
most training scripts' ``state_dict``, torchvision's references' ``model``, Lightning-era
scripts' ``model_state_dict``); a file that is a plain ``state_dict`` is taken as it is."""

_NEAREST_CUTOFF = 0.6  # difflib's default: names that share less are no hint

_SHOWN = 12  # keys listed per kind of mismatch; the count says how many more there are


@dataclass(frozen=True)
class Weights:
    """The tensors of a weights file (:func:`read_weights`), on the CPU, before they are checked
    against a model. ``source`` says what the file held ("a state_dict", "the 'model' entry of a
    checkpoint", "a zoo checkpoint of 'resnet18'")."""

    path: Path
    state_dict: Mapping[str, torch.Tensor]
    source: str
    spec_name: str | None = None  # the spec of a zoo checkpoint

    def fit(self, model: nn.Module, name: str) -> tuple[dict[str, torch.Tensor], str]:
        """The weights renamed and completed to load strictly into ``model`` (any device, meta
        included; ``name`` names it in messages), and how they were adapted ("" when they were
        not). Raises :class:`WeightsMismatch` when they do not fit.

        Two adaptations, both unambiguous: a prefix that every key of the file has and whose
        removal gives exactly the model's keys is removed (``module.`` from DataParallel,
        ``model.`` from a wrapper); BatchNorm's ``num_batches_tracked`` counters, which
        checkpoints from before PyTorch 0.4 (torchvision's first weights among them) lack, start
        at 0, as ``load_state_dict`` does for them."""
        import torch

        expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
        state = dict(self.state_dict)
        notes = []
        prefix = _common_prefix(state, expected)
        if prefix:
            state = {key[len(prefix) :]: tensor for key, tensor in state.items()}
            notes.append(f"the prefix {prefix!r} removed from every key")
        counters = [  # a norm the file has, without its counter
            key
            for key in expected
            if key.endswith(".num_batches_tracked")
            and key not in state
            and key.replace(".num_batches_tracked", ".running_mean") in state
        ]
        if counters:
            for key in counters:
                state[key] = torch.zeros((), dtype=torch.long)
            notes.append(f"{len(counters)} num_batches_tracked counters started at 0")
        got = {key: tuple(t.shape) for key, t in state.items()}
        missing = [key for key in expected if key not in got]
        unexpected = [key for key in got if key not in expected]
        misshaped = [key for key in expected if key in got and got[key] != expected[key]]
        if missing or unexpected or misshaped:
            raise WeightsMismatch(self, name, expected, got, missing, unexpected, misshaped)
        return state, "; ".join(notes)


class WeightsMismatch(ZooError):
    """Weights that do not fit a model, reported in groups: one line that says so and how many
    keys are wrong, then a line per key (up to :data:`_SHOWN` a group): ``missing`` (the model
    has it, the file does not), ``unexpected`` (the other way round), ``misshaped`` (both shapes),
    each missing or unexpected key with the nearest name on the other side. Exit code 1: the
    spec does not build the network the weights are for. ``missing``, ``unexpected`` and
    ``misshaped`` hold every key."""

    def __init__(
        self,
        weights: Weights,
        name: str,
        expected: Mapping[str, tuple[int, ...]],
        got: Mapping[str, tuple[int, ...]],
        missing: list[str],
        unexpected: list[str],
        misshaped: list[str],
    ):
        self.missing, self.unexpected, self.misshaped = missing, unexpected, misshaped
        file = str(weights.path)
        counts = [
            _count(len(missing), "key", "missing from the file"),
            _count(len(unexpected), "unexpected key", ""),
            _count(len(misshaped), "mis-shaped key", ""),
        ]
        advice = _advice(weights, name, missing, unexpected, misshaped, got, expected)
        summary = (
            f"the weights ({weights.source}) do not fit {name}: "
            f"{', '.join(c for c in counts if c)}; {advice}"
        )
        problems = [Problem(summary, file, kind="weights")]
        groups = (
            (missing, "missing_key", "missing", lambda key: _missing(key, expected, unexpected)),
            (
                unexpected,
                "unexpected_key",
                "unexpected",
                lambda key: _unexpected(key, got, missing),
            ),
            (misshaped, "misshaped_key", "mis-shaped", lambda key: _misshaped(key, got, expected)),
        )
        for keys, kind, label, describe in groups:
            problems += [Problem(describe(key), file, path=key, kind=kind) for key in keys[:_SHOWN]]
            if len(keys) > _SHOWN:
                more = _count(len(keys) - _SHOWN, f"more {label} key", "")
                problems.append(Problem(f"and {more}", file, kind=kind))
        super().__init__(problems, ExitCode.SPEC_ERROR)


def _count(n: int, what: str, after: str) -> str:
    if not n:
        return ""
    text = f"{n} {what}{'s' if n > 1 else ''}"
    return f"{text} {after}" if after else text


def _advice(
    weights: Weights,
    name: str,
    missing: list[str],
    unexpected: list[str],
    misshaped: list[str],
    got: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
) -> str:
    """What to do, in the terms of the most telling sign."""
    if weights.spec_name is not None and weights.spec_name != name:
        return f"the file is a checkpoint of {weights.spec_name!r}: build it (`zoo build {weights.path}`)"
    inner = _common_prefix(expected, got)  # the model's keys are the file's under a prefix
    if inner:
        return (
            f"the model's keys are the file's with the prefix {inner!r}: weights of a part of it?"
        )
    if len(missing) + len(misshaped) > len(expected) / 2:
        return "most of the model's keys do not fit: are they the weights of another network?"
    return (
        "change the spec (or --set) to the network the weights are for, or pick the weights "
        "of this spec"
    )


def _common_prefix(keys: Mapping[str, Any], target: Mapping[str, Any]) -> str:
    """A prefix ending in ``.`` that every one of ``keys`` has, such that removing it gives
    exactly ``target``'s keys; ``""`` when there is none."""
    if not keys or len(keys) != len(target):
        return ""
    first = next(iter(keys))
    for i, char in enumerate(first):
        if char != ".":
            continue
        prefix = first[: i + 1]
        if all(key.startswith(prefix) and key[i + 1 :] in target for key in keys):
            return prefix
    return ""


def _nearest(key: str, candidates: Sequence[str]) -> str:
    found = difflib.get_close_matches(key, candidates, n=1, cutoff=_NEAREST_CUTOFF)
    return found[0] if found else ""


def _missing(key: str, expected: Mapping[str, tuple[int, ...]], unexpected: list[str]) -> str:
    nearest = _nearest(key, unexpected)
    hint = f"; nearest in the file: {nearest}" if nearest else ""
    return f"missing: the model has it ({describe_shape(expected[key])}), the file does not{hint}"


def _unexpected(key: str, got: Mapping[str, tuple[int, ...]], missing: list[str]) -> str:
    nearest = _nearest(key, missing)
    hint = f"; nearest in the model: {nearest}" if nearest else ""
    return f"unexpected: the file has it ({describe_shape(got[key])}), the model does not{hint}"


def _misshaped(
    key: str, got: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]
) -> str:
    return f"mis-shaped: {describe_shape(got[key])} in the file, {describe_shape(expected[key])} in the model"


def _not_weights(path: Path, what: str) -> ZooError:
    return ZooError(
        Problem(
            f"no weights to load: {what}; zoo reads a state_dict (torch.save(model.state_dict(), "
            f"path)), a checkpoint dict holding one under {' or '.join(map(repr, STATE_DICT_ENTRIES))}, "
            "or a zoo checkpoint",
            str(path),
            kind="weights_file",
        ),
        ExitCode.IO_ERROR,
    )


def read_weights(path: str | os.PathLike[str], force: bool, limit: int) -> Weights:
    """The tensors of a weights file: a ``state_dict`` as torchvision and timm save them, a
    training checkpoint holding one under one of :data:`STATE_DICT_ENTRIES`, or a zoo checkpoint
    (its spec is not used). Read with ``torch.load(weights_only=True)`` (no code of the file's
    runs), checked as :func:`read_checkpoint` checks a file. Raises :class:`ZooError` located at
    the file, exit code 3."""
    import torch

    if not isinstance(path, str | os.PathLike):
        raise usage_error(f"weights must be a file path, got {type(path).__name__}")
    path = Path(path)
    data = read_torch_file(path, force, limit, _not_weights)
    if not isinstance(data, dict):
        raise _not_weights(path, f"it holds a {type(data).__name__}, not a dict")
    source, name = "a state_dict", None
    if data.get("format") == FORMAT:  # its spec is not used: the weights go into another's
        spec = data.get("spec")
        name = spec.get("name") if isinstance(spec, dict) else None
        data = data.get("state_dict")
        if not isinstance(name, str):
            name = None
        source = f"a zoo checkpoint of {name!r}" if name else "a zoo checkpoint"
        if not isinstance(data, dict):
            raise _not_weights(path, "a zoo/1 checkpoint without a 'state_dict' dict")
    for entry in STATE_DICT_ENTRIES:
        if isinstance(data.get(entry), dict):
            data, source = data[entry], f"the {entry!r} entry of a checkpoint"
            break
    if not data:
        raise _not_weights(path, "it holds an empty dict")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            where = "it" if source == "a state_dict" else source
            raise _not_weights(
                path,
                f"{where} maps {reprlib.repr(key)} to a {type(value).__name__}, not a tensor",
            )
    return Weights(path, data, source, name)


def load_weights(model: nn.Module, weights: Weights, name: str) -> str:
    """Load ``weights`` into ``model`` strictly, in place (an ``nn.Module`` on a device that
    computes, or on meta: then the file's tensors become the model's, with no copy). Returns how
    they were adapted (see :meth:`Weights.fit`); raises :class:`WeightsMismatch`."""
    state, adapted = weights.fit(model, name)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    model.load_state_dict(state, strict=True, assign=on_meta)
    return adapted
