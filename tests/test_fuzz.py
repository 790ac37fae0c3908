"""Property: whatever is done to a shipped spec, the only exception that escapes is ZooError."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
import zoo.types  # registers the built-in types: known_types() is read below, at import
from tests.conftest import SPEC_NAMES
from zoo.errors import ZooError
from zoo.spec.load import known_types, resolve, validate
from zoo.spec.yaml_loader import load_yaml

# Small and mid-sized nets keep each example fast; every shipped layer type is among them.
FUZZED = [n for n in SPEC_NAMES if n not in ("resnet152", "resnet101", "preact_resnet101", "vgg16")]
BASES = {name: resolve(name).data for name in FUZZED}

scalars = st.one_of(
    st.integers(-3, 3),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(known_types()),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


# Numbers and booleans as YAML 1.1 wrote them, pasted into the text as they are: the loader reads
# them the YAML 1.2 way (010 is 10, 1:30 and yes are strings), and nothing else may escape.
YAML11_SCALARS = ["010", "0o10", "0x10", "1:30", "1_000", "0b11", "yes", "on", "true", ".inf",
                  "-.inf", ".nan", "+0x1", "-010", "2024-01-31", "~", "="]  # fmt: skip
RAW = "raw_scalar_{}"  # a plain scalar that safe_dump writes as it is, replaced after dumping


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    data = copy.deepcopy(BASES[draw(st.sampled_from(FUZZED))])
    raw: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        actions = ["replace", "delete", "rename", "duplicate", "insert", "yaml11"]
        action = draw(st.sampled_from(actions))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "yaml11" and isinstance(parent[key], int | float | bool):
            parent[key] = RAW.format(len(raw))
            raw.append(draw(st.sampled_from(YAML11_SCALARS)))
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif action == "insert" and isinstance(parent, list):
            layer = {"type": draw(st.sampled_from(known_types()))}
            layer.update(
                draw(
                    st.dictionaries(
                        st.sampled_from(["out", "kernel", "stride", "depth", "size"]), values
                    )
                )
            )
            parent.insert(key, layer)
    text = yaml.safe_dump(data, sort_keys=False)
    for i, scalar in reversed(list(enumerate(raw))):  # raw_scalar_10 before raw_scalar_1
        text = text.replace(RAW.format(i), scalar)
    if draw(st.booleans()):  # and sometimes damage the text itself
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=6)) + text[cut + draw(st.integers(0, 8)) :]
    return text


# derandomize: CI runs the same examples every time, so a red run is reproducible; explore more
# locally with `pytest tests/test_fuzz.py --hypothesis-seed=N`.
@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(mutated_specs())
def test_only_zoo_errors_escape(text: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", zoo.ZooWarning)
            spec = validate(load_yaml(text, "fuzz.yaml"))
            result = zoo.trace(spec)
    except ZooError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        for problem in exc.problems:  # every problem renders as one line
            assert "\n" not in problem.format()
            assert "\n" not in problem.path
    else:
        assert result.params >= 0


def test_odd_keys_are_quoted_on_one_line() -> None:
    text = 'name: t\ninput: {channels: 1, size: 8}\nhead: [{type: flatten}]\n"a\\nb c": 1\n'
    try:
        validate(load_yaml(text, "odd.yaml"))
    except ZooError as exc:
        line = exc.problems[0].format()
        assert line.startswith("odd.yaml:4:1: 'a\\nb c': unknown field; valid: description"), line
    else:
        raise AssertionError("an unknown key must be an error")
