"""Time to inject: trains each task at a CPU preset (TI and the FT+KL baseline at the same budget)
and records when the held-out strict accuracy first reaches the target.

    python benchmarks/inject_bench.py [--preset tiny|tiny-llama] [--tasks count,sum,dyck] [--methods ti,ft] [--runs runs/presets]

Each run goes to RUNS/<preset>/<task>_<method> (an unfinished one is resumed, a finished one is
only read), so the command can be re-run after an interruption. Writes
benchmarks/results/inject.csv: steps and minutes to the target (empty when never reached),
the last held-out accuracy (and decoded agreement, TI) and the total training time. `python analyses/injection.py` then
evaluates the same runs in full.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from workbench.inject.config import InjectionConfig
from workbench.curves import training_seconds
from workbench.inject.presets import BARS, preset
from workbench.inject.trainer import finished, train

RESULTS = Path(__file__).parent / "results" / "inject.csv"
TARGETS = {name: accuracy for name, (accuracy, _) in BARS.items()}


def summary(run_dir: Path, target: float) -> dict:
    metrics = pd.read_json(run_dir / "metrics.jsonl", lines=True)
    metrics["seconds"] = training_seconds(metrics)
    evals = metrics.dropna(subset=["eval_accuracy"]) if "eval_accuracy" in metrics else metrics.iloc[:0]
    hit = evals[evals["eval_accuracy"] >= target]
    return {"steps_to_target": int(hit["step"].iloc[0]) if len(hit) else None,
            "minutes_to_target": round(hit["seconds"].iloc[0] / 60, 1) if len(hit) else None,
            "last_eval_accuracy": float(evals["eval_accuracy"].iloc[-1]) if len(evals) else None,
            "last_eval_agreement": float(evals["eval_agreement"].iloc[-1]) if "eval_agreement" in evals else None,
            "steps": int(metrics["step"].iloc[-1]), "minutes": round(metrics["seconds"].iloc[-1] / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny", choices=sorted(TARGETS))
    parser.add_argument("--tasks", default="count,sum,dyck")
    parser.add_argument("--methods", default="ti,ft")
    parser.add_argument("--runs", type=Path, default=Path("runs/presets"))
    args = parser.parse_args()
    target = TARGETS[args.preset]
    rows = []
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            config = InjectionConfig(**{**preset(args.preset, task), "task": task, "method": method})
            run_dir = args.runs / args.preset / f"{task}_{method}"
            if not finished(run_dir, config):
                print(f"training {run_dir}", flush=True)
                train(config, run_dir, resume=True)
            rows.append({"preset": args.preset, "task": task, "method": method, "model": config.model,
                         "target": target, **summary(run_dir, target)})
            print(rows[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    if RESULTS.exists():  # keep the rows of the runs not trained or read this time
        previous = pd.read_csv(RESULTS)
        key = ["preset", "task", "method"]
        kept = previous.merge(table[key], on=key, how="left", indicator=True)["_merge"] == "left_only"
        table = pd.concat([previous[kept.to_numpy()], table], ignore_index=True).sort_values(key)
    table.to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
