"""Plain ``nn.Module`` building blocks the compiler assembles; they know nothing of YAML."""

from zoo.blocks.modules import Concat, Residual, ZooNet

__all__ = ["Concat", "Residual", "ZooNet"]
