"""The three loss terms of tracr-injection (DESIGN.md, "Method facts")."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def answer_ce(answer_logits: torch.Tensor, answer_tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens only: logits ``[n, vocab]`` at the positions that predict them."""
    return F.cross_entropy(answer_logits, answer_tokens)


def alignment_loss(mapped: list[torch.Tensor], compiled: list[torch.Tensor], reduction: str = "sum") -> torch.Tensor:
    """Σ (or mean) over layers of 1 − cosine(map(h_i), compiled_i), averaged over the positions given
    (``[positions, compiled width]`` per layer: the valid ones)."""
    terms = torch.stack([1 - F.cosine_similarity(prediction, target, dim=-1).mean()
                         for prediction, target in zip(mapped, compiled, strict=True)])
    return terms.sum() if reduction == "sum" else terms.mean()


def kl_to_original(logits: torch.Tensor, original_logits: torch.Tensor) -> torch.Tensor:
    """KL(original ‖ model), summed over positions and vocabulary, averaged over the batch (the paper's code)."""
    return F.kl_div(F.log_softmax(logits, dim=-1), F.softmax(original_logits, dim=-1), reduction="batchmean")
