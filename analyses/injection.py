"""Injected runs at the CPU presets: test accuracy (strict and lenient), OOD suites, decoded-variable
agreement per aligned layer, perplexity change, and accuracy-vs-step curves.

    python analyses/injection.py [--runs runs/presets] [--n 200] [--ppl-lines 100] [--fresh]

Reads every run folder ``RUNS/<preset>/<task>_<method>`` (made by ``python benchmarks/inject_bench.py``)
→ results/injection.csv, results/injection.md, results/injection_agreement.csv (TI runs: agreement per
variable and aligned layer), results/injection_checks.csv (every held-out check of every run, unfinished
runs included: step, accuracy, TI's decoded agreement), results/injection_answer_tokens.csv (every run at
its latest checkpoint, unfinished ones included: teacher-forced accuracy of each place in the answer, so a
run that fails its task shows which token it misses), results/injection_unfinished_agreement.csv (unfinished TI
runs at their latest checkpoint: agreement per variable and aligned layer, so a run that fails shows which of
the program's variables its residual does not hold), results/injection_curves.html. A run below 90 % strict
test accuracy is marked FAILED: it does not compute its program, so nothing decoded from it is a result.
A run's evaluation is kept in its folder (``evaluation.json``) until its checkpoint or these settings change;
the rows of a run whose folder is absent (trained before this checkout) are kept from the files as they were.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import plotly.express as px

sys.path.insert(0, str(Path(__file__).parent))
from tables import RESULTS  # noqa: E402

from workbench.decode import agreement  # noqa: E402
from workbench.evaluate import answer_tokens  # noqa: E402
from workbench.evaluate.perplexity import perplexity, shakespeare_lines  # noqa: E402
from workbench.evaluate.runs import load_run, load_trained_map, task_table  # noqa: E402
from workbench.inject import checkpoint  # noqa: E402
from workbench.inject.config import InjectionConfig  # noqa: E402
from workbench.inject.presets import BARS  # noqa: E402
from workbench.curves import training_seconds  # noqa: E402
from workbench.inject.trainer import finished  # noqa: E402
from workbench.plots import write_figure  # noqa: E402
from workbench.tasks import get_task  # noqa: E402

PASS = 0.90


def meets_bar(row: dict) -> str:
    """"yes", or "no: " and what falls short of the preset's bar."""
    accuracy, agreement = BARS.get(row["preset"], (PASS, 0.90))
    misses = [f"test < {accuracy:.0%}"] if row["test_strict"] < accuracy else []
    if row["method"] == "ti" and agreement is not None and row["agreement_mean"] < agreement:
        misses.append(f"agreement < {agreement:.0%}")
    return "no: " + ", ".join(misses) if misses else "yes"


def evaluate(run_dir: Path, n: int, lines: list[str]) -> dict:
    loaded, config, step = load_run(run_dir)
    task = get_task(config.task)
    table = task_table(loaded, task, n, list(task.suites()))
    metrics = pd.read_json(run_dir / "metrics.jsonl", lines=True)
    original, _, _ = load_run(run_dir, original=True)
    ppl_before = perplexity(original.model, original.tokenizer, lines)["per_line_ppl"]
    ppl_after = perplexity(loaded.model, loaded.tokenizer, lines)["per_line_ppl"]
    test = table.iloc[0]
    row = {"task": config.task, "model": loaded.name, "method": config.method, "steps": step,
           "train_minutes": round(training_seconds(metrics).iloc[-1] / 60, 1),
           "test_strict": test.model_accuracy, "test_lenient": test.model_accuracy_lenient,
           "compiled_test": test.compiled_accuracy,
           **{f"ood_{r.set}": r.model_accuracy for r in table.iloc[1:].itertuples()},
           "ppl_original": round(ppl_before, 2), "ppl_after": round(ppl_after, 2),
           "ppl_change_pct": round(100 * (ppl_after / ppl_before - 1), 1)}
    if config.method == "ti":
        table = agreement_table(run_dir, n)
        for column in table.columns:
            row[f"agreement_{column}"] = table[column].mean()
        row["agreement_mean"] = float(table.stack().mean())  # every variable at every aligned layer
        row["per_variable"] = table
    row["verdict"] = "injected" if row["test_strict"] >= PASS else f"FAILED (< {PASS:.0%} on its task)"
    return row


def agreement_table(run_dir: Path, n: int) -> pd.DataFrame:
    """A TI run's decoded agreement on ``n`` test prompts: one row per variable, columns ``layer0..`` (aligned layers)."""
    loaded, config, linear_map, mapping, _ = load_trained_map(run_dir)
    task = get_task(config.task)
    table = agreement(loaded.model, linear_map, loaded.tokenizer, task, task.compile(), task.split("test", n), mapping)
    return table.set_axis([f"layer{i}" for i in range(table.shape[1])], axis=1)


