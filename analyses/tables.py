"""Shared machinery of the paper-table scripts: evaluate the original model and the given runs
on the same prompts, then lay the numbers out next to the paper's."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from paper import METHOD_NAMES  # noqa: E402

from workbench.evaluate.fewshot import evaluate_benchmarks  # noqa: E402
from workbench.evaluate.perplexity import perplexity, shakespeare_lines  # noqa: E402
from workbench.evaluate.runs import evaluate_run, task_table  # noqa: E402
from workbench.inject.config import InjectionConfig  # noqa: E402
from workbench.inject.trainer import finished  # noqa: E402
from workbench.models import load_model  # noqa: E402
from workbench.tasks import TASKS  # noqa: E402

RESULTS = Path(__file__).parent.parent / "results"


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="smollm2-135m", help="the unedited model ('no edit' rows)")
    parser.add_argument("--run", action="append", default=[], metavar="METHOD:TASK=RUN_DIR",
                        help="a training run, e.g. ti:dyck=runs/demo (repeatable); missing ones are 'not run'")
    parser.add_argument("--runs", type=Path, metavar="DIR",
                        help="every DIR/<task>_<method> run folder (a preset's runs, e.g. runs/presets/smollm2)")
    parser.add_argument("--n", type=int, default=100, help="prompts per split/suite")
    parser.add_argument("--ppl-lines", type=int, default=200)
    parser.add_argument("--shakespeare", help="Tiny-Shakespeare input.txt (default: offline Gutenberg plays)")
    return parser.parse_args()


def bad_input(message: str) -> None:
    """One line on stderr and exit code 2, as the command line does for bad input."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_runs(specs: list[str]) -> dict[tuple[str, str], Path]:
    runs = {}
    for spec in specs:
        key, _, path = spec.partition("=")
        method, _, task = key.partition(":")
        if method not in ("ti", "ft") or task not in TASKS or not path:
            bad_input(f"bad --run {spec!r}: use ti|ft:dyck|count|sum=RUN_DIR")
        runs[(method, task)] = Path(path)
    return runs


def preset_runs(folder: Path | None) -> dict[tuple[str, str], Path]:
    """The runs of one preset folder, named ``<task>_<method>`` as ``benchmarks/inject_bench.py`` makes them."""
    if folder is None:
        return {}
    if not folder.is_dir():
        bad_input(f"--runs {folder}: no such folder; train a preset first (benchmarks/inject_bench.py)")
    return {(method, task): folder / f"{task}_{method}" for task in TASKS for method in ("ti", "ft")
            if (folder / f"{task}_{method}" / "config.json").exists()}


def collect(args: argparse.Namespace, suites: bool, benchmarks: bool) -> list[dict]:
    """One record per (task, method) with the task table, perplexity and benchmark results."""
    runs = {**preset_runs(args.runs), **parse_runs(args.run)}  # bad input fails before any evaluation
    records = []
    original = load_model(args.model)
    lines, corpus = shakespeare_lines(args.shakespeare, args.ppl_lines)
    base_ppl = perplexity(original.model, original.tokenizer, lines)
    base_bench = evaluate_benchmarks(original.model, original.tokenizer, {}) if benchmarks else {}
    for name, task in TASKS.items():
        table = task_table(original, task, args.n, list(task.suites()) if suites else [])
        records.append(dict(task=name, method="none", model=original.name, finished=True, steps=0, table=table,
                            perplexity=base_ppl["per_line_ppl"], corpus=corpus, **base_bench))
    for (method, name), run_dir in runs.items():
        result = evaluate_run(run_dir, suites="all" if suites else "", n=args.n, shakespeare=args.shakespeare,
                              ppl_lines=args.ppl_lines)
        # a run stopped before its plan and its targets (resumable) is shown as such, never as a result
        done = finished(run_dir, InjectionConfig.from_file(run_dir / "config.json"))
        records.append(dict(task=name, method=method, model=result["model"], finished=done,
                            steps=str(result["step"]) if done else f"{result['step']} (unfinished)",
                            table=result["table"], perplexity=result["perplexity"]["per_line_ppl"],
                            corpus=result["perplexity_corpus"],
                            **{b: result[b] for b in ("sst2", "mrpc", "lambada") if benchmarks}))
    return records


def find(records: list[dict], task: str, method: str) -> dict | None:
    """The record of (task, method), or None when that run was not given."""
    return next((r for r in records if r["task"] == task and r["method"] == method), None)


def percent(value) -> str:
    return f"{100 * value:.1f}" if isinstance(value, float) else str(value)


def unfinished_notes(records: list[dict]) -> list[str]:
    """The note a table needs when one of its runs is unfinished (none otherwise)."""
    if all(r["finished"] for r in records):
        return []
    return ["unfinished: the run stopped before its planned steps without reaching its targets; its numbers are "
            "of that checkpoint, a model that does not compute its program"]


def write(frame: pd.DataFrame, stem: str, title: str, notes: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / f"{stem}.csv", index=False)
    text = f"# {title}\n\n" + frame.to_markdown(index=False) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)
    print(f"wrote {RESULTS / stem}.csv and .md")


def method_name(method: str) -> str:
    return METHOD_NAMES[method]


def dump(records: list[dict]) -> str:
    return json.dumps([{k: v for k, v in r.items() if k != "table"} for r in records], default=str)
