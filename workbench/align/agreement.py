"""Decoded-variable agreement: how far a model's mapped residual carries the program's variables.

The model's residual at each aligned block, through the run's linear map, is compared with the compiled
residual variable by variable (the decode stage reads the same variables out for display; injection
watches the agreement on its held-out batch while it trains, so it lives here, below both).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from workbench.align import align, batch, pad_id
from workbench.align.layers import compiled_hook, model_hook
from workbench.compiled import CompiledModel


def program_variables(compiled: CompiledModel) -> list[str]:
    """Variables of the program (tracr's auxiliary selector-width dims left out)."""
    return [v for v in compiled.variables if not v.endswith("_selector_width_attn_output")]


@torch.no_grad()
def mapped_residuals(model, linear_map, ids: torch.Tensor, mapping: Sequence[int]) -> list[torch.Tensor]:
    """The model's residual at each mapped block, through the trained map: ``[B, T, compiled width]`` each."""
    names = [model_hook(block) for block in mapping]
    _, cache = model.run_with_cache(ids, names_filter=names, stop_at_layer=max(mapping) + 1)  # later blocks unused
    return [linear_map(cache[name]) for name in names]


@torch.no_grad()
def agreement(model, linear_map, tokenizer, task, compiled: CompiledModel, examples, mapping: Sequence[int]
              ) -> pd.DataFrame:
    """Share of (prompt, position) where the decoded variable equals the compiled model's value,
    per variable (rows) and aligned layer (columns); blank where the variable is not yet computed.

    Categorical: the argmax over the variable's dims. Numerical: within half the true value (at least
    0.05), read after scaling the mapped residual to the compiled residual's norm at that position,
    since the cosine alignment loss fixes directions, not lengths."""
    alignments = [align(task, e, tokenizer, compiled.max_seq_len) for e in examples]
    return batch_agreement(model, linear_map, compiled, *batch(alignments, compiled, pad_id(tokenizer)), mapping)


@torch.no_grad()
def batch_agreement(model, linear_map, compiled: CompiledModel, ids: torch.Tensor, compiled_ids: torch.Tensor,
                    mask: torch.Tensor, mapping: Sequence[int]) -> pd.DataFrame:
    """``agreement`` of an aligned batch (``workbench.align.batch``'s model ids, compiled ids and mask)."""
    device = next(model.parameters()).device
    mapped = mapped_residuals(model, linear_map, ids.to(device), mapping)
    k = compiled.n_layers
    _, cache = compiled.model.run_with_cache(compiled_ids.to(device))
    variables = program_variables(compiled)
    result = pd.DataFrame(index=variables, columns=[f"layer {i} (block {m})" for i, m in enumerate(mapping)],
                          dtype=float)
    for i, column in enumerate(result.columns):
        truth_residual = cache[compiled_hook(i, k)][:, 1:]
        # The alignment loss is a cosine: it leaves each position's scale free. Numbers are read at the
        # compiled residual's scale (argmax, for categorical variables, needs no scale).
        scale = truth_residual.norm(dim=-1, keepdim=True) / mapped[i].norm(dim=-1, keepdim=True).clamp(min=1e-6)
        for variable in variables:
            dims = compiled.dims_of(variable)
            truth, guess = truth_residual[..., dims], mapped[i][..., dims]
            if compiled.is_numerical(variable):
                defined = mask.to(device)
                hits = (scale[..., 0] * guess[..., 0] - truth[..., 0]).abs() < 0.5 * truth[..., 0].abs().clamp(min=0.1)
            else:
                defined = mask.to(device) & (truth.max(-1).values > 0.5)
                hits = guess.argmax(-1) == truth.argmax(-1)
            if defined.any():
                result.loc[variable, column] = float(hits[defined].float().mean())
    return result
