"""Task accuracy: greedy exact match of the answer (strict: followed by a token that ends it; lenient:
the answer tokens first, whatever follows), for a model and for the compiled program."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from workbench.align import Alignment, align, compiled_answer, pad_id
from workbench.compiled import CompiledModel
from workbench.evaluate.generate import greedy
from workbench.inject.monitor import continuation_ids, next_token_argmax, teacher_forced_verdicts
from workbench.padding import length_mask, right_pad
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


def greedy_verdicts(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 64
                    ) -> tuple[list[bool], list[bool]]:
    """Per example, the strict and the lenient greedy exact-match verdicts, from one batched,
    key-value cached decoding of ``len(answer) + 1`` tokens.

    Lenient: the first ``len(answer)`` generated tokens are the answer tokens. Strict (the
    paper's exact match): lenient, and the next generated token ends the answer
    (``task.continues`` is False for its text), so "31" is not the answer 3 nor "Yesterday" "Yes".
    """
    alignments = [align(task, e, tokenizer, 10**9) for e in examples]
    prompts = [a.model_ids[: a.n_prompt] for a in alignments]
    longest = max(len(a) - a.n_prompt for a in alignments)
    generated = greedy(model, prompts, longest + 1, batch_size)
    strict, lenient = [], []
    for g, a in zip(generated, alignments):
        n = len(a) - a.n_prompt
        lenient.append(g[:n] == a.model_ids[a.n_prompt:])
        strict.append(lenient[-1] and not task.continues(tokenizer.decode([g[n]])))
    return strict, lenient


def answer_correct(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 64,
                   strict: bool = True) -> list[bool]:
    """Per example: does greedy decoding produce exactly the answer (strict: and then end it;
    lenient, ``strict=False``: the answer tokens first, whatever follows)? See :func:`greedy_verdicts`."""
    strict_ok, lenient_ok = greedy_verdicts(model, tokenizer, task, examples, batch_size)
    return strict_ok if strict else lenient_ok


def teacher_forced_correct(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 16,
                           strict: bool = True) -> list[bool]:
    """The same verdict from one forward pass: greedy reproduces the answer iff every answer
    position's argmax is the answer token (each step then conditions on the same prefix); strict
    also needs the argmax after the last answer token, greedy's next token, not to continue it."""
    alignments = [align(task, e, tokenizer, 10**9) for e in examples]
    ids = right_pad([a.model_ids for a in alignments], pad_id(tokenizer))
    lengths = torch.tensor([len(a) for a in alignments])
    answer_mask = length_mask(lengths, ids.shape[1]) & ~length_mask([a.n_prompt for a in alignments], ids.shape[1])
    strict_ok, lenient_ok = teacher_forced_verdicts(model, ids, answer_mask, lengths,
                                                    continuation_ids(task, tokenizer), batch_size)
    return (strict_ok if strict else lenient_ok).tolist()


@torch.no_grad()
def answer_tokens(model, tokenizer, task: Task, examples: Sequence[Example], batch_size: int = 16) -> pd.DataFrame:
    """Which answer token a model gets wrong: one row per example and place in its answer, teacher-forced.

    ``place`` 1..k numbers the answer's tokens (a lone space included: SmolLM2 writes " 25" as " ", "2",
    "5"), ``end`` is the token after the answer, right when it cannot continue it (strict exact match);
    ``correct`` is the argmax at the position before. An example is lenient-correct iff all its numbered
    places are, strict-correct iff its ``end`` is too (:func:`teacher_forced_correct`); the accuracy of
    each place is ``groupby("place").correct.mean()``.
    """
    alignments = [align(task, e, tokenizer, 10**9) for e in examples]
    ids = right_pad([a.model_ids for a in alignments], pad_id(tokenizer))
    predicted = next_token_argmax(model, ids, batch_size)
    continuing = set(continuation_ids(task, tokenizer).tolist())
    rows = []
    for row, a in enumerate(alignments):
        for place, position in enumerate(range(a.n_prompt, len(a)), start=1):
            rows.append({"example": row, "place": str(place), "token": a.model_tokens[position],
                         "correct": int(predicted[row, position - 1]) == a.model_ids[position]})
        after = int(predicted[row, len(a) - 1])
        rows.append({"example": row, "place": "end", "token": tokenizer.decode([after]),
                     "correct": after not in continuing})
    return pd.DataFrame(rows)


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
