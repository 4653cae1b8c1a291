"""Stage ``evaluate``: task accuracy of a language model on task prompts.

Greedy exact match is computed teacher-forced: the greedy decoder reproduces the answer iff
the argmax at every answer position is the answer token (each step then conditions on the
same prefix), so one batched forward pass gives exactly the greedy exact-match accuracy.
"""

from __future__ import annotations

from typing import Sequence

import torch

from workbench.align import align
from workbench.tasks import Example, Task


@torch.no_grad()
def answer_correct(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 16,
                   max_seq_len: int | None = None) -> list[bool]:
    """Per example: does greedy decoding produce exactly the answer tokens?"""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    correct = []
    for start in range(0, len(examples), batch_size):
        alignments = [align(task, e, tokenizer, max_seq_len) for e in examples[start:start + batch_size]]
        width = max(len(a) for a in alignments)
        ids = torch.full((len(alignments), width), pad, dtype=torch.long)
        for row, a in enumerate(alignments):
            ids[row, : len(a)] = torch.tensor(a.model_ids)
        predicted = model(ids.to(device)).argmax(-1).cpu()
        for row, a in enumerate(alignments):
            positions = a.answer_token_positions
            correct.append(all(predicted[row, p - 1] == ids[row, p] for p in positions))
    return correct


def answer_accuracy(model, tokenizer, task: Task, examples: Sequence[Example], **kwargs) -> float:
    results = answer_correct(model, tokenizer, task, examples, **kwargs)
    return sum(results) / len(results)


__all__ = ["answer_accuracy", "answer_correct"]
