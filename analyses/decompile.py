"""The decompiler's results in the layout of the thesis's Table 9.1 (seed 003), the thesis's row beside ours.

    python analyses/decompile.py [--run runs/decompile/model ...] [--n-inputs 16]

Scores each meta-model run (``--run`` repeats: model sizes side by side) on its zoo's validation
and (deduplicated) test splits with ``workbench.decompile.evaluate.evaluate_run``: token accuracy as the thesis computes it and its
threshold columns, the accuracy over the slots not fixed by position, the trivial baseline
(one grid for all programs: each slot's most frequent training token) on the same programs, and
functional accuracy (the decoded program, compiled, gives the original's outputs).
→ results/decompile.csv, results/decompile.md, results/decompile_ops.csv (accuracy per operation,
the thesis's §5.5.1 finding that Maps are hardest) and results/decompile_ops.html (its figure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from workbench.decompile.metrics import THRESHOLDS
from workbench.plots import write_figure

RESULTS = Path(__file__).resolve().parent.parent / "results"
COMMAND = "python analyses/decompile.py"
THRESHOLD_COLUMNS = [f"programs_ge_{round(100 * t)}" for t in THRESHOLDS]
# Table 9.1, "Standard" row (validation split; thesis §5.5: GPT-2 Large, 774M parameters, ≥ 900k programs)
THESIS = {"source": "thesis (seed 003, Table 9.1, standard)", "model": "GPT-2 Large (36 × 1280)",
          "parameters": 774_000_000, "train_programs": None, "split": "validation", "programs": None,
          "token_accuracy": None, "raw_token_accuracy": 0.7304, "nonfixed_accuracy": None,
          "baseline_token_accuracy": None, "baseline_nonfixed_accuracy": None, "functional_accuracy": None,
          "functional_accuracy_nonconstant": None, "constant_share": None, "functional_invalid": None,
          **{f"raw_{c}": v for c, v in zip(THRESHOLD_COLUMNS, (0.004, 0.1327, 0.3261, 0.5841, 0.811, 0.954))}}


def _training(run: Path) -> dict:
    metrics = pd.read_json(run / "metrics.jsonl", lines=True)
    steps = metrics.dropna(subset=["loss"])
    return {"steps": int(steps.step.max()), "train_minutes": (steps.time.max() - steps.time.min()) / 60,
            "train_samples_per_s": float(steps.samples_per_s.median()),
            "final_train_loss": float(steps.loss.tail(50).mean())}


def score(run: Path, n_inputs: int) -> tuple[list[dict], list[dict]]:
    """The run's rows (validation, test) and its accuracy per operation."""
    # imported here, not at the top: the functional check's compiling processes import this script as their
    # main module, and torch's import would be charged to their per-program CPU budget
    from workbench.decompile.evaluate import evaluate_run
    from workbench.decompile.train import load_trained

    model, _, saved = load_trained(run)
    config = saved["config"]
    splits = json.loads((Path(saved["zoo"]) / "summary.json").read_text())["splits"]
    size = f"{config.model.n_layers} × {config.model.d_model}"
    training = _training(run)
    rows, ops = [], []
    for split in ("validation", "test"):
        print(f"scoring {run} on {split}", flush=True)
        summary = evaluate_run(run, split, n_inputs=n_inputs)
        rows.append({"source": "ours", "model": f"GPT-2 blocks ({size})", "run": str(run),
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "train_programs": splits.get("train", 0), "split": split, "programs": summary["programs"],
                     **{k: summary[k] for k in ("token_accuracy", "raw_token_accuracy", "nonfixed_accuracy",
                                                "baseline_token_accuracy", "baseline_nonfixed_accuracy",
                                                "functional_accuracy", "functional_accuracy_nonconstant",
                                                "constant_share", "functional_invalid", *THRESHOLD_COLUMNS,
                                                *(f"raw_{c}" for c in THRESHOLD_COLUMNS))},
                     **{f"baseline_{k}": summary[f"baseline_{k}"] for k in THRESHOLD_COLUMNS}, **training})
        ops += [{"run": str(run), "split": split, **row} for row in summary["by_op"]]
    return rows, ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append",
                        help="a meta-model run (repeatable; default runs/decompile/model)")
    parser.add_argument("--n-inputs", type=int, default=16, help="random inputs of the functional check")
    args = parser.parse_args()
    runs = args.run or [Path("runs/decompile/model")]
    rows, ops = [], []
    for run in runs:
        run_rows, run_ops = score(run, args.n_inputs)
        rows += run_rows
        ops += run_ops
    table = pd.DataFrame([THESIS, *rows])
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "decompile.csv", index=False)
    by_op = pd.DataFrame(ops)
    by_op.round(4).to_csv(RESULTS / "decompile_ops.csv", index=False)
    import plotly.express as px

    figure = px.bar(by_op, x="op", y="op_accuracy", color="split", barmode="group", facet_col="run",
                    title="Decompiler: share of lines whose operation is predicted right, per true operation",
                    labels={"op_accuracy": "op slot accuracy", "op": "operation"})
    write_figure(figure, RESULTS / "decompile_ops.html")
    command = " ".join([COMMAND, *(f"--run {run}" for run in runs)])
    (RESULTS / "decompile.md").write_text(
        "# Decompiler: the meta-model of seed 003 (Table 9.1 layout)\n\n"
        f"Regenerate: `{command}` (runs trained as the README's Decompiler section shows).\n"
        "Token accuracy as the thesis computes it (START/END rows, NA slots and return variables counted, averaged "
        "per program) of the model read as the thesis reads it (each slot's argmax on its own), and read with the "
        "grammar (an op, then the arguments it takes from the variables in scope: the reading the functional check "
        "decodes); non-fixed: the slots not fixed by position; baseline: one grid for all programs, "
        "each slot's most frequent token in the training split; functional: the decoded program, compiled, gives the "
        f"original's outputs on {args.n_inputs} random inputs (constant programs: the originals with one output "
        "value everywhere, which any constant program of that value matches; the next column leaves them out); "
        "≥ X %: share of programs with at least X % of their tokens right. All in %.\n\n" + render(table)
        + "\n\n## Per operation (%)\n\n"
        + (by_op.assign(**{c: (100 * by_op[c]).round(1) for c in ("op_accuracy", "line_token_accuracy")})
           .to_markdown(index=False)) + "\n")
    print(f"written: {RESULTS}/decompile.csv, decompile.md, decompile_ops.csv, decompile_ops.html")


