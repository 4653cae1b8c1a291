"""Scoring a trained meta-model on a zoo split, and decompiling one named program with it.

:func:`evaluate_run` reports, next to each other, the meta-model's and the trivial baseline's
token accuracy (thesis metric and its threshold columns), their non-fixed token accuracy, the
meta-model's functional accuracy (with the share of predictions that are no valid program) and
the accuracy per operation; it writes ``RUN/eval_<split>.json`` and ``RUN/eval_<split>_programs.csv``.
Predictions are read with the grammar (:func:`~workbench.decompile.metamodel.constrained_grid`);
``raw_token_accuracy`` is the thesis's reading (every slot's argmax on its own) of the same model.
The test split is deduplicated against everything by construction (the zoo keeps one program per
canonical token hash and splits by that hash).

:func:`decompile_program` runs the meta-model on a program that is not in the zoo: one of
:data:`NAMED_PROGRAMS` (tracr lib programs written in the generator's primitives, each checked
against tracr's own in the tests) or ``zoo:INDEX`` (program INDEX of the run's zoo).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import torch

from workbench.decompile.data import load_examples, weight_inputs
from workbench.decompile.encoding import encode, program_hash
from workbench.decompile.faithful import CompileWorker, compile_and_check
from workbench.decompile.metamodel import constrained_grid
from workbench.decompile.metrics import (
    MajorityBaseline,
    accuracy_by_op,
    functional_check,
    nonfixed_accuracy,
    summarize,
    token_accuracy,
)
from workbench.decompile.program import Line, Program
from workbench.decompile.train import load_trained, predict
from workbench.decompile.zoo import SPLITS, load_zoo, program_of_row
from workbench.errors import WorkbenchError


def _lib(name: str, lines: list[Line]) -> Program:
    from workbench.compiled import get_lib_program

    entry = get_lib_program(name)
    return Program(sorted(entry.vocab, key=str), entry.max_seq_len, lines)


def _length_lines(out: str) -> list[Line]:
    return [Line("Select", "PRED_TRUE", ("tokens", "tokens"), "all_true"), Line("SelectorWidth", None, ("all_true",),
                                                                                 out)]


# tracr.compiler.lib programs that the generator's primitives express exactly (tests compare them with tracr's)
NAMED_PROGRAMS = {
    "make_length": lambda: _lib("length", _length_lines("length")),
    "make_hist": lambda: _lib("hist", [Line("Select", "PRED_EQ", ("tokens", "tokens"), "same_tok"),
                                       Line("SelectorWidth", None, ("same_tok",), "hist")]),
    "make_sort_unique": lambda: _lib("sort_unique", [
        Line("Select", "PRED_LT", ("tokens", "tokens"), "smaller"),
        Line("SelectorWidth", None, ("smaller",), "target_pos"),
        Line("Select", "PRED_EQ", ("target_pos", "indices"), "sel_new"),
        Line("Aggregate", None, ("sel_new", "tokens"), "sort")]),
    "make_reverse": lambda: _lib("reverse", [
        *_length_lines("length"),
        Line("SequenceMap", "LAM_SUB", ("length", "indices"), "opp_idx"),
        Line("Map", "LAM_SUB", ("opp_idx",), "opp_idx-1", const=1),
        Line("Select", "PRED_EQ", ("indices", "opp_idx-1"), "reverse_selector"),
        Line("Aggregate", None, ("reverse_selector", "tokens"), "reverse")]),
}


def evaluate_run(run_dir: Path | str, split: str = "validation", functional: bool = True, n_inputs: int = 16,
                 limit: int | None = None, timeout_s: float = 5.0) -> dict:
    """Score the run's latest checkpoint on ``split`` of its zoo; the summary (also written to the run folder)."""
    if split not in SPLITS:
        raise WorkbenchError(f"unknown split {split!r}; use one of {list(SPLITS)}")
    run_dir = Path(run_dir)
    model, vocabulary, saved = load_trained(run_dir)
    config = saved["config"]
    examples = load_examples(saved["zoo"], split, config.model.max_weight_tokens, limit=limit)
    if not len(examples):
        raise WorkbenchError(f"the zoo's {split} split is empty; generate a larger zoo")
    baseline = MajorityBaseline(load_examples(saved["zoo"], "train", config.model.max_weight_tokens).grids,
                                config.model.rows).grid
    predictions = predict(model, examples, vocabulary)
    raw = predict(model, examples, vocabulary, constrained=False)
    rows = []
    worker = CompileWorker(timeout_s) if functional else None
    try:
        for i, (true, predicted) in enumerate(zip(examples.grids, predictions)):
            row = {"id": examples.ids[i], "index": examples.indices[i], "lines": len(true) - 2,
                   "token_accuracy": token_accuracy(true, predicted),
                   "raw_token_accuracy": token_accuracy(true, raw[i]),
                   "nonfixed_accuracy": nonfixed_accuracy(true, predicted),
                   "baseline_token_accuracy": token_accuracy(true, baseline),
                   "baseline_nonfixed_accuracy": nonfixed_accuracy(true, baseline)}
            if worker is not None:
                outcome = functional_check(examples.programs[i], examples.ids[i], predicted, worker,
                                           examples.causal[i], n_inputs)
                row.update(functional=outcome.status, functional_detail=outcome.detail, constant=outcome.constant)
            rows.append(row)
    finally:
        if worker is not None:
            worker.close()
    table = pd.DataFrame(rows)
    summary = {"split": split, "programs": len(table), "step": saved["step"], "zoo": saved["zoo"],
               **summarize(list(table.token_accuracy)), "nonfixed_accuracy": float(table.nonfixed_accuracy.mean()),
               **summarize(list(table.raw_token_accuracy), "raw_"),
               **summarize(list(table.baseline_token_accuracy), "baseline_"),
               "baseline_nonfixed_accuracy": float(table.baseline_nonfixed_accuracy.mean()),
               "by_op": accuracy_by_op(examples.grids, predictions)}
    if functional:
        counts = table.functional.value_counts()
        summary.update({f"functional_{status}": float(counts.get(status, 0) / len(table))
                        for status in ("equal", "invalid", "different", "not_compilable")})
        summary["functional_accuracy"] = summary.pop("functional_equal")
        varying = table[~table.constant]
        summary["constant_share"] = float(table.constant.mean())
        summary["functional_accuracy_nonconstant"] = (float((varying.functional == "equal").mean())
                                                      if len(varying) else float("nan"))
    (run_dir / f"eval_{split}.json").write_text(json.dumps(summary, indent=1))
    table.to_csv(run_dir / f"eval_{split}_programs.csv", index=False)
    return summary


