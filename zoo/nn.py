"""The few modules zoo adds to ``torch.nn``: a residual sum, a channel concat, and the network.

Children are registered flat under their own names (``conv1``, ``bn1``, ``downsample``), so a
compiled ResNet has exactly torchvision's ``state_dict`` keys.

``Residual``, ``Concat`` and ``DenseBlock`` run children chosen by name at build time (a loop over
``self._modules``), which TorchScript cannot compile. ``torch.jit.script`` calls
``__prepare_scriptable__`` first: these modules (and ``ZooNet``, ``FeatureNet``) answer with
:func:`scriptable`, a copy in which each of them is a ``torch.fx.GraphModule`` of its own forward,
with the same children under the same names, so the scripted model has the same ``state_dict``
keys and shares its tensors. The eager forward is left as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def _register(parent: nn.Module, named: Sequence[tuple[str, nn.Module]]) -> tuple[str, ...]:
    for name, module in named:
        parent.add_module(name, module)
    return tuple(name for name, _ in named)


class _ChildrenAsLeaves(torch.fx.Tracer):
    """Traces one module's own forward: every child call stays one ``call_module`` node, so the
    graph's modules are the children themselves, under their names (``StochasticDepth`` and
    ``Dropout`` keep reading ``self.training`` when they run)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


def scriptable(module: nn.Module) -> nn.Module:
    """``module`` as TorchScript can compile it: a copy of its tree that shares every parameter
    and buffer, in which zoo's name-driven modules (:data:`_BY_NAME`) are ``torch.fx``
    GraphModules of their forward, under the same names. The module itself is left unchanged
    (``torch.jit.script`` puts what ``__prepare_scriptable__`` returns into the parent's own
    ``_modules``, so a network copies its whole tree once, at the top)."""
    clone = copy.copy(module)  # shares tensors; fresh dicts, so the original tree stays as it is
    clone.__dict__.update(
        _modules={name: scriptable(child) for name, child in module.named_children()},
        _parameters=dict(module._parameters),
        _buffers=dict(module._buffers),
    )
    if not isinstance(module, _BY_NAME):
        return clone
    graph = _ChildrenAsLeaves().trace(module)
    for node in graph.nodes:
        # the input's annotation is the string "torch.Tensor" here (postponed annotations),
        # which the generated code cannot name; TorchScript's default type is a Tensor
        node.type = None
    # the graph's modules and tensors are taken from the copy, by their dotted names
    traced = torch.fx.GraphModule(clone, graph, type(module).__name__)
    traced.training = module.training
    # fx makes a class per GraphModule; modules with the same code share one here, so that
    # TorchScript compiles the blocks of a stage once, as it does torchvision's Bottleneck
    key = (type(module).__name__, traced.code)
    if len(_TRACED_CLASSES) >= _MAX_TRACED_CLASSES:
        _TRACED_CLASSES.clear()
    traced.__class__ = _TRACED_CLASSES.setdefault(key, type(traced))
    return traced


_TRACED_CLASSES: dict[tuple[str, str], type] = {}
_MAX_TRACED_CLASSES = 4096  # distinct block codes; a bound for a process that builds many specs


class _Scriptable:
    """Mixin: ``torch.jit.script(module)`` compiles :func:`scriptable` of it."""

    def __prepare_scriptable__(self) -> nn.Module:
        return scriptable(self)  # type: ignore[arg-type]