def cached_evaluation(run_dir: Path, n: int, lines: list[str], fresh: bool) -> dict:
    """``evaluate``, kept in ``RUN/evaluation.json`` for the run's latest checkpoint and these settings:
    re-running the analysis after one more run evaluates only that run (``--fresh``: all of them)."""
    path = run_dir / "evaluation.json"
    key = {"checkpoint": latest_step(run_dir),
           "n": n, "ppl_lines": len(lines)}
    if not fresh and path.exists():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            row = saved["row"]
            if "per_variable" in saved:
                row["per_variable"] = pd.DataFrame(**saved["per_variable"])
            return row
    row = evaluate(run_dir, n, lines)
    saved = {"key": key, "row": {k: v for k, v in row.items() if k != "per_variable"}}
    if "per_variable" in row:
        saved["per_variable"] = row["per_variable"].to_dict(orient="split")
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(saved, indent=1, default=lambda value: value.item()))  # numpy scalars
    partial.replace(path)
    return row


def latest_step(run_dir: Path) -> int:
    return json.loads((checkpoint.latest(run_dir) / "state.json").read_text())["step"]


def per_checkpoint(run_dir: Path, name: str, n: int, compute, **read) -> pd.DataFrame:
    """``compute()`` (a table), kept in ``RUN/name`` with ``step`` and ``prompts`` columns and read back while the
    run's latest checkpoint and ``n`` are those it was made for."""
    path, step = run_dir / name, latest_step(run_dir)
    if path.exists():
        saved = pd.read_csv(path, **read)
        if (saved.step == step).all() and (saved.prompts == n).all():
            return saved
    table = compute().assign(step=step, prompts=n).round(4)
    table.to_csv(path, index=False)
    return table


def answer_token_accuracy(run_dir: Path, n: int) -> pd.DataFrame:
    """Per place in the answer (1..k, then ``end``: the token after it ends it), the teacher-forced accuracy on
    ``n`` test prompts at the run's latest checkpoint; kept in ``RUN/answer_tokens.csv`` for that checkpoint."""

    def compute() -> pd.DataFrame:
        loaded, config, _ = load_run(run_dir)
        task = get_task(config.task)
        places = answer_tokens(loaded.model, loaded.tokenizer, task, task.split("test", n))
        table = places.groupby("place").correct.agg(tokens="size", accuracy="mean").reset_index()
        return table.sort_values("place", key=lambda p: p.map(lambda v: (v == "end", v.zfill(3))))

    return per_checkpoint(run_dir, "answer_tokens.csv", n, compute, dtype={"place": str})


def variable_agreement(run_dir: Path, n: int) -> pd.DataFrame:
    """A TI run's decoded agreement per variable (rows) and aligned layer (``layer0..``) on ``n`` test prompts at
    its latest checkpoint; kept in ``RUN/agreement.csv`` for that checkpoint."""
    return per_checkpoint(run_dir, "agreement.csv", n,
                          lambda: agreement_table(run_dir, n).rename_axis("variable").reset_index())


