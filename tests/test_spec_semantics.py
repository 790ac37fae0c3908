"""What a validated spec means: numbers are numbers, every field takes effect, and a spec is fixed
once validated (issue 9)."""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import zoo
from tests.conftest import run_cli
from zoo import registry
from zoo.errors import ZooError
from zoo.spec import schema as s
from zoo.types.residual import ShortcutSpec

HEADER = "name: t\ninput: {channels: 3, size: 32}\n"


def _problems(write_spec, body: str, header: str = HEADER) -> list[zoo.Problem]:
    with pytest.raises(ZooError) as info:
        zoo.trace(write_spec(header + body))
    return info.value.problems


def _problem(write_spec, body: str, header: str = HEADER) -> zoo.Problem:
    return _problems(write_spec, body, header)[0]


def _reported(problems: list[zoo.Problem], path: str, message: str) -> bool:
    # A bad item of a pair is reported twice: once against the int member of `int | [int, int]`
    # (zoo.spec.load orders those), once at the item itself; the one at the item is checked.
    return any(p.path == path and message in p.message and p.line for p in problems)


# --------------------------------------------------------------------------- numbers are numbers
@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            "stem: [{type: conv, out: true, kernel: 3}]\n",
            "stem.0.out",
            "Input should be a valid integer",
        ),
        ("stem: [{type: conv, out: 4, kernel: [true, 3]}]\n", "stem.0.kernel.0", "valid integer"),
        ("stem: [{type: batchnorm, eps: true}]\n", "stem.0.eps", "Input should be a valid number"),
        ("stages: [{type: basic, out: 3, depth: true}]\n", "stages.0.depth", "valid integer"),
        (
            "stages: [{type: basic, out: 3, shortcut: {eps: false}}]\n",
            "stages.0.shortcut.eps",
            "valid number",
        ),
        (
            "stages: [{type: residual, stride_at: true, body: [{type: relu}]}]\n",
            "stages.0.stride_at",
            "Input should be a valid",  # a name (string) or an index (integer)
        ),
    ],
)
def test_a_boolean_is_not_a_number(write_spec, body: str, path: str, message: str) -> None:
    assert _reported(_problems(write_spec, body), path, message)


def test_a_boolean_input_size_is_refused(write_spec) -> None:
    problem = _problem(
        write_spec, "stem: [{type: relu}]\n", "name: t\ninput: {channels: 3, size: true}\n"
    )
    assert (problem.line, problem.column, problem.path) == (2, 28, "input.size")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("{type: batchnorm, eps: .inf}", "stem.0.eps"),
        ("{type: leaky_relu, negative_slope: -.inf}", "stem.0.negative_slope"),
        ("{type: dropout, p: .nan}", "stem.0.p"),
    ],
)
def test_floats_are_finite(write_spec, value: str, path: str) -> None:
    problem = _problem(write_spec, f"stem: [{value}]\n")
    assert problem.path == path and "finite number" in problem.message


def test_a_float_field_takes_an_int(write_spec) -> None:
    spec = zoo.load_spec(write_spec(HEADER + "stem: [{type: batchnorm, eps: 1, momentum: 0}]\n"))
    assert spec.stem[0].eps == 1.0 and isinstance(spec.stem[0].eps, float)


def _spec_models() -> list[type[BaseModel]]:
    return [*(info.model for info in registry.builtin()), s.InputSpec, ShortcutSpec, s.ModelSpec]


def _accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("model", _spec_models(), ids=lambda m: m.__name__)
def test_every_number_field_refuses_booleans_and_infinities(model: type[BaseModel]) -> None:
    # Field by field, so that a number field added later without the shared types is caught too.
    for name, info in model.model_fields.items():
        adapter = TypeAdapter(Annotated[info.annotation, info])
        if _accepts(adapter, 1):
            assert not _accepts(adapter, True), f"{model.__name__}.{name} takes true"
        if _accepts(adapter, [1, 1]):
            assert not _accepts(adapter, [True, 1]), f"{model.__name__}.{name} takes [true, 1]"
        if _accepts(adapter, 0.5):
            assert not _accepts(adapter, math.inf), f"{model.__name__}.{name} takes .inf"
            assert not _accepts(adapter, -math.inf), f"{model.__name__}.{name} takes -.inf"
            assert not _accepts(adapter, math.nan), f"{model.__name__}.{name} takes .nan"


# --------------------------------------------------------------------------- sizes are bounded
def test_a_spec_input_size_too_large_is_a_located_spec_error(capsys, write_spec) -> None:
    path = write_spec("name: t\ninput: {channels: 3, size: 2000000}\nstem: [{type: relu}]\n")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert err.startswith(f"{path}:2:28: input.size: Input should be less than or equal to 1048576")