def render(table: pd.DataFrame) -> str:
    """The table as markdown, in %; the threshold columns (the thesis's reading) with the baseline's in brackets."""

    def pct(value) -> str:
        return "—" if pd.isna(value) else f"{100 * value:.1f}"

    rows = []
    for row in table.itertuples():
        thresholds = {f"≥ {c.rsplit('_', 1)[1]} %": pct(getattr(row, "raw_" + c)) + (
            f" ({pct(getattr(row, 'baseline_' + c))})" if row.source == "ours" else "") for c in THRESHOLD_COLUMNS}
        rows.append({"": row.source, "model": row.model,
                     "parameters": "—" if pd.isna(row.parameters) else f"{row.parameters / 1e6:.1f} M",
                     "train programs": "≥ 900k" if pd.isna(row.train_programs) else f"{int(row.train_programs):,}",
                     "split": row.split + ("" if pd.isna(row.programs) else f" ({int(row.programs)})"),
                     "token acc.": pct(row.raw_token_accuracy), "baseline": pct(row.baseline_token_accuracy),
                     "token acc., read with the grammar": pct(row.token_accuracy),
                     "non-fixed acc. (grammar)": pct(row.nonfixed_accuracy),
                     "baseline non-fixed": pct(row.baseline_nonfixed_accuracy),
                     "functional": pct(row.functional_accuracy),
                     "functional, non-constant programs": pct(row.functional_accuracy_nonconstant),
                     "constant programs": pct(row.constant_share), **thresholds})
    return pd.DataFrame(rows).to_markdown(index=False) + ("\n\nThreshold columns of our rows: meta-model (baseline).")


if __name__ == "__main__":
    sys.exit(main())
