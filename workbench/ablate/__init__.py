"""Stage ``ablate``: noise inside the injected answer subspace vs inside random subspaces (paper Fig. 3).

Noise of norm n is added at every position of the residual at the last aligned layer
(``blocks.{m_k}.hook_resid_pre``, where the whole program should already be encoded), either
inside the span of the trained map's rows for the final variable, or inside a random subspace
of the same dimension (several seeds). Task accuracy and the answer loss are measured.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from workbench.align import align, model_hook, task_batch

DEFAULT_NORMS = (0, 1, 2, 5, 10, 30)


def orthonormal_basis(vectors: torch.Tensor) -> torch.Tensor:
    """Columns spanning the same space as ``vectors`` (d × r), orthonormal."""
    q, _ = torch.linalg.qr(vectors)
    return q


def noise_hook(basis: torch.Tensor, norm: float, generator: torch.Generator):
    """Adds, at every position, a random vector of the given norm inside span(basis)."""

    def hook(activation, hook):
        coefficients = torch.randn(*activation.shape[:-1], basis.shape[1], generator=generator)
        direction = coefficients.to(activation) @ basis.T.to(activation)
        return activation + norm * F.normalize(direction, dim=-1)

    return hook


@torch.no_grad()
def _score(model, ids, answer_mask, hooks) -> tuple[float, float]:
    logits = model.run_with_hooks(ids, fwd_hooks=hooks)
    predicted, targets, mask = logits[:, :-1], ids[:, 1:], answer_mask[:, 1:]
    correct = ((predicted.argmax(-1) == targets) | ~mask).all(dim=1).float().mean()
    loss = F.cross_entropy(predicted[mask], targets[mask])
    return float(correct), float(loss)


def noise_ablation(model, linear_map, final_dims: Sequence[int], task, tokenizer, compiled, examples,
                   mapping: Sequence[int], norms: Sequence[float] = DEFAULT_NORMS, seeds: int = 3) -> pd.DataFrame:
    """Accuracy and answer loss per noise norm, for the answer subspace and ``seeds`` random subspaces."""
    alignments = [align(task, e, tokenizer, compiled.max_seq_len) for e in examples]
    batched = task_batch(alignments, compiled, tokenizer)
    device = next(model.parameters()).device
    ids, answer_mask = batched["ids"].to(device), batched["answer_mask"].to(device)
    name = model_hook(mapping[-1])
    answer_basis = orthonormal_basis(linear_map.weight[list(final_dims)].T.detach().float().cpu())
    rank = answer_basis.shape[1]
    rows = []
    for norm in norms:
        for seed in range(seeds):
            generator = torch.Generator().manual_seed(seed)
            random_basis = orthonormal_basis(torch.randn(answer_basis.shape[0], rank, generator=generator))
            for kind, basis in (("answer subspace", answer_basis), ("random subspace", random_basis)):
                noise = torch.Generator().manual_seed(1000 + seed)
                accuracy, loss = _score(model, ids, answer_mask, [(name, noise_hook(basis, norm, noise))])
                rows.append(dict(subspace=kind, norm=norm, seed=seed, dimension=rank, accuracy=accuracy,
                                 answer_loss=loss, layer=name, prompts=len(examples)))
    return pd.DataFrame(rows)
