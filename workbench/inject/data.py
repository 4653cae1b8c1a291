"""Deterministic batches: the batch of step s depends only on (seed, s), so a resumed run sees
exactly the data an uninterrupted one would."""

from __future__ import annotations

import random

import torch

from workbench.align import align, task_batch
from workbench.compiled import CompiledModel
from workbench.inject.text import load_text
from workbench.tasks import Task


class TaskBatches:
    """Training prompts: a pool of distinct train-split examples, taken in order and cycled."""

    def __init__(self, task: Task, tokenizer, compiled: CompiledModel, pool_size: int, seed: int):
        self.task, self.tokenizer, self.compiled = task, tokenizer, compiled
        self.examples = task.split("train", pool_size, seed=seed)

    def __call__(self, step: int, size: int, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        start = step * size
        rows = [self.examples[(start + i) % len(self.examples)] for i in range(rank, size, world)]
        alignments = [align(self.task, e, self.tokenizer, self.compiled.max_seq_len) for e in rows]
        return task_batch(alignments, self.compiled, self.tokenizer)


class TextBatches:
    """Windows of ``tokens`` tokens of plain text at offsets drawn from (seed, step)."""

    def __init__(self, source: str, tokenizer, tokens: int, seed: int):
        ids = tokenizer(load_text(source), add_special_tokens=False)["input_ids"]
        if len(ids) < 2 * tokens:
            raise ValueError(f"text source {source!r} has only {len(ids)} tokens")
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.tokens, self.seed = tokens, seed

    def __call__(self, step: int, size: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        rng = random.Random(f"text:{self.seed}:{step}")
        starts = [rng.randrange(len(self.ids) - self.tokens) for _ in range(size)]
        return torch.stack([self.ids[s: s + self.tokens] for s in starts[rank::world]])
