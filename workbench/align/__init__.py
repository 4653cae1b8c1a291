"""Stage ``align``: model tokens ↔ compiled positions for a task prompt.

Every model token maps to one compiled position (compiled BOS first, then one compiled token
per model token): the compiled residual ``[:, 1:]`` lines up with model positions ``0..T-1``.
Tokens the program reads map to their compiled token, the ``:`` of "Answer:" to the answer
marker, everything else (a model BOS included) to the filler.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from workbench.compiled import CompiledModel
from workbench.errors import WorkbenchError
from workbench.padding import length_mask, right_pad
from workbench.align.layers import compiled_hook, layer_map, model_hook
from workbench.tasks import Example, Task
from workbench.tasks.base import predicting_positions


@dataclasses.dataclass(frozen=True)
class Alignment:
    """One tokenized prompt and its compiled counterpart."""

    model_ids: list[int]  # prompt + answer, model BOS included when prepended
    model_tokens: list[str]  # text of each model token
    compiled_tokens: list[str]  # one per model token
    n_prompt: int  # model tokens of the prompt (BOS included): answer tokens are model_ids[n_prompt:]
    answer_positions: list[int]  # model positions whose next-token prediction is a (non-blank) answer token

    @property
    def answer_token_positions(self) -> list[int]:
        """Positions of all answer tokens (the CE targets are model_ids at these positions)."""
        return list(range(self.n_prompt, len(self.model_ids)))

    def __len__(self) -> int:
        return len(self.model_ids)


def _token_texts(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> list[str]:
    return [tokenizer.decode([i]) for i in ids]


def align(task: Task, example: Example, tokenizer: PreTrainedTokenizerBase, max_seq_len: int | None = None,
          prepend_bos: bool = True, append_end: bool = False) -> Alignment:
    """Tokenize ``example`` and map each model token to its compiled token.

    ``append_end`` adds the tokenizer's end-of-text token after the answer, as one more answer token
    (a filler to the program, whose output there is its end of answer): training on it teaches a model
    to stop after the answer, which strict exact match requires.

    Raises a ``WorkbenchError`` naming the problem when a character cannot be aligned (a token
    merging a program symbol with other text, a character the tokenizer cannot represent) or
    the prompt is longer than the compiled context ``max_seq_len`` (default: the task's).
    """
    limit = max_seq_len or task.max_seq_len
    prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(example.text, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise WorkbenchError(f"the tokenizer merges the end of the prompt {example.prompt!r} with the answer "
                             f"{example.answer!r}; answers must start at a token boundary")
    bos = [tokenizer.bos_token_id] if prepend_bos and tokenizer.bos_token_id is not None else []
    end = [tokenizer.eos_token_id] if append_end else []
    ids = bos + full_ids + end
    texts = _token_texts(tokenizer, ids)
    for text in texts[len(bos): len(ids) - len(end)]:
        if "\ufffd" in text:
            bad = next((c for c in example.text if c not in "".join(texts)), "?")
            raise WorkbenchError(f"character {bad!r} in {example.text!r} cannot be aligned: the tokenizer splits it "
                                 "into byte pieces; remove it from the prompt")
    if len(ids) > limit:
        raise WorkbenchError(f"prompt is {len(ids)} model tokens but the compiled {task.name} program has a context "
                             f"of {limit}; shorten the prompt or compile with a larger max_seq_len")
    compiled = [task.filler_token] * len(bos) + [task.checked_compiled_token(t)
                                                 for t in texts[len(bos): len(ids) - len(end)]]
    compiled += [task.filler_token] * len(end)
    n_prompt = len(bos) + len(prompt_ids)
    return Alignment(model_ids=ids, model_tokens=texts, compiled_tokens=compiled, n_prompt=n_prompt,
                     answer_positions=predicting_positions(texts[: len(ids) - len(end)], n_prompt))


def compiled_answer(task: Task, compiled: CompiledModel, alignment: Alignment) -> str:
    """What the compiled program answers on the aligned compiled tokens (teacher-forced)."""
    return task.read_answer(compiled.run(alignment.compiled_tokens), alignment.answer_positions)


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id used to right-pad model batches (EOS when the tokenizer has no PAD)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def task_batch(alignments: Sequence[Alignment], compiled: CompiledModel, tokenizer: PreTrainedTokenizerBase
               ) -> dict[str, torch.Tensor]:
    """``batch`` plus ``answer_mask``, which marks the answer tokens of each row."""
    model_ids, compiled_ids, mask = batch(alignments, compiled, pad_id(tokenizer))
    answer_mask = torch.zeros_like(mask)
    for row, a in enumerate(alignments):
        answer_mask[row, a.n_prompt: len(a)] = True
    return {"ids": model_ids, "compiled_ids": compiled_ids, "mask": mask, "answer_mask": answer_mask}


def batch(alignments: Sequence[Alignment], compiled: CompiledModel, pad_id: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded model ids ``[B, T]``, compiled ids ``[B, T + 1]`` (compiled BOS first) and a length mask."""
    model_ids = right_pad([a.model_ids for a in alignments], pad_id)
    compiled_ids = right_pad([compiled.encode(a.compiled_tokens)[0] for a in alignments],
                             compiled.input_vocab.index(compiled.pad))
    return model_ids, compiled_ids, length_mask([len(a) for a in alignments])


__all__ = ["Alignment", "align", "batch", "compiled_answer", "compiled_hook", "layer_map", "model_hook", "pad_id",
           "task_batch"]
