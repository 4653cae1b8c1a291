"""Stage ``inject``: hooks, losses, configuration, checkpoints and the trainer (TI and FT+KL)."""

from workbench.inject.config import InjectionConfig
from workbench.inject.hooks import layer_map, roll, subspace_projection

__all__ = ["InjectionConfig", "layer_map", "roll", "subspace_projection"]
