"""Stage ``decode``: read program variables out of a residual stream in the compiled basis.

For each variable, the value at a position is the argmax over the variable's labelled dims
(the paper's Figure 6); a numerical variable is its single dim's value. On a model's residual
the compiled basis is reached through the run's trained linear map.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from workbench.align import compiled_hook
from workbench.align.agreement import agreement, mapped_residuals, program_variables  # re-exported: they live in align
from workbench.compiled import CompiledModel


def decode_variables(compiled: CompiledModel, residual: torch.Tensor, tokens: Sequence[str],
                     variables: Sequence[str] | None = None, undefined_below: float | None = None) -> pd.DataFrame:
    """Table (variables × tokens) of decoded values from ``residual [positions, compiled width]``.

    With ``undefined_below``, a categorical variable whose best score is below it decodes to
    ``None`` (not computed there, as in a compiled residual before its layer).
    """
    rows = {}
    for variable in variables or program_variables(compiled):
        block = residual[:, compiled.dims_of(variable)]
        if compiled.is_numerical(variable):
            rows[variable] = [round(float(v), 4) for v in block[:, 0]]
            continue
        values = compiled.values_of(variable)
        best, index = block.max(dim=-1)
        rows[variable] = [None if undefined_below is not None and b < undefined_below else values[i]
                          for b, i in zip(best.tolist(), index.tolist())]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"{i}:{t}" for i, t in enumerate(tokens)])


@torch.no_grad()
def compiled_table(compiled: CompiledModel, tokens: Sequence, layer: int | None = None) -> pd.DataFrame:
    """Decoded variables of the compiled model itself after ``layer`` blocks (default: all)."""
    k = compiled.n_layers
    name = compiled_hook(k if layer is None else layer, k)
    residual = compiled.residuals(tokens)[name][1:]
    return decode_variables(compiled, residual, [str(t) for t in tokens], undefined_below=0.5)


__all__ = ["agreement", "compiled_table", "decode_variables", "mapped_residuals", "program_variables"]