def held_out_checks(folders: list[Path], unfinished: list[Path]) -> pd.DataFrame:
    """Every in-loop held-out check of every run, unfinished ones included (a run abandoned short of its
    target is evidence too): run, finished, step, eval_accuracy, eval_agreement (TI)."""
    parts = []
    for folder in folders:
        metrics = pd.read_json(folder / "metrics.jsonl", lines=True)
        if "eval_accuracy" in metrics:
            part = metrics.dropna(subset=["eval_accuracy"]).reindex(columns=["step", "eval_accuracy", "eval_agreement"])
            parts.append(part.assign(run=f"{folder.parent.name}/{folder.name}", finished=folder not in unfinished))
    columns = ["run", "finished", "step", "eval_accuracy", "eval_agreement"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def with_absent_runs(name: str, table: pd.DataFrame, runs: Path, run_of) -> pd.DataFrame:
    """``table`` plus the rows already in ``results/NAME`` of runs whose folder is not under ``runs`` (trained on
    another machine, or before this checkout): re-running the analysis on one new run keeps the others' evidence.
    ``run_of(frame)`` names each row's run folder, ``<preset>/<task>_<method>``. A run whose folder is here but
    unfinished has no row until it finishes (its earlier row described other weights)."""
    path = RESULTS / name
    if not path.exists():
        return table
    previous = pd.read_csv(path, dtype={"place": str})
    absent = previous[[not (runs / folder).is_dir() for folder in run_of(previous)]]
    if not len(absent) or not len(table):
        return table if len(table) else absent
    combined = pd.concat([table, absent], ignore_index=True)
    return combined[[*previous.columns, *(c for c in combined if c not in previous)]]  # the file's columns stay put


def run_name(frame: pd.DataFrame) -> pd.Series:
    return frame["preset"] + "/" + frame["task"] + "_" + frame["method"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, default=Path("runs/presets"))
    parser.add_argument("--n", type=int, default=200, help="test prompts per split/suite")
    parser.add_argument("--ppl-lines", type=int, default=100)
    parser.add_argument("--fresh", action="store_true", help="re-evaluate every run, not only new checkpoints")
    args = parser.parse_args()
    folders = sorted(p.parent for p in args.runs.glob("*/*/config.json"))
    unfinished = [f for f in folders if not finished(f, InjectionConfig.from_file(f / "config.json"))]
    checks = held_out_checks(folders, unfinished)
    places = [answer_token_accuracy(f, args.n).assign(run=f"{f.parent.name}/{f.name}", finished=f not in unfinished)
              for f in folders if checkpoint.latest(f) is not None]
    stalled = [variable_agreement(f, args.n).assign(run=f"{f.parent.name}/{f.name}") for f in unfinished
               if checkpoint.latest(f) is not None and InjectionConfig.from_file(f / "config.json").method == "ti"]
    for folder in unfinished:
        print(f"skipping {folder}: still training (resume it with `python benchmarks/inject_bench.py`)", flush=True)
    folders = [f for f in folders if f not in unfinished]
    if not folders or not places:
        raise SystemExit(f"no runs under {args.runs}; train them with `python benchmarks/inject_bench.py`")
    lines, corpus = shakespeare_lines(None, args.ppl_lines)
    rows = []
    for folder in folders:
        print(f"evaluating {folder}", flush=True)
        rows.append({"preset": folder.parent.name, **cached_evaluation(folder, args.n, lines, args.fresh)})
        rows[-1]["meets_bar"] = meets_bar(rows[-1])
    per_variable = [row.pop("per_variable").rename_axis("variable").reset_index()
                    .assign(preset=row["preset"], task=row["task"], model=row["model"])
                    for row in rows if "per_variable" in row]
    RESULTS.mkdir(exist_ok=True)
    per_variable = with_absent_runs("injection_agreement.csv", pd.concat(per_variable) if per_variable else pd.DataFrame(),
                                    args.runs, lambda frame: run_name(frame.assign(method="ti")))
    if len(per_variable):
        per_variable.round(4).to_csv(RESULTS / "injection_agreement.csv", index=False)
    key = ["preset", "task", "method"]
    table = with_absent_runs("injection.csv", pd.DataFrame(rows), args.runs, run_name).sort_values(key)
    checks = with_absent_runs("injection_checks.csv", checks, args.runs, lambda frame: frame["run"])
    stalled = with_absent_runs("injection_unfinished_agreement.csv", pd.concat(stalled) if stalled else pd.DataFrame(),
                               args.runs, lambda frame: frame["run"])
    if len(stalled):
        # the run's task accuracy beside what is decoded from it: its held-out strict check at that checkpoint
        accuracy = checks.rename(columns={"eval_accuracy": "held_out_accuracy"})[["run", "step", "held_out_accuracy"]]
        stalled = stalled.drop(columns="held_out_accuracy", errors="ignore").merge(accuracy, on=["run", "step"], how="left")
        stalled[["run", "step", "held_out_accuracy", "prompts", "variable",
                 *(c for c in stalled if c.startswith("layer"))]].to_csv(
            RESULTS / "injection_unfinished_agreement.csv", index=False)
    places = with_absent_runs("injection_answer_tokens.csv", pd.concat(places, ignore_index=True), args.runs,
                              lambda frame: frame["run"])
    table.to_csv(RESULTS / "injection.csv", index=False)
    shown = table.copy()
    for column in [c for c in shown if c.startswith(("test_", "compiled_", "ood_", "agreement_"))]:
        shown[column] = (100 * shown[column]).round(1)
    (RESULTS / "injection.md").write_text(
        "# Injected runs at the CPU presets\n\n"
        f"Accuracy: strict greedy exact match in % ({args.n} prompts per set; lenient = answer tokens only); "
        "agreement: share of (prompt, position) where the variable decoded through the map equals the compiled "
        f"program's, in %, per aligned layer and averaged over every variable at every layer; perplexity: mean "
        f"per-line perplexity on {corpus} ({args.ppl_lines} lines). Rows of runs not on the machine that ran "
        "the analysis keep their earlier evaluation. Regenerate: `python analyses/injection.py`.\n\n"
        + shown.to_markdown(index=False) + "\n")
    checks.round(4).to_csv(RESULTS / "injection_checks.csv", index=False)
    places[["run", "finished", "step", "prompts", "place", "tokens", "accuracy"]].to_csv(
        RESULTS / "injection_answer_tokens.csv", index=False)
    if len(checks):
        curves = checks.melt(["run", "finished", "step"], ["eval_accuracy", "eval_agreement"], "check").dropna()
        figure = px.line(curves, x="step", y="value", color="run", line_dash="check", markers=True,
                         title="Held-out checks during training (strict accuracy; TI: decoded agreement)")
        write_figure(figure, RESULTS / "injection_curves.html")
    print(shown.to_string(index=False))
    print(f"wrote {RESULTS / 'injection.csv'}, injection.md, injection_agreement.csv, injection_checks.csv, "
          "injection_answer_tokens.csv, injection_unfinished_agreement.csv, injection_curves.html")


if __name__ == "__main__":
    main()
