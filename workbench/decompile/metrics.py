"""How good a decompilation is: the thesis's token accuracy, the same over non-fixed tokens, a trivial baseline,
and functional accuracy.

Token accuracy (thesis §5.5, Table 9.1) compares the predicted grid with the true one slot by
slot over the true program's rows (START, its lines, END; 5 tokens each, NA slots and return
variables included) and averages that fraction over programs; the threshold columns are the
share of programs whose fraction is at least 100, 90, …, 50 %. Rows past the true END are not
scored (the thesis's text does not say; scoring them would reward predicting padding).

Some of those tokens are fixed by position: the START row, the NA slots of the END row, and the
return variable of line i, which the canonical renaming makes ``v<i>``. Non-fixed accuracy
scores the other slots only (every line's op and three argument slots, and the END token). The
trivial baseline is one grid for all programs: in every slot the token the training grids hold
most often there (so the START row and the ``v<i>`` of the rows most programs have).

Functional accuracy: the predicted grid is decoded (:func:`~workbench.decompile.encoding.decode`,
up to its first END) into a program with the original's vocabulary and length; it counts as
equal when RASP evaluation gives the original's outputs on the zoo's random inputs for that
program and the decoded program, compiled by tracr, passes the same faithfulness check as the
zoo (:class:`~workbench.decompile.faithful.CompileWorker`), so its compiled model gives those
outputs too. The zoo's own model was checked against RASP on the same inputs. Programs whose
output is one constant on all those inputs are flagged: any program with that constant output
matches them, so functional accuracy is also reported on the others.

>>> true = [["START", "NA", "NA", "NA", "NA"], ["Select", "PRED_EQ", "tokens", "tokens", "v1"],
...         ["SelectorWidth", "v1", "NA", "NA", "v2"], ["END", "NA", "NA", "NA", "NA"]]
>>> wrong_predicate = [row[:] for row in true]; wrong_predicate[1][1] = "PRED_LT"
>>> token_accuracy(true, wrong_predicate), nonfixed_accuracy(true, wrong_predicate)
(0.95, 0.8888888888888888)
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Sequence

from workbench.decompile.encoding import END, START, decode
from workbench.decompile.faithful import CompileWorker, random_inputs
from workbench.decompile.program import Program
from workbench.errors import WorkbenchError

THRESHOLDS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
Grid = Sequence[Sequence[str]]


def fixed_slots(true: Grid) -> list[list[bool]]:
    """Which slots of the true grid are fixed by position: the START row, END's NA slots, each line's ``v<i>``."""
    last = len(true) - 1
    return [[row == 0 or (row == last and column > 0) or (0 < row < last and column == 4)
             for column in range(len(true[row]))] for row in range(len(true))]


def _scored(true: Grid, predicted: Grid, fixed: bool | None) -> tuple[int, int]:
    """(correct, scored) over the true grid's rows; ``fixed`` None: every slot, False: only non-fixed ones."""
    mask = fixed_slots(true)
    correct = total = 0
    for r, row in enumerate(true):
        for c, token in enumerate(row):
            if fixed is None or mask[r][c] == fixed:
                total += 1
                correct += r < len(predicted) and predicted[r][c] == token
    return correct, total


def token_accuracy(true: Grid, predicted: Grid) -> float:
    correct, total = _scored(true, predicted, None)
    return correct / total


def nonfixed_accuracy(true: Grid, predicted: Grid) -> float:
    correct, total = _scored(true, predicted, False)
    return correct / total


class MajorityBaseline:
    """The trivial decompiler: one grid for every program, each slot's most frequent token in the training grids
    (padded with PAD to ``rows``). It knows nothing of the program it is asked about, and so predicts the
    positionally fixed tokens (START row, ``v<i>``) where most programs have them."""

    def __init__(self, train_grids: Sequence[Grid], rows: int):
        counts: dict[tuple[int, int], Counter] = defaultdict(Counter)
        for grid in train_grids:
            for r in range(rows):
                for c in range(5):
                    counts[r, c][grid[r][c] if r < len(grid) else "PAD"] += 1
        # ties broken by the token's text, so the baseline does not depend on the order of the grids
        self.grid = [[min(counts[r, c].items(), key=lambda kv: (-kv[1], kv[0]))[0] for c in range(5)]
                     for r in range(rows)]


def summarize(accuracies: Sequence[float], prefix: str = "") -> dict:
    """Mean token accuracy and the share of programs at or above each threshold (Table 9.1's columns)."""
    if not accuracies:
        raise WorkbenchError("no programs to score; the split is empty")
    n = len(accuracies)
    summary = {f"{prefix}token_accuracy": sum(accuracies) / n}
    for threshold in THRESHOLDS:
        # a small tolerance: 19/20 is 0.95 and must count as ≥ 95 % despite floating point
        summary[f"{prefix}programs_ge_{round(100 * threshold)}"] = sum(a >= threshold - 1e-9 for a in accuracies) / n
    return summary


def accuracy_by_op(trues: Sequence[Grid], predictions: Sequence[Grid]) -> list[dict]:
    """Per true operation: its lines, the share whose op slot is right, the share of their row's tokens right."""
    lines, op_right, tokens_right = Counter(), Counter(), Counter()
    for true, predicted in zip(trues, predictions):
        for r, row in enumerate(true):
            if row[0] in (START, END):
                continue
            lines[row[0]] += 1
            got = predicted[r] if r < len(predicted) else [None] * len(row)
            op_right[row[0]] += got[0] == row[0]
            tokens_right[row[0]] += sum(a == b for a, b in zip(got, row)) / len(row)
    return [{"op": op, "lines": lines[op], "op_accuracy": op_right[op] / lines[op],
             "line_token_accuracy": tokens_right[op] / lines[op]} for op in sorted(lines)]


@dataclasses.dataclass
class Functional:
    """``status``: equal, invalid (the grid is no program), different (RASP outputs differ) or not_compilable.

    ``constant``: the original gives one value at every position of every input (many random
    programs do; any program with that constant output is then functionally equal to it).
    """

    status: str
    detail: str = ""
    constant: bool = False

    @property
    def equal(self) -> bool:
        return self.status == "equal"


def functional_check(original: Program, program_id: str, predicted: Grid, worker: CompileWorker,
                     causal: bool = False, n_inputs: int = 16) -> Functional:
    """Whether the decoded prediction computes the original's outputs (see the module docstring)."""
    seed = int(program_id[:8], 16)  # the zoo's faithfulness check used these inputs for the original
    inputs = random_inputs(original, n_inputs, seed)
    expected = [original.outcome(tokens, causal) for tokens in inputs]
    constant = len({repr(value) for outputs in expected for value in outputs}) == 1  # repr: True is not 1
    try:
        candidate = decode(predicted, original.vocab, original.max_seq_len)
    except WorkbenchError as error:
        return Functional("invalid", str(error), constant)
    for tokens, outputs in zip(inputs, expected):
        got = candidate.outcome(tokens, causal)
        if outputs != got:
            return Functional("different", f"input {tokens}: original {outputs}, decompiled {got}"[:300], constant)
    compiled = worker.compile(candidate, causal, n_inputs, seed)
    if compiled.status != "ok":
        return Functional("not_compilable", f"{compiled.status}: {compiled.detail}"[:300], constant)
    return Functional("equal", "", constant)
