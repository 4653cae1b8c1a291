"""Stage ``decode``: read program variables out of a residual stream in the compiled basis.

For each variable, the value at a position is the argmax over the variable's labelled dims
(the paper's Figure 6); a numerical variable is its single dim's value.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from workbench.compiled import CompiledModel


def decode_variables(compiled: CompiledModel, residual: torch.Tensor, tokens: Sequence[str],
                     variables: Sequence[str] | None = None) -> pd.DataFrame:
    """Table (variables × tokens) of decoded values from ``residual [positions, compiled width]``."""
    names = variables or [v for v in compiled.variables if not v.startswith("_")]
    rows = {}
    for variable in names:
        dims = compiled.dims_of(variable)
        block = residual[:, dims]
        if compiled.is_numerical(variable):
            rows[variable] = [round(float(v), 4) for v in block[:, 0]]
        else:
            values = compiled.values_of(variable)
            rows[variable] = [values[i] for i in block.argmax(-1).tolist()]
    columns = [f"{i}:{t}" for i, t in enumerate(tokens)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)
