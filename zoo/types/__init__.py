"""The built-in spec types, one module per family: each holds its spec models (pydantic), its
planners (arithmetic: output shape, parameters, buffers, multiply-adds) and how its modules are
made, registered once in :mod:`zoo.registry`. Importing this package registers them all.

Types are listed (in the docs, the JSON Schema) in the order they are registered.
"""

from zoo.types import (  # noqa: F401 (imported to register their types)
    activation,
    concat,
    container,
    conv,
    dense,
    norm,
    pool,
    residual,
)
