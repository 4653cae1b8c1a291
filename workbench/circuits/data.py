"""Clean and corrupt data for circuit discovery: compiled programs, compiled tasks, injected runs.

Clean and corrupt rows are independent draws of the same distribution (the corrupt row is
what resample ablation replaces a sender's output with), right-padded; ``positions`` marks
where the metric is read: every input position whose output the program defines (tracr
library programs), or the positions predicting the answer (tasks, compiled or injected).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Sequence

import torch

from workbench.align import align, pad_id
from workbench.compiled import CompiledModel, get_lib_program
from workbench.models import LoadedModel
from workbench.padding import length_mask, right_pad
from workbench.tasks import Task, pieces


@dataclasses.dataclass
class CircuitData:
    clean: torch.Tensor  # [B, T] token ids
    clean_mask: torch.Tensor  # [B, T] bool: real tokens
    corrupt: torch.Tensor
    corrupt_mask: torch.Tensor
    positions: torch.Tensor  # [B, T] bool: where the metric is read
    numerical: bool = False


def _pad(rows: Sequence[Sequence[int]], pad: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``right_pad`` widened to ``width`` (clean and corrupt rows share one width), and the real positions."""
    ids = right_pad(rows, pad)
    ids = torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad)
    return ids, length_mask([len(row) for row in rows], width)


def _compiled_data(compiled: CompiledModel, clean_inputs, corrupt_inputs, positions_of) -> CircuitData:
    pad = compiled.input_vocab.index(compiled.pad)
    clean_rows = [compiled.encode(x)[0].tolist() for x in clean_inputs]
    corrupt_rows = [compiled.encode(x)[0].tolist() for x in corrupt_inputs]
    width = max(map(len, clean_rows + corrupt_rows))
    clean, clean_mask = _pad(clean_rows, pad, width)
    corrupt, corrupt_mask = _pad(corrupt_rows, pad, width)
    positions = torch.zeros_like(clean_mask)
    for row, x in enumerate(clean_inputs):
        positions[row, [p + 1 for p in positions_of(row, x)]] = True  # +1: the compiled BOS
    if compiled.is_categorical:
        with torch.no_grad():
            defined = compiled.model(clean, attention_mask=clean_mask.long()).max(-1).values > 0.5
        positions &= defined  # where tracr leaves the output undefined, its argmax is arbitrary
    return CircuitData(clean, clean_mask, corrupt, corrupt_mask, positions, not compiled.is_categorical)


def lib_data(compiled: CompiledModel, program: str, n: int = 16, seed: int = 0) -> CircuitData:
    """Random inputs of the tracr library program ``program`` (lengths vary, as the program allows)."""
    entry = get_lib_program(program)
    rng = random.Random(f"circuits:{entry.name}:{seed}")
    inputs = [entry.random_input(rng) for _ in range(2 * n)]
    return _compiled_data(compiled, inputs[:n], inputs[n:], lambda row, x: range(len(x)))


def task_compiled_data(task: Task, compiled: CompiledModel, n: int = 16, seed: int = 0) -> CircuitData:
    """Test prompts of ``task`` as the compiled program sees them (answers teacher-forced)."""
    examples = task.split("test", 2 * n, seed=seed)
    views = [task.compiled_tokens(pieces(e.text)) for e in examples]
    answer_positions = [task.answer_positions(e) for e in examples]
    return _compiled_data(compiled, views[:n], views[n:], lambda row, x: answer_positions[row])


def run_data(loaded: LoadedModel, task: Task, n: int = 16, seed: int = 0) -> CircuitData:
    """Test prompts of ``task`` tokenized for an injected model; the metric reads the answer predictions."""
    examples = task.split("test", 2 * n, seed=seed)
    alignments = [align(task, e, loaded.tokenizer) for e in examples]
    width = max(map(len, alignments))
    pad = pad_id(loaded.tokenizer)
    clean, clean_mask = _pad([a.model_ids for a in alignments[:n]], pad, width)
    corrupt, corrupt_mask = _pad([a.model_ids for a in alignments[n:]], pad, width)
    positions = torch.zeros_like(clean_mask)
    for row, a in enumerate(alignments[:n]):
        positions[row, a.answer_positions] = True
    return CircuitData(clean, clean_mask, corrupt, corrupt_mask, positions)