def test_an_input_shape_too_large_on_the_command_line_stays_a_usage_error(capsys) -> None:
    code, _, err = run_cli(capsys, "build", "lenet", "--input", "1x1x2000000x28")
    assert code == 2 and "at most 1,048,576" in err


@pytest.mark.parametrize(
    "layer",
    [
        "{type: conv, out: 4, kernel: 3, padding: 2000000}",
        "{type: conv, out: 4, kernel: 3, dilation: 2000000}",
        "{type: conv, out: 4, kernel: 2000000}",
        "{type: conv, out: 4, kernel: 3, stride: [1, 2000000]}",
        "{type: adaptive_avgpool, size: 2000000}",
        "{type: maxpool, kernel: 2, padding: [0, 2000000]}",
    ],
)
def test_fields_that_feed_sizes_are_bounded(write_spec, layer: str) -> None:
    problems = _problems(write_spec, f"stem: [{layer}]\n")
    assert any(
        p.path.startswith("stem.0.") and "less than or equal to 1048576" in p.message
        for p in problems
    )


# --------------------------------------------------------------------------- the block stride
def _residual(stride_at: str | int, stride: int = 2) -> str:
    return (
        "stages:\n"
        "  - type: residual\n"
        f"    stride: {stride}\n"
        f"    stride_at: {stride_at}\n"
        "    body:\n"
        "      - {type: conv, name: conv, out: 8, kernel: 3, padding: 1}\n"
        "      - {type: batchnorm, name: bn}\n"
        "      - {type: sequential, name: seq, layers: [{type: relu}]}\n"
        "      - {type: maxpool, name: pool, kernel: 3, padding: 1}\n"
        "      - {type: relu, name: relu}\n"
    )


@pytest.mark.parametrize(
    ("stride_at", "kind"), [("bn", "batchnorm"), (2, "sequential"), ("relu", "relu")]
)
def test_stride_at_a_layer_without_a_stride_is_an_error(
    write_spec, stride_at: str | int, kind: str
) -> None:
    problem = _problem(write_spec, _residual(stride_at))
    assert (problem.line, problem.path) == (6, "stages.0.stride_at")
    assert f"a {kind}, which has no stride" in problem.message
    assert "of one of these types: conv, conv_bn_act, maxpool, avgpool" in problem.message


def test_stride_at_a_layer_without_a_stride_is_an_error_at_stride_one(write_spec) -> None:
    problem = _problem(write_spec, _residual("bn", stride=1))
    assert problem.path == "stages.0.stride_at" and "which has no stride" in problem.message


def test_the_block_stride_goes_to_a_pool(write_spec) -> None:
    # the pool's default stride (its kernel, 3) is replaced by the block's: 32 -> 16
    result = zoo.trace(write_spec(HEADER + _residual("pool")))
    assert result.output == (1, 8, 16, 16)


def test_a_layer_stride_replaced_by_the_block_stride_is_an_error(write_spec) -> None:
    body = _residual("conv").replace(
        "out: 8, kernel: 3, padding: 1}", "out: 8, kernel: 3, padding: 1, stride: 3}"
    )
    problem = _problem(write_spec, body)
    assert (problem.line, problem.path) == (8, "stages.0.body.0.stride")
    assert "conv has its own stride 3" in problem.message


def test_mismatch_advice_with_a_strided_block(write_spec) -> None:
    # the body pools as well as the strided conv: moving the stride to the block is no fix
    body = _residual("conv").replace(
        "kernel: 3, padding: 1}\n      - {type: relu", "kernel: 2}\n      - {type: relu"
    )
    problem = _problem(write_spec, body)
    assert (
        problem.path == "stages.0.shortcut"
        and "8x8x8 but the projected shortcut gives 8x16x16" in problem.message
    )
    assert "put the stride on the block" not in problem.message
    assert "only by the block stride" in problem.message


def test_mismatch_advice_with_a_stride_on_a_body_layer(write_spec) -> None:
    body = "stages:\n  - type: residual\n    body: [{type: conv, out: 8, kernel: 3, stride: 2, padding: 1}]\n"
    problem = _problem(write_spec, body)
    assert "put the stride on the block (`stride:`), not on a body layer" in problem.message


# --------------------------------------------------------------------------- messages
def test_too_small_names_the_dilation(write_spec) -> None:
    problem = _problem(write_spec, "stem: [{type: conv, out: 4, kernel: 3, dilation: 20}]\n")
    assert (
        "conv (kernel 3x3, stride 1, padding 0, dilation 20) turns a 3x32x32 input into"
        in problem.message
    )
    problem = _problem(write_spec, "stem: [{type: maxpool, kernel: 3, dilation: [20, 1]}]\n")
    assert "maxpool (kernel 3x3, stride 3, padding 0, dilation 20x1) turns" in problem.message


