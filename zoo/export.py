"""Models out: a built network written as TorchScript, ONNX or a ``torch.export`` program.

:func:`export_model` writes one file by the output rules of :mod:`zoo.files` (atomic, only over a
regular file, never over an input of the command), as ``zoo build --output`` does. Every format
keeps the batch size free (a dynamic dimension named ``batch``); the height and width are those
the model was built for. The model runs in eval mode (BatchNorm's running statistics, no
dropout). ONNX needs the optional ``onnx`` and ``onnxscript`` packages (``pip install
'zoo[onnx]'``), which ``torch.onnx.export`` uses.

torch is imported inside the functions: importing this module (the CLI does) costs nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from zoo.errors import ExitCode, Problem, ZooError, describe_error, usage_error
from zoo.files import output_path, write_atomically

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMATS = {"torchscript": ".pt", "onnx": ".onnx", "exported-program": ".pt2"}
"""The formats :func:`export_model` writes, with the usual suffix of each."""

_BY_SUFFIX = {
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".onnx": "onnx",
    ".pt2": "exported-program",
}

ONNX_PACKAGES = ("onnx", "onnxscript")
"""What ``torch.onnx.export`` needs besides torch: the ``onnx`` extra (``pip install 'zoo[onnx]'``)."""

_ONNX_LIMIT = 2**31  # protobuf's limit on one message: an ONNX file holds its weights in one

_EXAMPLE_BATCH = 2  # an example of 1 would let torch.export fix the batch size at 1


def format_for(path: str | os.PathLike[str], format: str | None) -> str:
    """The format to write ``path`` in: ``format`` when given (checked), else the one its suffix
    names (``.pt``/``.ts`` TorchScript, ``.onnx``, ``.pt2`` an exported program)."""
    if format is not None:
        if format not in FORMATS:
            raise usage_error(f"unknown export format {format!r}; use {_choices()}", "format")
        return format
    found = _BY_SUFFIX.get(Path(path).suffix.lower())
    if found is None:
        raise usage_error(
            f"cannot tell the format from the file name {os.fspath(path)!r}: give the format "
            f"({_choices()}), or end the name in {', '.join(_BY_SUFFIX)}",
            "format",
        )
    return found


def _choices() -> str:
    *names, last = FORMATS
    return f"{', '.join(names)} or {last}"


def missing_onnx_packages() -> list[str]:
    """The packages of :data:`ONNX_PACKAGES` that are not installed."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def check_format_available(format: str) -> None:
    """Refuse (exit 2) a format whose packages are not installed, before any model is built."""
    missing = missing_onnx_packages() if format == "onnx" else []
    if missing:
        raise usage_error(
            f"ONNX export needs {' and '.join(missing)}, which torch.onnx.export uses and zoo "
            "does not install by default: pip install 'zoo[onnx]'",
            "missing_dependency",
        )


def export_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    format: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``model`` to ``path`` as TorchScript (``torch.jit.save`` of ``torch.jit.script``),
    ONNX (``torch.onnx.export``, dynamo exporter) or an exported program (``torch.export.save``);
    ``format`` defaults to the one ``path``'s suffix names. ``input_shape`` (C, H, W) is the
    example input's, by default the one a zoo model was built for; the batch stays dynamic.
    Written atomically, only over a regular file and never over one of ``inputs``. Returns the
    path written. Raises :class:`ZooError`: exit 2 for a bad argument or a missing ONNX package,
    1 when the model cannot be exported, 3 when the file cannot be written."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise usage_error(f"export_model() takes an nn.Module, got {type(model).__name__}")
    if not isinstance(path, str | os.PathLike):
        raise usage_error(f"export_model() takes a file path, got {type(path).__name__}")
    target = output_path(os.fspath(path), "export path")
    format = format_for(target, format)
    check_format_available(format)
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None or len(shape) != 3:
        raise usage_error(
            f"export needs the input's shape (C, H, W): give input_shape=, the "
            f"{type(model).__name__} does not record one"
        )
    parameters = list(model.parameters())
    if any(p.is_meta for p in parameters):
        raise usage_error(
            "the model is on the meta device: it has no weights to export; build it on a "
            'device that computes (device="cpu")'
        )
    size = sum(p.numel() * p.element_size() for p in parameters)
    if format == "onnx" and size >= _ONNX_LIMIT:
        raise usage_error(
            f"an ONNX file holds at most 2 GiB of weights, and these take {size / 2**30:.1f} "
            "GiB; export it as exported-program or torchscript instead"
        )
    first = parameters[0] if parameters else torch.empty(0)
    example = torch.zeros(
        _EXAMPLE_BATCH, *shape, device=first.device, dtype=first.dtype if parameters else None
    )
    was_training = model.training
    model.eval()
    try:
        write = _WRITERS[format](model, example)
    finally:
        model.train(was_training)
    write_atomically(target, write, inputs)
    return target


def _failed(format: str, exc: BaseException) -> ZooError:
    return ZooError(
        Problem(f"the model cannot be exported as {format}: {describe_error(exc)}", kind="export"),
        ExitCode.SPEC_ERROR,
    )


def _batch() -> Any:
    import torch

    return torch.export.Dim("batch", min=1)


def _torchscript(model: nn.Module, example: torch.Tensor) -> Callable[[BinaryIO], None]:
    import torch

    try:
        scripted = torch.jit.script(model)
    except Exception as exc:  # TorchScript raises its own frontend errors, RuntimeErrors, ...
        raise _failed("torchscript", exc) from None
    return lambda handle: torch.jit.save(scripted, handle)


def _exported_program(model: nn.Module, example: torch.Tensor) -> Callable[[BinaryIO], None]:
    import torch

    try:
        program = torch.export.export(model, (example,), dynamic_shapes=({0: _batch()},))
    except Exception as exc:  # any error of tracing the forward
        raise _failed("exported-program", exc) from None
    data = io.BytesIO()  # torch.export.save wants a file name or a buffer, not any writer
    torch.export.save(program, data)
    return lambda handle: handle.write(data.getvalue())  # type: ignore[func-returns-value]


def _onnx(model: nn.Module, example: torch.Tensor) -> Callable[[BinaryIO], None]:
    import torch

    chatter = io.StringIO()  # the exporter prints its progress: stdout is for results only
    try:
        with contextlib.redirect_stdout(chatter):
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: _batch()},),
                input_names=["input"],
                verbose=False,
            )
            data = program.model_proto.SerializeToString()
    except Exception as exc:  # the exporter wraps its failures in several types
        raise _failed("onnx", exc) from None
    return lambda handle: handle.write(data)  # type: ignore[func-returns-value]


_WRITERS: dict[str, Callable[[Any, Any], Callable[[BinaryIO], None]]] = {
    "torchscript": _torchscript,
    "onnx": _onnx,
    "exported-program": _exported_program,
}