def named_program(name: str, zoo: str | Path) -> tuple[Program, str]:
    """A program to decompile and where it comes from: a :data:`NAMED_PROGRAMS` name or ``zoo:INDEX``."""
    if name.startswith("zoo:"):
        try:
            index = int(name[4:])
        except ValueError:
            raise WorkbenchError(f"--program {name!r}: give zoo:INDEX with an integer index, e.g. zoo:12") from None
        found = load_zoo(zoo, columns=["program", "split"], indices=[index])
        if found.empty:
            first = pq.read_table(Path(zoo) / "index.parquet", columns=["index"]).column(0)[0].as_py()
            raise WorkbenchError(f"--program {name!r}: the zoo {zoo} has no program with index {index}; "
                                 f"e.g. zoo:{first}")
        return program_of_row(found.iloc[0]), f"zoo program {index} ({found.iloc[0]['split']} split)"
    key = name if name.startswith("make_") else f"make_{name}"
    if key not in NAMED_PROGRAMS:
        raise WorkbenchError(f"--program {name!r} is not one the meta-model can be checked on; use one of "
                             f"{', '.join(NAMED_PROGRAMS)} or zoo:INDEX")
    return NAMED_PROGRAMS[key](), f"tracr.compiler.lib.{key}"


def decompile_program(run_dir: Path | str, name: str, n_inputs: int = 16) -> dict:
    """Compile the named program, run the meta-model on its weights; the true and predicted grids and the verdicts."""
    model, vocabulary, saved = load_trained(run_dir)
    config = saved["config"]
    program, source = named_program(name, saved["zoo"])
    causal = bool(json.loads((Path(saved["zoo"]) / "config.json").read_text()).get("causal", False))
    compiled = compile_and_check(program, causal=causal, n_inputs=n_inputs)
    if compiled.status != "ok":
        raise WorkbenchError(f"{source} does not compile faithfully ({compiled.status}: {compiled.detail})")
    tokens, mask, _, _ = weight_inputs(compiled.weights, compiled.layer_types, config.model.max_weight_tokens)
    with torch.no_grad():
        logits = model(torch.from_numpy(tokens)[None], torch.from_numpy(mask)[None])
    predicted = constrained_grid([column[0] for column in logits], vocabulary)
    true = encode(program)
    with CompileWorker() as worker:
        outcome = functional_check(program, program_hash(true), predicted, worker, causal, n_inputs)
    return {"source": source, "program": program, "true": true, "predicted": predicted,
            "token_accuracy": token_accuracy(true, predicted), "nonfixed_accuracy": nonfixed_accuracy(true, predicted),
            "functional": outcome, "step": saved["step"]}
