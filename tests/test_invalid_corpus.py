"""A corpus of invalid specs, each reported through the CLI as one located line.

Every file in tests/invalid/ is a mistake people make; each must give exit code 1 (3 for a missing
file), no traceback, and a first problem at the expected line:col, path and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli import main

CORPUS = Path(__file__).parent / "invalid"

# (file, line, column, path, start of the message)
EXPECTED = [
    ("a_billion_channels", 4, 23, "stem.0.out", "Input should be less than or equal to 1048576"),
    ("bad_spec_name", 1, 7, "name", "String should match pattern '^[A-Za-z0-9_.-]+$'"),
    (
        "bool_key",
        5,
        25,
        "stages",
        "a key must be a name or a list index, not a boolean (true); ",
    ),
    ("boolean_channels", 4, 23, "stem.0.out", "Input should be a valid integer"),
    (
        "bottleneck_expansion",
        4,
        5,
        "stages.0",
        "out (10) must be divisible by expansion (4); or give width",
    ),
    ("complex_key", 5, 3, "", "a key must be a name or a list index, not a list"),
    (
        "concat_sizes_differ",
        7,
        9,
        "stages.0.branches.1",
        "branch branch2 gives 4x28x28 but branch1 gives 4x32x32; conc",
    ),
    (
        "conv_after_flatten",
        5,
        5,
        "stem.1",
        "conv needs a CxHxW feature map but gets 1-d features (3072);",
    ),
    ("deep_nesting", 3, 71, "", "nesting deeper than 64 levels"),
    ("depth_of_a_million", 4, 34, "stages.0.depth", "Input should be less than or equal to 1000"),
    ("dropout_above_one", 4, 24, "head.0.p", "Input should be less than or equal to 1"),
    (
        "duplicate_key",
        4,
        37,
        "stem.0.out",
        "duplicate key 'out' (first defined at line 4); remove one of",
    ),
    (
        "duplicate_module_name",
        5,
        24,
        "stem.1.name",
        "module name 'conv' is already used by stem.0; names must be ",
    ),
    (
        "extends_index_out_of_range",
        3,
        10,
        "stages.9",
        "index 9 is out of range: the base list has 4 items",
    ),
    (
        "extends_itself",
        2,
        10,
        "extends",
        "extends cycle: extends_itself.yaml -> extends_itself.yaml",
    ),
    (
        "extends_missing_base",
        2,
        10,
        "extends",
        "base spec not found: no such file or shipped spec: 'resnet10",
    ),
    (
        "extends_patch_by_name",
        3,
        10,
        "stages.layer1",
        "stages is a list in the base spec: patch it by index ({2: {d",
    ),
    ("fractional_depth", 4, 34, "stages.0.depth", "Input should be a valid integer"),
    (
        "groups_do_not_divide",
        4,
        5,
        "stem.0",
        "groups=2 must divide both the input channels (3) and out (8)",
    ),
    ("inception_missing_field", 4, 5, "stages.0.b1", "missing required field 'b1'"),
    ("infinite_eps", 5, 28, "stem.1.eps", "Input should be a finite number"),
    ("input_size_too_large", 2, 28, "input.size", "Input should be less than or equal to 1048576"),
    (
        "input_too_small",
        4,
        5,
        "stem.0",
        "conv (kernel 7x7, stride 1, padding 0) turns a 3x4x4 input i",
    ),
    ("invalid_utf8", 2, 43, "", "invalid UTF-8 (byte 0xe9); save the file as UTF-8"),
    ("kernel_not_a_number", 4, 34, "stem.0.kernel", "Input should be a valid integer"),
    (
        "layer_name_with_dot",
        4,
        24,
        "stem.0.name",
        "String should match pattern '^[A-Za-z0-9-][A-Za-z0-9_-]*$'",
    ),
    (
        "linear_without_flatten",
        6,
        5,
        "head.0",
        "linear needs flat features but gets a 8x30x30 feature map; a",
    ),
    (
        "merge_not_an_alias",
        5,
        10,
        "",
        "while constructing a mapping expected a mapping or list of ma",
    ),
    ("missing_input", 1, 1, "input", "missing required field 'input'"),
    (
        "missing_type",
        4,
        5,
        "stem.0",
        "missing 'type'; one of: adaptive_avgpool, adaptive_maxpool, ",
    ),
    ("negative_padding", 4, 46, "stem.0.padding", "Input should be greater than or equal to 0"),
    ("no_layers", 1, 1, "", "a spec needs at least one layer in stem, stages or head"),
    ("null_key", 4, 37, "stem.0", "a key must be a name or a list index, not null (~); quote "),
    (
        "padding_makes_a_huge_map",
        4,
        5,
        "stem.0",
        "conv gives a 8x2000030x2000030 output: its height (2,000,030)",
    ),
    (
        "pool_padding_too_large",
        4,
        5,
        "stem.0",
        "padding 2 is more than half the kernel (2); PyTorch refuses ",
    ),
    ("python_tag", 3, 7, "stem", "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not"),
    (
        "recursive_merge",
        8,
        5,
        "stem.0",
        "recursive merge: `<<` merges a mapping that contains it; mer",
    ),
    (
        "same_padding_with_stride",
        4,
        5,
        "stem.0",
        "padding 'same' needs stride 1 (PyTorch's rule); give the pad",
    ),
    ("sexagesimal_is_a_string", 4, 34, "stem.0.kernel", "Input should be a valid integer"),
    ("spec_is_a_list", 1, 1, "", "a spec must be a mapping (name, input, stem, stages, head), "),
    (
        "stride_at_a_batchnorm",
        6,
        16,
        "stages.0.stride_at",
        "'bn' is a batchnorm, which has no stride; stride_at must name",
    ),
    ("stride_at_unknown_layer", 6, 16, "stages.0.stride_at", "no body layer is named 'conv9'"),
    (
        "stride_on_body_layer",
        4,
        5,
        "stages.0.shortcut",
        "residual body gives 3x16x16 but the projected shortcut gives",
    ),
    (
        "stride_three_numbers",
        4,
        45,
        "stem.0.stride",
        "Tuple should have at most 2 items after validation, not 3",
    ),
    (
        "stride_without_conv",
        5,
        13,
        "stages.0.stride",
        "block has a stride but its body has no conv to take it; set ",
    ),
    (
        "unknown_activation",
        4,
        49,
        "stem.0.act",
        "Input should be 'relu', 'relu6', 'leaky_relu', 'gelu', 'silu",
    ),
    (
        "unknown_shortcut_kind",
        4,
        44,
        "stages.0.shortcut.kind",
        "Input should be 'conv_bn', 'conv', 'avgpool_conv_bn' or 'none'",
    ),
    ("unknown_top_field", 1, 1, "name", "missing required field 'name'"),
    ("unknown_type", 4, 12, "stages.0.type", "unknown type 'basik'; did you mean 'basic'?"),
    ("yaml_tab_indent", 4, 1, "", "while scanning for the next token found character '\\t' that "),
    (
        "yaml_unclosed_bracket",
        5,
        1,
        "",
        "while parsing a flow mapping expected ',' or '}', but got '<",
    ),
    ("yes_is_not_a_bool", 4, 43, "stem.0.bias", "Input should be a valid boolean"),
    ("zero_channels", 4, 23, "stem.0.out", "Input should be greater than 0"),
    ("zero_eps", 5, 28, "stem.1.eps", "Input should be greater than 0"),
    ("zero_input_size", 2, 28, "input.size", "Input should be greater than 0"),
]


def test_corpus_is_complete() -> None:
    assert len(EXPECTED) >= 30
    assert sorted(name for name, *_ in EXPECTED) == sorted(p.stem for p in CORPUS.glob("*.yaml"))


@pytest.mark.parametrize(
    ("name", "line", "column", "path", "message"), EXPECTED, ids=[e[0] for e in EXPECTED]
)
def test_invalid_spec_is_one_located_line(
    capsys, name: str, line: int, column: int, path: str, message: str
) -> None:
    spec = CORPUS / f"{name}.yaml"
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    location = f"{spec}:{line}:{column}: " + (f"{path}: " if path else "")
    assert first.startswith(location + message), first