def test_too_small_leaves_out_a_dilation_of_one(write_spec) -> None:
    problem = _problem(write_spec, "stem: [{type: conv, out: 4, kernel: 33}]\n")
    assert "conv (kernel 33x33, stride 1, padding 0) turns" in problem.message


# --------------------------------------------------------------------------- a spec is fixed
def test_a_validated_spec_cannot_be_changed() -> None:
    spec = zoo.load_spec("resnet18")
    with pytest.raises(ValidationError, match="frozen"):
        spec.stages[0].out = 2**40
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"
    with pytest.raises(ValidationError, match="frozen"):
        spec.input.channels = 2**40
    with pytest.raises(AttributeError):
        spec.stages.append(spec.stages[0])  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        spec.head[0] = spec.head[1]  # type: ignore[index]
    block2 = zoo.load_spec("notebook_resnet96").stages[0]
    assert isinstance(block2.layers, tuple) and isinstance(block2.layers[1].layers[0].body, tuple)
    concat = zoo.load_spec("inception_mnist").stages[3]
    assert isinstance(concat.branches, tuple) and isinstance(concat.branches[1], tuple)


def test_a_fixed_spec_still_copies_dumps_and_plans() -> None:
    spec = zoo.load_spec("googlenet")
    assert spec._located is not None  # set after validation, on the frozen model
    bigger = spec.model_copy(update={"input": spec.input.model_copy(update={"size": 256})})
    assert zoo.trace(bigger).rows[0].output[2:] == (128, 128)
    data = spec.model_dump(mode="json")
    assert isinstance(data["stages"], list)
    assert zoo.ModelSpec.model_validate(data) == zoo.ModelSpec.model_validate(spec.model_dump())


def test_reserved_names_are_torch_module_attributes() -> None:
    """The list the spec layer keeps (it imports no torch) is every public attribute of the
    modules zoo makes, so no layer name can clash with one when the module is made."""
    from torch import nn

    from zoo.nn import Residual
    from zoo.spec.fields import RESERVED_NAMES

    model = zoo.build("lenet", device="meta")
    residual = Residual([("conv", nn.Identity())])
    public = {
        name
        for obj in (nn.Sequential(), model, residual)
        for name in (*dir(type(obj)), *vars(obj))  # methods, and attributes set in __init__
        if not name.startswith("_")
    }
    assert public <= RESERVED_NAMES


@pytest.mark.parametrize(
    "name", ["forward", "training", "spec", "input_shape", "_modules", "__class__"]
)
def test_a_layer_cannot_take_a_module_attribute_name(write_spec, name: str) -> None:
    spec = write_spec(
        f"name: t\ninput: {{channels: 3, size: 8}}\nstem: [{{type: relu, name: {name}}}]\n"
    )
    with pytest.raises(ZooError) as info:
        zoo.load_spec(spec)
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("stem.0.name", 3)


def test_a_shortcut_cannot_take_a_module_attribute_name(write_spec) -> None:
    spec = write_spec(
        "name: t\ninput: {channels: 3, size: 8}\n"
        "stages: [{type: basic, out: 4, shortcut: {name: downsample.forward}}]\n"
    )
    with pytest.raises(ZooError, match="'forward' is the name of a torch module attribute"):
        zoo.load_spec(spec)


def test_pool_padding_names_the_dimension_that_is_too_large(write_spec) -> None:
    spec = write_spec(
        "name: t\ninput: {channels: 3, size: 8}\n"
        "stem: [{type: maxpool, kernel: [3, 1], padding: [0, 1]}]\n"
    )
    with pytest.raises(ZooError, match=r"padding 1 is more than half the kernel \(1\)"):
        zoo.trace(spec)


def test_a_conv_shortcut_has_no_eps(write_spec) -> None:
    """A 'conv' projection has no BatchNorm, so its eps would be silently ignored."""
    spec = write_spec(
        "name: t\ninput: {channels: 3, size: 8}\n"
        "stages: [{type: basic, out: 4, shortcut: {kind: conv, eps: 0.001}}]\n"
    )
    with pytest.raises(ZooError) as info:
        zoo.load_spec(spec)
    [problem] = info.value.problems
    assert problem.path == "stages.0.shortcut" and "a 'conv' shortcut has none" in problem.message
    without = write_spec(spec.read_text().replace(", eps: 0.001", ""), "without.yaml")
    assert zoo.load_spec(without).stages[0].shortcut.kind == "conv"