class Residual(_Scriptable, nn.Module):
    """``post(body(pre(x)) + shortcut)``.

    The shortcut is ``x`` itself (``shortcut`` is ``None``), or a projection of ``x`` or, with
    ``shortcut_from_pre``, of ``pre(x)``. Covers ResNet basic/bottleneck blocks (``post=[relu]``)
    and pre-activation blocks (``pre=[bn, relu]``; He et al. 2016 keep the identity path clean and
    project the pre-activated input, as timm's ``PreActBasic`` does). Without ``adds`` there is no
    sum: an inverted residual that changes the shape is its body alone (torchvision's MBConv).

    ``layer_scale`` ``(channels, value)`` adds a learnable per-channel scale of the residual
    branch, a parameter of the block itself (torchvision's ``CNBlock.layer_scale``);
    ``stochastic_depth`` drops the residual branch per sample in training (only when there is a
    sum, as torchvision's MBConv and CNBlock).
    """

    def __init__(
        self,
        body: Sequence[tuple[str, nn.Module]],
        shortcut: tuple[str, nn.Module] | None = None,
        pre: Sequence[tuple[str, nn.Module]] = (),
        post: Sequence[tuple[str, nn.Module]] = (),
        shortcut_from_pre: bool = False,
        adds: bool = True,
        layer_scale: tuple[int, float] | None = None,
        stochastic_depth: tuple[str, nn.Module] | None = None,
    ):
        super().__init__()
        # Registration order is execution order, so printing the module reads like its forward.
        self._pre = _register(self, pre)
        self._body = _register(self, body)
        self._drop = _register(self, [stochastic_depth])[0] if stochastic_depth else None
        self._shortcut = _register(self, [shortcut])[0] if shortcut else None
        self._post = _register(self, post)
        self.shortcut_from_pre = shortcut_from_pre
        self._adds = adds
        self._layer_scale_init = None if layer_scale is None else layer_scale[1]
        self.layer_scale = (
            None if layer_scale is None else nn.Parameter(torch.empty(layer_scale[0], 1, 1))
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fill the layer scale with its initial value (the children reset themselves)."""
        if self.layer_scale is not None:
            with torch.no_grad():
                self.layer_scale.fill_(self._layer_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_input = x
        for name in self._pre:
            x = self._modules[name](x)
        projection_input = x if self.shortcut_from_pre else block_input
        for name in self._body:
            x = self._modules[name](x)
        if self._adds:
            if self.layer_scale is not None:
                x = self.layer_scale * x
            if self._drop is not None:
                x = self._modules[self._drop](x)
            shortcut = block_input
            if (
                self._shortcut is not None
            ):  # after the body, as registered and as torchvision runs it
                shortcut = self._modules[self._shortcut](projection_input)
            x = x + shortcut
        for name in self._post:
            x = self._modules[name](x)
        return x


class Concat(_Scriptable, nn.Module):
    """``post(cat([branch(x) for each branch], dim=1))`` with ``x = pre(input)``.

    Every layer is a child under its own name; ``layout`` (a :class:`zoo.types.concat.Join`, or
    any tuple ``(pre, branches, split, post)`` of child names) says which runs where. A branch is
    a tuple of steps, each a child's name or a nested join whose layers are children of this
    module too (Inception v3's ``branch3x3_2a`` / ``branch3x3_2b``); an empty branch passes its
    input on. With ``split`` each branch gets its own equal chunk of the channels
    (``x.chunk(n, dim=1)``, as ShuffleNetV2), else the whole input. Without a layout, each child
    is one branch.
    """

    def __init__(self, named: Sequence[tuple[str, nn.Module]], layout: tuple | None = None):
        super().__init__()
        names = _register(self, named)
        # private: a public attribute would clash with a layer of that name
        self._layout = layout or ((), tuple((name,) for name in names), False, ())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._join(self._layout, x)

    def _join(self, layout: tuple, x: torch.Tensor) -> torch.Tensor:
        pre, branches, split, post = layout
        for name in pre:
            x = self._modules[name](x)
        # indexed, not unpacked: a traced chunk (torch.fx, for TorchScript) has no length
        chunks = x.chunk(len(branches), dim=1) if split else None
        outputs = []
        for i, steps in enumerate(branches):
            y = x if chunks is None else chunks[i]
            for step in steps:
                y = self._modules[step](y) if isinstance(step, str) else self._join(step, y)
            outputs.append(y)
        x = torch.cat(outputs, dim=1)
        for name in post:
            x = self._modules[name](x)
        return x


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channels scaled by a gate computed from their means,
    ``x * gate(fc2(activation(fc1(mean(x)))))``. Children named as torchvision's
    ``SqueezeExcitation`` (``fc1``, ``fc2`` hold the weights, as in timm's ``SEModule``)."""

    def __init__(self, named: Sequence[tuple[str, nn.Module]]):
        super().__init__()
        _register(self, named)  # avgpool, fc1, fc2, activation, scale_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.avgpool(x)
        scale = self.fc2(self.activation(self.fc1(scale)))
        return self.scale_activation(scale) * x


class ZooNet(_Scriptable, nn.Sequential):
    """A compiled spec: its stem, stages and head children run in order.

    ``spec_name`` and ``input_shape`` (C, H, W) record what it was compiled for.
    """

    def __init__(
        self, named: Sequence[tuple[str, nn.Module]], spec_name: str, input_shape: tuple[int, ...]
    ):
        super().__init__()
        _register(self, named)
        self.spec_name = spec_name
        self.input_shape = input_shape

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={'x'.join(map(str, self.input_shape))}"


class DenseBlock(_Scriptable, nn.Module):
    """Dense connectivity (Huang et al. 2017; torchvision's ``_DenseBlock``): each layer runs on
    the concatenation of the block input and every earlier layer's output, and the block returns
    the concatenation of all of them. Layers are registered under their own names
    (``denselayer1``, ...), so the ``state_dict`` keys are torchvision's."""

    def __init__(self, layers: Sequence[tuple[str, nn.Module]]):
        super().__init__()
        self._layers = _register(self, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for name in self._layers:
            features.append(self._modules[name](torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class LayerNorm2d(nn.LayerNorm):
    """Layer normalization over the channels at every position of an NCHW map: torchvision's
    ``convnext.LayerNorm2d`` (the same ``weight``/``bias`` of shape (C,), the same computation:
    ``F.layer_norm`` on the channels-last view)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ChannelLinear(nn.Linear):
    """``nn.Linear`` on the channels at every position of an NCHW map, as torchvision's ConvNeXt
    block applies it between Permutes: its parameters are ``nn.Linear``'s (weight (out, in)), so
    those checkpoints load as they are, where a 1x1 conv would need (out, in, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear, not super().forward(): TorchScript compiles no super() call
        return nn.functional.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(
            0, 3, 1, 2
        )


class FeatureInfo:
    """What each feature map of a :class:`FeatureNet` is, as timm's ``FeatureInfo``: ``info`` is
    every feature point of the network (a dict of ``num_chs``, ``reduction``, ``module`` and
    ``index``), ``out_indices`` the ones the net returns. ``channels()``, ``reduction()`` and
    ``module_name()`` answer for ``out_indices`` (default), one index, or a list of them."""

    def __init__(self, info: Sequence[dict[str, Any]], out_indices: Sequence[int]):
        self.info = [dict(entry) for entry in info]
        self.out_indices = tuple(out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """``key`` of each returned map (``idx`` ``None``), of the point ``idx``, or of each of
        the points in ``idx``."""
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, int):
            return self.info[idx][key]
        return [self.info[i][key] for i in idx]

    def get_dicts(
        self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None
    ) -> Any:
        """The entries (only ``keys`` of them, when given) chosen as :meth:`get` chooses."""
        chosen = self.out_indices if idx is None else idx

        def entry(i: int) -> dict[str, Any]:
            found = self.info[i]
            return dict(found) if keys is None else {k: found[k] for k in keys}

        return entry(chosen) if isinstance(chosen, int) else [entry(i) for i in chosen]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of the feature maps."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """How many times smaller than the input each map is (its output stride)."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """The dotted name of the module each map is the output of."""
        return self.get("module", idx)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.info[idx]

    def __len__(self) -> int:
        return len(self.info)

    def __repr__(self) -> str:
        points = ", ".join(
            f"{e['module']} ({e['num_chs']}, /{e['reduction']})"
            for e in self.get_dicts()  # type: ignore[union-attr]
        )
        return f"FeatureInfo([{points}])"


class FeatureNet(_Scriptable, nn.Module):
    """A network's modules up to its last chosen feature point; ``forward`` returns the chosen
    feature maps, a list in network order (timm's ``features_only``).

    ``named`` are the network's top-level children, under their own names, so the
    ``state_dict`` keys are the network's (less what comes after the last point). ``steps``
    are the dotted names of the modules run one after the other (``layer1``, ``features.3``,
    ``trunk_output.block2``), ``taps`` those whose outputs are returned; ``feature_info``
    describes them.
    """

    def __init__(
        self,
        named: Sequence[tuple[str, nn.Module]],
        steps: Sequence[str],
        taps: Sequence[str],
        feature_info: FeatureInfo,
        spec_name: str,
        input_shape: tuple[int, ...],
    ):
        super().__init__()
        _register(self, named)
        self._steps = tuple(steps)
        self._taps = frozenset(taps)
        self.feature_info = feature_info
        self.spec_name = spec_name
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for step in self._steps:
            x = self.get_submodule(step)(x)
            if step in self._taps:
                features.append(x)
        return features

    def extra_repr(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return f"spec={self.spec_name!r}, input={shape}, features={self.feature_info!r}"


_BY_NAME = (Residual, Concat, DenseBlock, FeatureNet)
"""The modules whose forward picks children by name: traced by :func:`scriptable`."""
