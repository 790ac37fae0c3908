"""The built-in spec types, one module per family: each holds its spec models (pydantic), its
planners (arithmetic: output shape, parameters, buffers, multiply-adds) and how its modules are
made, registered once in :mod:`zoo.registry`. Importing this package imports every module in it,
so a new family is one new file here; types are listed (docs, JSON Schema) in registration order.
"""

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_module.name}")
