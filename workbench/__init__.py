"""Interpretability workbench for Tracr-Injection.

Stages (one sub-package each): ``tasks`` → ``compiled`` → ``align`` → ``inject`` →
``evaluate`` / ``decode`` / ``ablate`` / ``circuits``.
"""

from workbench.errors import WorkbenchError

__version__ = "0.1.0"
__all__ = ["WorkbenchError", "__version__"]
