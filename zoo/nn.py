"""The few modules zoo adds to ``torch.nn``: a residual sum, a channel concat, and the network.

Children are registered flat under their own names (``conv1``, ``bn1``, ``downsample``), so a
compiled ResNet has exactly torchvision's ``state_dict`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _register(parent: nn.Module, named: Sequence[tuple[str, nn.Module]]) -> tuple[str, ...]:
    for name, module in named:
        parent.add_module(name, module)
    return tuple(name for name, _ in named)


class Residual(nn.Module):
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


class Concat(nn.Module):
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
        inputs = x.chunk(len(branches), dim=1) if split else (x,) * len(branches)
        outputs = []
        for steps, y in zip(branches, inputs, strict=True):
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


class ZooNet(nn.Sequential):
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


class DenseBlock(nn.Module):
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
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
