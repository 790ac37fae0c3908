"""The field types every spec model is made of, and the base models they share.

Numbers are strict: in lax mode pydantic reads ``true`` as 1 (``out: true`` would be one channel)
and ``"3"`` as 3. YAML gives real ints and floats; a float field still takes an int (``eps: 1``),
and is finite (an infinite eps or slope only shows up as NaNs in training). Every size is bounded
(:data:`zoo.shapes.MAX_DIM`), so an absurd spec is refused at validation, before anything is built.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictBool

from zoo.shapes import MAX_DIM

# YAML gives real booleans for true/false; strict, so a stray string ("on", "yes") is an error.
Bool = StrictBool
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]

MAX_REPEAT = 1000
"""The most copies a ``depth`` or ``times`` makes."""

Size = Annotated[Int, Field(gt=0, le=MAX_DIM)]
Channels = Size  # the same bound, named for what the field counts
Count = Annotated[Int, Field(gt=0, le=MAX_REPEAT)]
IntPair = Size | tuple[Size, Size]
Padding = Annotated[Int, Field(ge=0, le=MAX_DIM)]
NonNegPair = Padding | tuple[Padding, Padding]
# The public attributes of torch's nn.Sequential (so of every module zoo makes) and of zoo's own
# modules: a layer named like one of them would clash with it when its module is made (`forward`,
# `training`, `spec`). Written out, not read from torch, so that validating a spec imports no
# torch; tests/test_spec_semantics.py checks the list against torch's own. Names starting with an
# underscore are refused by the pattern (torch's and zoo's private attributes, dunders).
RESERVED_NAMES = frozenset(
    [
        "T_destination",
        "add_module",
        "append",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extend",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "input_shape",
        "insert",
        "ipu",
        "layer_scale",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "pop",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "reset_parameters",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "shortcut_from_pre",
        "spec",
        "spec_name",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    ]
)


def not_reserved(name: str) -> str:
    """``name``, unless a module attribute has it (each part of a dotted name is checked)."""
    for part in name.split("."):
        if part in RESERVED_NAMES:
            raise ValueError(
                f"{part!r} is the name of a torch module attribute (a layer of that name would "
                "replace it); choose another name"
            )
    return name


NAME_PATTERN = r"[A-Za-z0-9-][A-Za-z0-9_-]*"
"""A module name: what torch accepts (no dot), kept to letters, digits, ``_`` and ``-`` so that it
reads unquoted in a dotted path (``trunk_output.block1.block1-0``, ``features.0``); a leading
underscore is left to torch's and zoo's private attributes."""

ModuleName = Annotated[
    str,
    Field(
        pattern=f"^{NAME_PATTERN}$",
        description="Module name; becomes the attribute name and the state_dict key prefix.",
    ),
    AfterValidator(not_reserved),
]


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors, and a validated spec is frozen (with
    tuples for every list), so it cannot be changed afterwards (``out = 2**40``) past its bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedSpec(SpecModel):
    """A layer or block: an optional ``name`` becomes its module name."""

    name: ModuleName | None = Field(
        None,
        description="Module name (state_dict key). Unnamed items are named after their position.",
    )


class RepeatableSpec(NamedSpec):
    """A block that ``depth`` repeats into an ``nn.Sequential`` of copies."""

    depth: Count | None = Field(
        None,
        description=(
            "Repeat the block: an nn.Sequential of `depth` copies named 0..depth-1 (torchvision's "
            "layer1.0.conv1 layout). Left out: the bare block, with no Sequential around it."
        ),
    )
