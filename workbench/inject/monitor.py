"""Held-out accuracy inside the training loop: strict greedy exact match from one forward pass.

Greedy decoding reproduces the answer iff the argmax at every answer position is the answer
token (each step then conditions on the same prefix as teacher forcing does); it is *strict*
iff, after the answer, the argmax is also a token that cannot continue it ("31" is not 3).
"""

from __future__ import annotations

import torch

from workbench.align import align, task_batch
from workbench.compiled import CompiledModel
from workbench.tasks import Task


def continuation_ids(task: Task, tokenizer) -> torch.Tensor:
    """Vocabulary ids whose text would continue an answer of ``task`` (``Task.continues``)."""
    texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    decoded = [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in texts]
    return torch.tensor([i for i, text in enumerate(decoded) if text and task.continues(text)], dtype=torch.long)


class HeldOut:
    """A fixed batch of test-split prompts; ``accuracy(model)`` is their strict greedy exact match."""

    def __init__(self, task: Task, tokenizer, compiled: CompiledModel, n: int, seed: int):
        examples = task.split("test", n, seed=seed)
        alignments = [align(task, e, tokenizer, compiled.max_seq_len) for e in examples]
        self.batch = task_batch(alignments, compiled, tokenizer)
        self.continuing = continuation_ids(task, tokenizer)

    @torch.no_grad()
    def correct(self, model, chunk: int = 16) -> torch.Tensor:
        device = next(model.parameters()).device
        ids = self.batch["ids"]
        # In chunks: full logits of a large vocabulary are ~10 MB per prompt.
        predicted = torch.cat([model(part.to(device)).argmax(-1).cpu() for part in ids.split(chunk)])
        answer = self.batch["answer_mask"][:, 1:]
        answer_ok = ((predicted[:, :-1] == ids[:, 1:]) | ~answer).all(dim=1)
        last = self.batch["mask"].sum(dim=1) - 1
        after = predicted[torch.arange(len(ids)), last]
        return answer_ok & ~torch.isin(after, self.continuing)

    def accuracy(self, model) -> float:
        return float(self.correct(model).float().mean())
