"""Watching a run: held-out accuracy inside the training loop (strict greedy exact match from one
forward pass) and, for TI, the decoded-variable agreement of the same prompts. The training time of
its logged steps is ``workbench.curves.training_seconds``.

Greedy decoding reproduces the answer iff the argmax at every answer position is the answer
token (each step then conditions on the same prefix as teacher forcing does); it is *strict*
iff, after the answer, the argmax is also a token that cannot continue it ("31" is not 3).
"""

from __future__ import annotations

import torch

from workbench.align import align, task_batch
from workbench.align.agreement import batch_agreement
from workbench.compiled import CompiledModel
from workbench.tasks import Task


def continuation_ids(task: Task, tokenizer) -> torch.Tensor:
    """Vocabulary ids whose text (as greedy decoding reads it) would continue an answer of ``task``."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return torch.tensor([i for i, text in enumerate(texts) if text and task.continues(text)], dtype=torch.long)


@torch.no_grad()
def next_token_argmax(model, ids: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """The model's argmax at every position of ``ids``, on the CPU; in chunks of rows, since the full logits
    of a large vocabulary are ~10 MB per prompt."""
    device = next(model.parameters()).device
    return torch.cat([model(part.to(device)).argmax(-1).cpu() for part in ids.split(chunk)])


@torch.no_grad()
def teacher_forced_verdicts(model, ids: torch.Tensor, answer_mask: torch.Tensor, lengths: torch.Tensor,
                            continuing: torch.Tensor, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per right-padded row: (strict, lenient) exact match from one forward pass (see the module doc).

    ``answer_mask[b, t]`` marks the answer tokens, ``lengths`` the real tokens of each row.
    """
    predicted = next_token_argmax(model, ids, chunk)
    lenient = ((predicted[:, :-1] == ids[:, 1:]) | ~answer_mask[:, 1:]).all(dim=1)
    after = predicted[torch.arange(len(ids)), lengths - 1]  # greedy's token after the answer
    return lenient & ~torch.isin(after, continuing), lenient


class HeldOut:
    """A fixed batch of test-split prompts; ``accuracy(model)`` is their strict greedy exact match,
    ``agreement(...)`` their decoded agreement with the compiled program."""

    def __init__(self, task: Task, tokenizer, compiled: CompiledModel, n: int, seed: int):
        self.compiled = compiled
        examples = task.split("test", n, seed=seed)
        alignments = [align(task, e, tokenizer, compiled.max_seq_len) for e in examples]
        self.batch = task_batch(alignments, compiled, tokenizer)
        self.continuing = continuation_ids(task, tokenizer)

    def correct(self, model) -> torch.Tensor:
        strict, _ = teacher_forced_verdicts(model, self.batch["ids"], self.batch["answer_mask"],
                                            self.batch["mask"].sum(dim=1), self.continuing)
        return strict

    def accuracy(self, model) -> float:
        return float(self.correct(model).float().mean())

    def agreement(self, model, linear_map, mapping) -> float:
        """Decoded agreement averaged over every variable at every aligned layer (the presets' bar)."""
        table = batch_agreement(model, linear_map, self.compiled, self.batch["ids"], self.batch["compiled_ids"],
                                self.batch["mask"], mapping)
        return float(table.stack().mean())
