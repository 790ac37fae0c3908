"""zoo: convolutional architectures from declarative YAML specs.

>>> import zoo
>>> spec = zoo.load_spec("resnet34")          # a shipped name or a path to a YAML file
>>> model = zoo.build(spec)                   # a plain nn.Module (device="meta" for shapes only)
>>> result = zoo.trace(spec, (3, 224, 224))   # rows of path, type, output shape, params, MACs

Bad input (a spec, a path, an argument) raises :class:`ZooError`; custom layer types are added
with :func:`register_layer` and removed with :func:`unregister_layer` (see :mod:`zoo.plugins`).
"""

from zoo.compiler import build
from zoo.errors import ExitCode, Problem, ZooError, ZooWarning
from zoo.plugins import LayerSpec, register_layer, unregister_layer
from zoo.spec import ModelSpec, load_spec
from zoo.trace import Row, Trace, trace

__all__ = [
    "ExitCode",
    "LayerSpec",
    "ModelSpec",
    "Problem",
    "Row",
    "Trace",
    "ZooError",
    "ZooWarning",
    "build",
    "load_spec",
    "register_layer",
    "trace",
    "unregister_layer",
]
__version__ = "0.1.0"
