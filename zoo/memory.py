"""Memory of a planned network from a liveness analysis: what is alive at each point of a forward
pass, and of a training step (forward, loss, backward, optimizer step), worked out from the
:class:`~zoo.plan.LayerPlan` tree with no tensor allocated and no torch imported.

The analysis replays PyTorch's eager execution symbolically. Tensors are buffers with reference
counts: the Python variables of each module's ``forward`` hold some (a residual block's input,
kept for its shortcut until the sum; a concat's finished branches, kept until the ``cat``; a dense
block's growing list of features), autograd's saved tensors hold others, and a buffer is freed
when the last reference goes. The peak is the largest sum of live buffers at any moment, the
short-lived workspace of an operation included (``_Memory.transient``).

What each layer allocates, keeps and saves is what PyTorch 2.x does on the CPU, checked op by op
against ``torch.profiler``'s memory events and ``torch.autograd.graph.saved_tensors_hooks``:

- a convolution saves its input. oneDNN, which runs most of them, works in blocked layouts
  whose channels are padded to a multiple of 16: while it runs it holds a reordered copy of the
  input and weights (inputs of 16 channels or more) or of the output, whichever is larger; an
  NHWC input (after a ConvNeXt layer norm) it reads as it is, reordering the weights twice; its
  backward holds the reordered weights, or the output gradient and the input, whichever is
  larger. ATen's own kernel runs the convolutions ``ConvParams::use_mkldnn`` leaves to it (1x1
  ones on one thread below batch 16; small inputs at batch 1), with an im2col buffer at most;
- a linear saves its input; on an NCHW map (a channel linear outside ConvNeXt) the permuted input
  is first copied, and the copy is saved;
- a BatchNorm in training saves its input (and two per-channel statistics); its backward needs
  one input-sized workspace;
- an in-place ReLU writes over its input and saves its result, allocating nothing; in-place ReLU6,
  SiLU, Hardswish and Hardsigmoid save a copy of their input (autograd needs it after the
  overwrite), so they save as much as the out-of-place ones;
- a max-pool saves its input and int64 indices (twice the output's bytes), and allocates the
  indices even without autograd; a dropout in training saves a float mask of its input's size;
- sums, concatenations and views save nothing, and their backward passes the gradient on
  without a copy.

The backward pass runs autograd's nodes in reverse order of creation (the order PyTorch's engine
takes them on one device): each node allocates its inputs' gradients and its parameters'
gradients (kept: they are the ``.grad`` the optimizer reads), then frees its saved tensors and its
output's gradient. Gradients reaching one tensor from several consumers (a residual block's input)
are summed in place.

Figures are float32 bytes. ``weight_bytes`` counts parameters and floating-point buffers. The
training step is the steady state of ``optimizer.zero_grad(); loss = cross_entropy(model(x), y);
loss.backward(); optimizer.step()``: weights and optimizer state are alive throughout, gradients
are freed by ``zero_grad`` before the forward. Optimizer state (:data:`OPTIMIZERS`): none for plain
SGD, one copy of the weights for SGD with momentum, two for Adam/AdamW (whose CPU step also holds
two temporaries the size of its largest parameter).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `zoo --help` and the bench options need none of them
    from zoo.plan import LayerPlan, NetworkPlan
    from zoo.shapes import Shape
    from zoo.spec import ModelSpec
    from zoo.spec.yaml_loader import SpecPath

FLOAT_BYTES = 4
INDEX_BYTES = 8  # max-pool indices are int64

OPTIMIZERS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}
"""Optimizer name -> copies of the weights it keeps as state (momentum buffers; Adam's two moments)."""

OPTIMIZER_NAMES = {"sgd": "plain SGD", "momentum": "SGD with momentum", "adam": "Adam"}
"""How to call each optimizer in a sentence."""

DEFAULT_OPTIMIZER = "momentum"
"""SGD with momentum, torchvision's training recipe for the convolutional nets it ships."""


@dataclass(frozen=True)
class MemoryPeaks:
    """The peaks zoo reports, estimated (:class:`MemoryEstimate`) or measured
    (:class:`zoo.bench.MeasuredMemory`): weights, and the activation peaks above them."""

    weight_bytes: int
    """Parameters and floating-point buffers (BatchNorm running statistics)."""
    inference_activation_bytes: int
    """Peak of live activations during an inference forward (``torch.no_grad``), the input
    included: add ``weight_bytes`` for the whole (:attr:`inference_peak_bytes`)."""
    train_activation_bytes: int
    """Peak, over a training step, of activations, gradients and workspace: everything but the
    weights and the optimizer state."""
    optimizer_bytes: int
    """Optimizer state: see :data:`OPTIMIZERS`."""

    @property
    def inference_peak_bytes(self) -> int:
        """Weights plus the activation peak of an inference forward."""
        return self.weight_bytes + self.inference_activation_bytes

    @property
    def train_peak_bytes(self) -> int:
        """Weights, optimizer state, and the peak of everything else over a training step."""
        return self.weight_bytes + self.optimizer_bytes + self.train_activation_bytes


@dataclass(frozen=True, kw_only=True)
class MemoryEstimate(MemoryPeaks):
    """Bytes a network needs at one input shape (batch included); see the module docstring."""

    input: tuple[int, ...]
    saved_bytes: int
    """Activations alive at the end of a training forward: what autograd saved for backward, the
    input and the output."""
    gradient_bytes: int
    """Parameter gradients (``.grad``), alive from the backward pass to the next ``zero_grad``."""
    optimizer: str


def estimate_memory(
    spec: ModelSpec,
    input_shape: Sequence[int] | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    plan: NetworkPlan | None = None,
    threads: int | None = None,
) -> MemoryEstimate:
    """Memory of ``spec`` at ``input_shape`` (N, C, H, W; default: the spec's input, batch 1),
    for inference and for a training step with ``optimizer`` (a key of :data:`OPTIMIZERS`).

    ``plan`` is ``spec`` already planned for that input (to plan it once for several figures).
    ``threads`` is torch's intra-op thread count the model runs with (``None``: several, torch's
    default on a multi-core machine): on one thread PyTorch runs 1x1 convolutions without
    oneDNN, and without its workspace."""
    from zoo.plan import plan_spec

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZERS)}")
    batch = input_shape[0] if input_shape is not None else 1
    if plan is None:
        plan = plan_spec(spec, tuple(input_shape[1:]) if input_shape is not None else None)
    specs = _Specs(spec)
    params = plan.root.params

    one_thread = threads == 1
    inference = _Run(batch, training=False, specs=specs, one_thread=one_thread)
    inference.network(plan)

    training = _Run(batch, training=True, specs=specs, one_thread=one_thread)
    training.network(plan)
    saved = training.memory.live
    training.backward()
    if optimizer == "adam":  # sqrt(v) and its quotient, one parameter at a time (CPU's loop)
        largest = max((leaf.params for leaf in _leaves(plan.root)), default=0)
        training.memory.transient(2 * largest * FLOAT_BYTES)

    return MemoryEstimate(
        input=(batch, *plan.input_shape),
        weight_bytes=(params + plan.root.buffers) * FLOAT_BYTES,
        inference_activation_bytes=inference.memory.peak,
        saved_bytes=saved,
        train_activation_bytes=training.memory.peak,
        gradient_bytes=params * FLOAT_BYTES,
        optimizer=optimizer,
        optimizer_bytes=OPTIMIZERS[optimizer] * params * FLOAT_BYTES,
    )


