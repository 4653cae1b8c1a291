"""Task accuracy: greedy exact match of the answer tokens, for a model and for the compiled program."""

from __future__ import annotations

from typing import Sequence

import torch

from workbench.align import Alignment, align, compiled_answer, pad_id
from workbench.compiled import CompiledModel
from workbench.evaluate.generate import greedy
from workbench.tasks import Example, Task


def alignments_for(task: Task, examples: Sequence[Example], tokenizer, max_seq_len: int | None = None
                   ) -> list[Alignment | None]:
    """Alignments, ``None`` for prompts the alignment refuses (e.g. longer than the compiled context)."""
    from workbench.errors import WorkbenchError

    out = []
    for example in examples:
        try:
            out.append(align(task, example, tokenizer, max_seq_len or 10**9))
        except WorkbenchError:
            out.append(None)
    return out


def answer_correct(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 64) -> list[bool]:
    """Per example: does greedy decoding (batched, key-value cached) produce exactly the answer tokens?"""
    alignments = [align(task, e, tokenizer, 10**9) for e in examples]
    prompts = [a.model_ids[: a.n_prompt] for a in alignments]
    longest = max(len(a) - a.n_prompt for a in alignments)
    generated = greedy(model, prompts, longest, batch_size)
    return [g[: len(a) - a.n_prompt] == a.model_ids[a.n_prompt:] for g, a in zip(generated, alignments)]


@torch.no_grad()
def teacher_forced_correct(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 16
                           ) -> list[bool]:
    """The same verdict from one forward pass: greedy reproduces the answer iff every answer
    position's argmax is the answer token (each step then conditions on the same prefix)."""
    pad = pad_id(tokenizer)
    device = next(model.parameters()).device
    correct = []
    for start in range(0, len(examples), batch_size):
        alignments = [align(task, e, tokenizer, 10**9) for e in examples[start:start + batch_size]]
        width = max(len(a) for a in alignments)
        ids = torch.full((len(alignments), width), pad, dtype=torch.long)
        for row, a in enumerate(alignments):
            ids[row, : len(a)] = torch.tensor(a.model_ids)
        predicted = model(ids.to(device)).argmax(-1).cpu()
        for row, a in enumerate(alignments):
            correct.append(all(predicted[row, p - 1] == ids[row, p] for p in a.answer_token_positions))
    return correct


def answer_accuracy(model, tokenizer, task: Task, examples: Sequence[Example], **kwargs) -> float:
    results = teacher_forced_correct(model, tokenizer, task, examples, **kwargs)
    return sum(results) / len(results)


def compiled_correct(task: Task, compiled: CompiledModel, tokenizer, examples: Sequence[Example]) -> list[bool]:
    """Per example: does the compiled program, on the aligned compiled tokens, give the reference answer?
    (False where the prompt does not fit the compiled context.)"""
    out = []
    for example, alignment in zip(examples, alignments_for(task, examples, tokenizer, compiled.max_seq_len)):
        out.append(alignment is not None and compiled_answer(task, compiled, alignment) == example.label)
    return out
