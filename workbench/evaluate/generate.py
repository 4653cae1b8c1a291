"""Greedy decoding: batched with TransformerLens's key-value cache, or one prompt at a time."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import torch
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache


@torch.no_grad()
def greedy(model, prompts: Sequence[Sequence[int]], new_tokens: int, batch_size: int = 64) -> list[list[int]]:
    """The ``new_tokens`` greedy continuations of each prompt (token ids).

    Prompts of equal length are decoded together (no padding, so no attention mask is needed);
    a ``HookedTransformer`` reuses its key-value cache, any other model recomputes the prefix.
    """
    by_length = defaultdict(list)
    for index, prompt in enumerate(prompts):
        by_length[len(prompt)].append(index)
    device = next(model.parameters()).device
    out: list[list[int] | None] = [None] * len(prompts)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            ids = torch.tensor([list(prompts[i]) for i in chunk], dtype=torch.long, device=device)
            generated = _greedy_batch(model, ids, new_tokens)
            for row, i in enumerate(chunk):
                out[i] = generated[row].tolist()
    return out


def _greedy_batch(model, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    if isinstance(model, HookedTransformer):
        cache = TransformerLensKeyValueCache.init_cache(model.cfg, ids.device, ids.shape[0])
        # Equal-length rows: every position is real, so the masks are all ones.
        logits = model(ids, past_kv_cache=cache, attention_mask=torch.ones_like(ids))
        generated = [logits[:, -1].argmax(-1)]
        for _ in range(new_tokens - 1):
            step = generated[-1][:, None]
            logits = model(step, past_kv_cache=cache, attention_mask=torch.ones_like(step))
            generated.append(logits[:, -1].argmax(-1))
        return torch.stack(generated, dim=1)
    sequence = ids
    for _ in range(new_tokens):
        next_token = model(sequence)[:, -1].argmax(-1)
        sequence = torch.cat([sequence, next_token[:, None]], dim=1)
    return sequence[:, ids.shape[1]:]


@torch.no_grad()
def greedy_one_at_a_time(model, prompts: Sequence[Sequence[int]], new_tokens: int) -> list[list[int]]:
    """The baseline: each prompt alone, the whole prefix recomputed at every step."""
    device = next(model.parameters()).device
    out = []
    for prompt in prompts:
        sequence = torch.tensor([list(prompt)], dtype=torch.long, device=device)
        for _ in range(new_tokens):
            sequence = torch.cat([sequence, model(sequence)[:, -1:].argmax(-1)], dim=1)
        out.append(sequence[0, len(prompt):].tolist())
    return out