def _leaves(plan: LayerPlan) -> Iterator[LayerPlan]:
    if not plan.children:
        yield plan
    for child in plan.children:
        yield from _leaves(child)


# --------------------------------------------------------------------------- buffers
class _Buffer:
    """One allocation (a tensor's storage) and the references that keep it alive."""

    __slots__ = ("nbytes", "refs")

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.refs = 1


class _Memory:
    """The allocator: bytes alive now, and the most ever alive."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0

    def new(self, nbytes: int) -> _Buffer:
        """A new buffer, with one reference (its creator's)."""
        self.live += nbytes
        if self.live > self.peak:
            self.peak = self.live
        return _Buffer(nbytes)

    @staticmethod
    def hold(buffer: _Buffer) -> _Buffer:
        buffer.refs += 1
        return buffer

    def drop(self, buffer: _Buffer) -> None:
        buffer.refs -= 1
        if buffer.refs == 0:
            self.live -= buffer.nbytes

    def transient(self, nbytes: int) -> None:
        """Workspace that an operation allocates and frees before it returns."""
        if self.live + nbytes > self.peak:
            self.peak = self.live + nbytes


@dataclass(eq=False, slots=True)
class _Tensor:
    """A tensor as a Python variable and autograd see it: a buffer (shared by views and in-place
    results) and the autograd node that made it (``None``: no gradient flows to it)."""

    buffer: _Buffer
    shape: Shape  # per sample
    numel: int  # batch included
    node: _Node | None = None
    channels_last: bool = False
    """Its memory is laid out NHWC (a layer norm's or a channel linear's output, and what is
    computed from it): a channel linear then needs no copy, a convolution no input reorder."""

    @property
    def nbytes(self) -> int:
        return self.numel * FLOAT_BYTES


@dataclass(eq=False, slots=True)
class _Node:
    """An autograd node: its output, its differentiable inputs (each with whether its gradient is
    a new tensor, or the output's gradient passed on), what it saved, its parameters' gradient
    elements and the workspace of its backward."""

    output: _Tensor
    inputs: list[tuple[_Tensor, bool]]
    saved: list[_Buffer]
    params: int = 0
    workspace: int = 0


# --------------------------------------------------------------------------- the spec behind a plan
class _Specs:
    """The spec nodes that plans come from: a plan's ``source`` is its path in the (scaled) spec,
    and paths into a preset go through the generic block it expands to, as the planner does.
    Read for what a plan does not record: whether an activation or a dropout works in place,
    a dropout's rate, a residual block's ``shortcut_from``, a concat's empty branches."""

    def __init__(self, spec: ModelSpec):
        from zoo.spec.scaling import scaled

        self.root = scaled(spec)
        self.stochastic_depth = spec.stochastic_depth is not None
        self._expanded: dict[int, Any] = {}  # id(preset) -> expand()
        self._expanded_for: dict[SpecPath, Any] = {}  # block path -> expand_for(...) as planned
        self._for_args: dict[tuple[int, tuple[int, ...]], Any] = {}  # (id, args) -> expand_for
        # the copies of a `depth` block share their paths: each node is looked up once
        self._at: dict[SpecPath, Any] = {}
        self.convs: dict[tuple[Any, ...], _Conv] = {}  # a conv's geometry, by node and shapes

    def at(self, path: SpecPath) -> Any | None:
        """The spec node at ``path``, or ``None`` where it cannot be told."""
        if path not in self._at:
            self._at[path] = self._find(path)
        return self._at[path]

    def _find(self, path: SpecPath) -> Any | None:
        node: Any = self.root
        for depth, key in enumerate(path):
            if isinstance(node, tuple):
                if not isinstance(key, int) or key >= len(node):
                    return None
                node = node[key]
                continue
            # the class's own dict of fields: pydantic's `model_fields` property is slow
            fields = getattr(type(node), "__pydantic_fields__", {})
            if isinstance(key, str) and key in fields:
                node = getattr(node, key)
                continue
            node = self._generic(node, path[:depth])
            if node is None:
                return None
            if isinstance(key, int):  # a preset planned as a list of its layers (dense_transition)
                layers = getattr(node, "layers", ())
                node = layers[key] if key < len(layers) else None
            else:
                node = getattr(node, key, None)
            if node is None:
                return None
        return node

    def _generic(self, node: Any, path: SpecPath) -> Any | None:
        if path in self._expanded_for:
            return self._expanded_for[path]
        if hasattr(node, "expand"):
            key = id(node)
            if key not in self._expanded:
                self._expanded[key] = node.expand()
            return self._expanded[key]
        return None

    def block(self, path: SpecPath, in_shape: Shape, out_shape: Shape) -> Any | None:
        """The generic spec of the block planned at ``path`` from ``in_shape`` to ``out_shape``:
        a preset whose layout depends on its input (``expand_for``) is expanded for it, and
        remembered, so that the paths of its layers resolve."""
        node = self.at(path)
        if node is None:
            return None
        expand_for = getattr(node, "expand_for", None)
        if expand_for is None:
            return self._generic(node, path) if hasattr(node, "expand") else node
        args: tuple[int, ...] = (in_shape[0],)
        if len(inspect.signature(expand_for).parameters) > 1:  # (channels, stride): ShuffleNetV2
            args += (max(1, in_shape[-1] // out_shape[-1]) if len(out_shape) == 3 else 1,)
        key = (id(node), args)
        if key not in self._for_args:
            try:
                self._for_args[key] = expand_for(*args)
            except (TypeError, ValueError):
                self._for_args[key] = None
        generic = self._for_args[key]
        if self._expanded_for.get(path) is not generic:  # another copy: its layers differ
            self._expanded_for[path] = generic
            self._at = {p: n for p, n in self._at.items() if p[: len(path)] != path or p == path}
        return generic


# --------------------------------------------------------------------------- the replay
_RESIDUAL_ROLES = ("pre", "body", "post")
_DENSE = ("dense_block", "densely_connected")


class _Run:
    """One symbolic execution: an inference forward, or a training forward then backward."""

    def __init__(self, batch: int, training: bool, specs: _Specs, one_thread: bool = False):
        from zoo import registry

        self.registry = registry
        self.one_thread = one_thread
        self.batch = batch
        self.training = training
        self.specs = specs
        self.memory = _Memory()
        self.nodes: list[_Node] = []
        self.loss: _Tensor | None = None  # training: the loss, where the backward starts
        self.param_grads: list[_Buffer] = []
        # inference: a block's peak above the live bytes it starts from, whether its output is
        # its input (in place), and its output's layout; by what makes blocks alike
        self.blocks: dict[tuple[Any, ...], tuple[int, bool, bool]] = {}

    # ----------------------------------------------------------------- tensors and ops
    def numel(self, shape: Shape) -> int:
        return self.batch * math.prod(shape)

    def new(self, shape: Shape) -> _Tensor:
        numel = self.numel(shape)
        return _Tensor(self.memory.new(numel * FLOAT_BYTES), shape, numel)

    def same(self, x: _Tensor) -> _Tensor:
        """``x`` itself, one more reference to it (``nn.Identity``, a dropout in eval)."""
        self.memory.hold(x.buffer)
        return x

    def alias(self, x: _Tensor, shape: Shape | None = None) -> _Tensor:
        """A view of ``x`` or an in-place result on it: the same buffer, a new tensor."""
        shape = x.shape if shape is None else shape
        return _Tensor(self.memory.hold(x.buffer), shape, self.numel(shape))

    def record(
        self,
        out: _Tensor,
        inputs: Sequence[tuple[_Tensor, bool]],
        saved: Sequence[_Buffer] = (),
        params: int = 0,
        workspace: int = 0,
    ) -> _Tensor:
        """Make ``out`` the output of an autograd node (training only, and only when a gradient
        flows: some input needs one, or the op has parameters); the node takes a reference to
        each saved buffer."""
        if not self.training:
            return out
        differentiable = [(t, fresh) for t, fresh in inputs if t.node is not None]
        if not (differentiable or params):
            return out
        out.node = _Node(
            out, differentiable, [self.memory.hold(b) for b in saved], params, workspace
        )
        self.nodes.append(out.node)
        return out

    # ----------------------------------------------------------------- the network
    def network(self, plan: NetworkPlan) -> None:
        """The forward pass of the whole net on a fresh input (held by the caller throughout);
        in training, the loss after it."""
        x = self.new(plan.input_shape)
        if self.training:  # the int64 class targets: one per sample, or per position of a map
            self.memory.new(self.batch * math.prod(plan.root.out[1:]) * INDEX_BYTES)
        out = self.run(plan.root, x, ())
        if self.training:
            # cross_entropy: log_softmax saves its output; the logits are freed after the loss
            log_probs = self.memory.new(out.nbytes)
            loss = self.record(
                _Tensor(self.memory.new(FLOAT_BYTES), (), 1),
                [(out, True)],
                [log_probs],
                workspace=out.nbytes,
            )
            self.memory.drop(log_probs)
            self.memory.drop(out.buffer)
            self.loss = loss
        else:
            self.memory.drop(out.buffer)

    def run(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """Run ``plan`` on ``x`` (which the caller holds meanwhile); the result comes with one
        reference, the caller's. ``path`` is where the enclosing plan comes from in the spec."""
        path = plan.source or path
        if not plan.children:
            return self.leaf(plan, x, path)
        if self.training:
            return self.block(plan, x, path)
        # Without autograd a block's effect is its own: it frees what it makes but its output,
        # and never frees its input. The copies of a `depth` block after the first are alike
        # (same spec paths, shapes and sizes), so one replay serves them all.
        key = (path, plan.tag, plan.type, plan.out, plan.params, x.shape, x.channels_last)
        seen = self.blocks.get(key)
        memory = self.memory
        if seen is not None:
            local_peak, aliases, channels_last = seen
            memory.transient(local_peak)
            if aliases:
                return self.alias(x, plan.out)
            out = self.new(plan.out)
            out.channels_last = channels_last
            return out
        live, peak = memory.live, memory.peak
        memory.peak = live
        out = self.block(plan, x, path)
        local_peak = memory.peak - live
        memory.peak = max(peak, memory.peak)
        self.blocks[key] = (local_peak, out.buffer is x.buffer, out.channels_last)
        return out

    def block(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """A plan with children: how its module runs them."""
        if plan.tag == "squeeze_excite":
            return self.squeeze_excite(plan, x, path)
        if plan.tag in _DENSE and all(c.type == "dense_layer" for c in plan.children):
            return self.dense(plan, x, path)
        info = self.registry.get(plan.tag)
        if info is not None and info.combinator:
            roles = {_role(child, path) for child in plan.children}
            if "body" in roles:
                return self.residual(plan, x, path)
            if "branches" in roles:
                return self.concat(plan, x, path)
        return self.sequence(plan.children, x, path)

    def sequence(self, plans: Sequence[LayerPlan], x: _Tensor, path: SpecPath) -> _Tensor:
        """``nn.Sequential``: each output replaces the previous one, which is then freed unless
        something else holds it (the caller holds ``x``)."""
        current = self.same(x)
        for plan in plans:
            out = self.run(plan, current, path)
            self.memory.drop(current.buffer)
            current = out
        return current

    def residual(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """``zoo.nn.Residual.forward``: its locals hold the block input and the projection's
        input until it returns, the shortcut from the sum on."""
        parts: dict[str, list[LayerPlan]] = {role: [] for role in _RESIDUAL_ROLES}
        shortcut: LayerPlan | None = None
        drop: LayerPlan | None = None
        for child in plan.children:
            role = _role(child, path)
            if role in parts:
                parts[role].append(child)
            elif child.tag == "stochastic_depth":
                drop = child
            else:
                shortcut = child
        body_out = parts["body"][-1].out
        block = self.specs.block(path, x.shape, body_out)
        layer_scale = plan.params - sum(c.params for c in plan.children)

        held = [self.same(x)]  # block_input
        h = self.sequence(parts["pre"], x, path)
        from_pre = getattr(block, "shortcut_from", "input") == "pre"
        held.append(self.same(h if from_pre else x))  # projection_input
        y = self.sequence(parts["body"], h, path)
        self.memory.drop(h.buffer)
        adds = shortcut is not None or body_out == x.shape
        if adds:
            if layer_scale:  # self.layer_scale * x: saves x for the scale's gradient
                scaled_ = self.record(
                    self.new(y.shape), [(y, True)], [y.buffer], layer_scale, y.nbytes
                )
                scaled_.channels_last = y.channels_last
                self.memory.drop(y.buffer)
                y = scaled_
            if drop is not None:
                dropped = self.run(drop, y, path)
                self.memory.drop(y.buffer)
                y = dropped
            # the identity carries the block input; a projection runs after the body
            short = self.same(x) if shortcut is None else self.run(shortcut, held[1], path)
            held.append(short)
            total = self.record(self.new(y.shape), [(y, False), (short, False)])
            total.channels_last = y.channels_last
            self.memory.drop(y.buffer)
            y = total
        out = self.sequence(parts["post"], y, path)
        self.memory.drop(y.buffer)
        for tensor in held:
            self.memory.drop(tensor.buffer)
        return out

    def concat(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """``zoo.nn.Concat``: the input (or its chunks) and every branch output stay referenced
        by its locals until it returns, after the ``cat`` and the post layers."""
        block = self.specs.block(path, x.shape, plan.out)
        return self.join(plan.children, block, x, path, path)

    def join(
        self, children: Sequence[LayerPlan], spec: Any, x: _Tensor, base: SpecPath, path: SpecPath
    ) -> _Tensor:
        """One join of a concat block (a flat concat nested in a branch is a join too): the
        children whose sources lie under ``base``."""
        pre: list[LayerPlan] = []
        post: list[LayerPlan] = []
        branches: dict[int, list[LayerPlan]] = {}
        for child in children:
            rel = child.source[len(base) :]
            if rel[:1] == ("pre",):
                pre.append(child)
            elif rel[:1] == ("post",):
                post.append(child)
            elif rel[:1] == ("branches",) and len(rel) > 1:
                branches.setdefault(rel[1], []).append(child)
        count = len(spec.branches) if spec is not None else max(branches, default=-1) + 1
        split = bool(getattr(spec, "split", False))
        h = self.sequence(pre, x, path)
        if split:
            chunk = (h.shape[0] // max(count, 1), *h.shape[1:])
            inputs = [self.record(self.alias(h, chunk), [(h, True)]) for _ in range(count)]
        else:
            inputs = [self.same(h) for _ in range(count)]
        outputs = []
        for i, branch_input in enumerate(inputs):
            steps = branches.get(i, [])
            outputs.append(self.branch(steps, (*base, "branches", i), branch_input, path))
        joined = self.record(self.new(_cat(outputs)), [(t, False) for t in outputs])
        joined.channels_last = outputs[0].channels_last
        out = self.sequence(post, joined, path)
        for tensor in (joined, *outputs, *inputs, h):
            self.memory.drop(tensor.buffer)
        return out

    def branch(
        self, steps: Sequence[LayerPlan], base: SpecPath, x: _Tensor, path: SpecPath
    ) -> _Tensor:
        """A branch's steps in order; those whose sources go on into a nested concat (a flat
        one, whose layers are the block's children) run as a join."""
        current = self.same(x)
        i = 0
        while i < len(steps):
            rel = steps[i].source[len(base) :]
            nested = _nested_join(rel)
            if nested is None:
                out = self.run(steps[i], current, path)
                i += 1
            else:
                inner = (*base, *nested)
                group = [s for s in steps[i:] if s.source[: len(inner)] == inner]
                out = self.join(group, self.specs.at(inner), current, inner, path)
                i += len(group)
            self.memory.drop(current.buffer)
            current = out
        return current

    def dense(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """``zoo.nn.DenseBlock``: every layer runs on a new concatenation of the features so far
        (the list holds them all), and the block returns the concatenation of all of them."""
        features = [self.same(x)]
        for layer in plan.children:
            gathered = self.record(self.new(_cat(features)), [(t, False) for t in features])
            features.append(self.run(layer, gathered, path))
            self.memory.drop(gathered.buffer)
        out = self.record(self.new(_cat(features)), [(t, False) for t in features])
        for tensor in features:
            self.memory.drop(tensor.buffer)
        return out

    def squeeze_excite(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """``zoo.nn.SqueezeExcite``: ``gate(fc2(act(fc1(pool(x))))) * x``; the product saves
        ``x`` and the gate."""
        children = {child.name: child for child in plan.children}
        order = ("avgpool", "fc1", "activation", "fc2", "scale_activation")
        gate = self.sequence([children[name] for name in order], x, path)
        out = self.record(
            _Tensor(self.memory.new(x.nbytes), x.shape, x.numel, channels_last=x.channels_last),
            [(gate, True), (x, True)],
            [gate.buffer, x.buffer],
            workspace=x.nbytes,  # grad * x, before it is summed to the gate's shape
        )
        self.memory.drop(gate.buffer)
        return out

    # ----------------------------------------------------------------- layers
    def leaf(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        """One layer on ``x``: see the module docstring for what each allocates and saves."""
        tag = plan.tag or plan.type
        out = self.layer(tag, plan, x, path)
        if out is not x and len(plan.out) == 3:  # PyTorch keeps the input's layout
            out.channels_last = tag in ("layernorm", "channel_linear") or x.channels_last
        return out

    def layer(self, tag: str, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        memory = self.memory
        if tag == "conv":
            out = self.new(plan.out)
            weights = plan.params * FLOAT_BYTES
            conv = self.conv_geometry(plan, x, path)
            if not self.uses_onednn(conv, x):  # ATen's own kernel: an im2col buffer at most
                columns = x.shape[0] * math.prod(conv.kernel) * math.prod(plan.out[1:])
                workspace = self.batch * columns * FLOAT_BYTES if conv.columns else 0
                memory.transient(workspace)
            else:
                # oneDNN's blocked layouts pad the channels to a multiple of 16
                cin, cout = x.shape[0], plan.out[0]
                blocked_out = out.nbytes * _padded(cout) // cout
                blocked_in = x.nbytes * _padded(cin) // cin
                both = _padded(cout) * (_padded(cin) if conv.groups == 1 else cin)
                blocked_weights = weights * both // max(cout * cin, 1)
                if x.channels_last:  # NHWC it takes as it is, but reorders the weights twice
                    memory.transient(2 * weights)
                elif cin >= 16:  # a reordered input and weights, or a blocked output
                    memory.transient(max(blocked_in + blocked_weights, blocked_out))
                else:  # a first layer's few channels it reads as they are
                    memory.transient(blocked_out)
                # its backward: reordered weights for the input's gradient, then the output's
                # gradient and the input reordered for the weights'; a first layer, whose input
                # needs no gradient, reads its input as it is
                if x.node is None:
                    workspace = blocked_out + blocked_weights
                else:
                    workspace = max(blocked_weights, blocked_out + blocked_in)
            return self.record(out, [(x, True)], [x.buffer], plan.params, workspace)
        if tag in ("linear", "channel_linear"):
            out = self.new(plan.out)
            if tag == "linear" or x.channels_last:
                return self.record(out, [(x, True)], [x.buffer], plan.params)
            # on an NCHW map, the permuted input is copied to a matrix first; autograd saves it
            copy = memory.new(x.nbytes)
            out = self.record(out, [(x, True)], [copy], plan.params)
            memory.drop(copy)
            return out
        if tag == "batchnorm":
            out = self.new(plan.out)
            channels = plan.out[0]
            stats = memory.new(2 * channels * FLOAT_BYTES) if self.training else None
            saved = [x.buffer] + ([stats] if stats else [])
            out = self.record(out, [(x, True)], saved, plan.params, workspace=x.nbytes)
            if stats:
                memory.drop(stats)
            return out
        if tag == "layernorm":
            out = self.new(plan.out)
            positions = x.numel // max(plan.out[0], 1)
            stats = memory.new(2 * positions * FLOAT_BYTES) if self.training else None
            saved = [x.buffer] + ([stats] if stats else [])
            out = self.record(out, [(x, True)], saved, plan.params, workspace=x.nbytes)
            if stats:
                memory.drop(stats)
            return out
        if tag in _ACTIVATIONS:
            return self.activation(tag, plan, x, path)
        if tag in ("maxpool", "adaptive_maxpool"):
            out = self.new(plan.out)
            indices = memory.new(self.numel(plan.out) * INDEX_BYTES)
            out = self.record(out, [(x, True)], [x.buffer, indices])
            memory.drop(indices)
            return out
        if tag in ("avgpool", "adaptive_avgpool"):
            out = self.new(plan.out)
            # an adaptive pool to 1x1 is a mean, which saves nothing
            global_mean = tag == "adaptive_avgpool" and math.prod(plan.out[1:]) == 1
            return self.record(out, [(x, True)], [] if global_mean else [x.buffer])
        if tag == "flatten":
            return self.record(self.alias(x, plan.out), [(x, False)])
        if tag == "identity":
            return self.same(x)
        if tag == "dropout":
            node = self.specs.at(path)
            p = getattr(node, "p", 0.5)
            if not self.training or p == 0:
                return self.same(x)
            mask = memory.new(x.nbytes)  # float noise, saved for the backward
            inplace = bool(getattr(node, "inplace", False))
            out = self.alias(x) if inplace else self.new(x.shape)
            out = self.record(out, [(x, True)], [mask])
            memory.drop(mask)
            return out
        if tag == "stochastic_depth":
            if not self.training or not self.specs.stochastic_depth:
                return self.same(x)
            noise = memory.new(self.batch * FLOAT_BYTES)  # one draw per sample
            out = self.record(self.new(x.shape), [(x, True)], [noise])
            memory.drop(noise)
            return out
        if tag == "channel_shuffle":
            return self.record(self.new(plan.out), [(x, True)])
        # any other layer (a plugin's): a new output; in training it saves its input
        return self.record(self.new(plan.out), [(x, True)], [x.buffer], plan.params)

    def conv_geometry(self, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Conv:
        """The kernel, groups and stride of a conv layer: from its spec (or its conv_bn_act's),
        its stride from the shapes (a residual block may have put its stride there); a conv a
        planner adds (a projection shortcut, a squeeze-excitation's) from its parameters."""
        node = self.specs.at(plan.source or path)
        key = (id(node), x.shape, plan.out, plan.params)
        if key not in self.specs.convs:
            self.specs.convs[key] = self._conv_geometry(plan, x, node)
        return self.specs.convs[key]

    @staticmethod
    def _conv_geometry(plan: LayerPlan, x: _Tensor, node: Any) -> _Conv:
        from zoo.shapes import conv_out, pair

        cin, cout = x.shape[0], plan.out[0]
        spatial = len(x.shape) == 3 and len(plan.out) == 3
        if getattr(node, "type", None) in ("conv", "conv_bn_act") and spatial:
            kernel, dilation = pair(node.kernel), pair(node.dilation)
            groups = cin if node.groups == "depthwise" else node.groups
            if node.padding is None:  # conv_bn_act's default
                padding = tuple((k - 1) // 2 * d for k, d in zip(kernel, dilation, strict=True))
            elif node.padding == "same":
                padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
            else:
                padding = pair(node.padding)
            unstrided = tuple(
                conv_out(size, k, 1, p, d)
                for size, k, p, d in zip(x.shape[1:], kernel, padding, dilation, strict=True)
            )
            strided = unstrided != tuple(plan.out[1:])
            plain = kernel == (1, 1) and not strided and padding == (0, 0) and dilation == (1, 1)
            return _Conv(kernel, groups, strided or dilation != (1, 1), not plain)
        weights = plan.params if plan.params % max(cin * cout, 1) == 0 else plan.params - cout
        side = math.isqrt(max(1, weights // max(cin * cout, 1)))
        strided = spatial and tuple(x.shape[1:]) != tuple(plan.out[1:])
        return _Conv((side, side), 1, strided, side != 1 or strided)

    def uses_onednn(self, conv: _Conv, x: _Tensor) -> bool:
        """Whether ATen runs this conv with oneDNN (``ConvParams::use_mkldnn`` for float32 on
        the CPU); else with its own kernel, which needs no workspace but an im2col buffer."""
        batch = self.batch
        pointwise = conv.kernel == (1, 1)
        if not (conv.strided or batch >= 16 or not pointwise or not self.one_thread):
            return False  # 1x1 on one thread: ATen's matrix product is faster
        return (
            conv.groups > 1
            or (conv.kernel[0] > 3 and conv.kernel[1] > 3)
            or batch > 1
            or x.numel > 20480
        )

    def activation(self, tag: str, plan: LayerPlan, x: _Tensor, path: SpecPath) -> _Tensor:
        saves_output, copies_when_inplace, _ = _ACTIVATIONS[tag]
        inplace = self.inplace(plan, tag, path)
        if inplace:
            out = self.alias(x)
            if not self.training:
                return out
            if copies_when_inplace:  # its gradient needs the input the op overwrites
                copy = self.memory.new(x.nbytes)
                out = self.record(out, [(x, True)], [copy])
                self.memory.drop(copy)
                return out
            return self.record(out, [(x, True)], [out.buffer])
        out = self.new(x.shape)
        return self.record(out, [(x, True)], [out.buffer if saves_output else x.buffer])

    def inplace(self, plan: LayerPlan, tag: str, path: SpecPath) -> bool:
        """Whether an activation works in place: as its spec says; an activation a planner adds
        (conv_bn_act's, a preset's own layers) is in place where it can be, as torchvision's
        are, except a squeeze-excitation's two (torchvision's SqueezeExcitation)."""
        if not _ACTIVATIONS[tag][2]:
            return False
        if plan.source:
            node = self.specs.at(plan.source)
            if node is not None:
                return bool(getattr(node, "inplace", False))
        return plan.name not in ("activation", "scale_activation")

    # ----------------------------------------------------------------- backward
    def backward(self) -> None:
        """Autograd's pass over the nodes the forward recorded, latest first; parameter
        gradients stay (the optimizer reads them), everything else is freed as it goes."""
        memory = self.memory
        grads: dict[int, _Buffer] = {id(self.loss): memory.new(FLOAT_BYTES)}
        kept: list[_Buffer] = []
        for node in reversed(self.nodes):
            grad = grads.pop(id(node.output), None)
            if grad is None:  # its output did not reach the loss
                for buffer in node.saved:
                    memory.drop(buffer)
                continue
            for tensor, fresh in node.inputs:
                new = memory.new(tensor.nbytes) if fresh else memory.hold(grad)
                self._accumulate(grads, tensor, new)
            if node.params:
                kept.append(memory.new(node.params * FLOAT_BYTES))
            memory.transient(node.workspace)
            for buffer in node.saved:
                memory.drop(buffer)
            memory.drop(grad)
        self.param_grads = kept

    def _accumulate(self, grads: dict[int, _Buffer], tensor: _Tensor, new: _Buffer) -> None:
        """Add ``new`` to the gradient already waiting for ``tensor``: in place into whichever
        of the two is referenced only here (autograd's InputBuffer), else into a new buffer."""
        key = id(tensor)
        old = grads.get(key)
        if old is None:
            grads[key] = new
        elif old.refs == 1:
            self.memory.drop(new)
        elif new.refs == 1:
            self.memory.drop(old)
            grads[key] = new
        else:
            grads[key] = self.memory.new(tensor.nbytes)
            self.memory.drop(old)
            self.memory.drop(new)


def _padded(channels: int) -> int:
    """``channels`` rounded up to oneDNN's blocks of 16."""
    return -(-channels // 16) * 16


@dataclass(frozen=True)
class _Conv:
    """What decides how PyTorch runs a convolution on the CPU, and the workspace it needs."""

    kernel: tuple[int, int]
    groups: int
    strided: bool
    """Strided or dilated."""
    columns: bool
    """Needs an im2col buffer on ATen's own kernel (all but an unpadded 1x1 of stride 1)."""


# tag -> (saves its output rather than its input; in place, saves a copy of its input; has an
# in-place form): what each activation's autograd formula needs (derivatives.yaml)
_ACTIVATIONS: dict[str, tuple[bool, bool, bool]] = {
    "relu": (True, False, True),
    "relu6": (False, True, True),  # hardtanh_ saves a copy of self
    "leaky_relu": (False, False, True),  # leaky_relu_ saves its result
    "gelu": (False, False, False),
    "silu": (False, True, True),
    "hardswish": (False, True, True),
    "hardsigmoid": (False, True, True),
    "sigmoid": (True, False, False),
    "tanh": (True, False, False),
}


def _role(child: LayerPlan, block_path: SpecPath) -> str:
    """What a block's child is, from its spec path under the block's: ``pre``, ``body``,
    ``post``, ``branches``, ...; ``""`` for a part the planner adds (a projection shortcut)."""
    source = child.source
    if len(source) > len(block_path) and source[: len(block_path)] == block_path:
        role = source[len(block_path)]
        return role if isinstance(role, str) else ""
    return ""


def _nested_join(rel: SpecPath) -> SpecPath | None:
    """Within a branch, the path of the flat concat a step belongs to, when the step's source
    (relative to the branch) goes on into one (its pre, branches or post)."""
    for i, key in enumerate(rel):
        if key in ("pre", "branches", "post") and i > 0:
            return rel[:i]
        if key == "layers":  # a repeat's layers inside the branch: a plain step
            return None
    return None


def _cat(tensors: Sequence[_Tensor]) -> Shape:
    """The shape of the concatenation of ``tensors`` along the channels."""
    first = tensors[0].shape
    return (sum(t.shape[0] for t in tensors), *first[1:])


__all__ = [
    "DEFAULT_OPTIMIZER",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "MemoryEstimate",
    "estimate_memory",
]
