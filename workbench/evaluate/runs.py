"""Evaluate a training run (or its original model): task accuracy on the test split and every
OOD suite next to the compiled program's, perplexity, and the few-shot benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from safetensors.torch import load_file

from workbench.errors import WorkbenchError
from workbench.evaluate.accuracy import compiled_correct, greedy_verdicts
from workbench.evaluate.fewshot import evaluate_benchmarks
from workbench.evaluate.perplexity import perplexity, shakespeare_lines
from workbench.inject import checkpoint
from workbench.inject.config import InjectionConfig
from workbench.models import LoadedModel, load_model
from workbench.tasks import Task, get_task


def load_run(run_dir: str | Path, original: bool = False) -> tuple[LoadedModel, InjectionConfig, int]:
    """The run's model at its latest checkpoint (or the untouched original), its config and step."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise WorkbenchError(f"{run_dir} is not a run folder (no config.json); create one with "
                             f"`workbench train --out {run_dir} ...`")
    config = InjectionConfig.from_file(run_dir / "config.json")
    loaded = load_model(config.model, **config.model_kwargs())
    if original:
        return loaded, config, 0
    folder = checkpoint.latest(run_dir)
    if folder is None:
        raise WorkbenchError(f"{run_dir} has no checkpoint yet; train it longer or evaluate with --original")
    checkpoint.verify(folder)
    loaded.model.load_state_dict(load_file(folder / "model.safetensors"))
    return loaded, config, json.loads((folder / "state.json").read_text())["step"]


def load_trained_map(run_dir: str | Path):
    """A TI run's model, config, trained linear map (d_model → compiled width), layer map and step."""
    from torch import nn

    from workbench.align import layer_map

    loaded, config, step = load_run(run_dir)
    if config.method != "ti":
        raise WorkbenchError(f"{run_dir} is an FT+KL run: it has no linear map to decode through; use a TI run")
    compiled = get_task(config.task).compile()
    linear_map = nn.Linear(loaded.model.cfg.d_model, compiled.model.cfg.d_model)
    linear_map.load_state_dict(load_file(checkpoint.latest(Path(run_dir)) / "map.safetensors"))
    linear_map.to(next(loaded.model.parameters()).device)
    mapping = layer_map(compiled.n_layers, loaded.model.cfg.n_layers, config.layer_map)
    return loaded, config, linear_map.requires_grad_(False), mapping, step


def task_table(loaded: LoadedModel, task: Task, n: int, suites: list[str], seed: int = 0) -> pd.DataFrame:
    """Accuracy of the model and of the compiled program on the same prompts, per split/suite.

    ``model_accuracy`` is strict greedy exact match (the answer, then a token that ends it: the
    headline, as the paper defines exact match); ``model_accuracy_lenient`` only compares the
    answer tokens (" 31" passes for 3). See :func:`workbench.evaluate.accuracy.greedy_verdicts`."""
    compiled = task.compile()
    groups = [("test", True, "in distribution", task.split("test", n, seed))]
    all_suites = task.suites()
    groups += [(name, all_suites[name].supported, all_suites[name].description, task.suite(name, n, seed))
               for name in suites]
    rows = []
    for name, supported, description, examples in groups:
        model_ok, model_lenient = greedy_verdicts(loaded.model, loaded.tokenizer, task, examples)
        compiled_ok = compiled_correct(task, compiled, loaded.tokenizer, examples)
        rows.append(dict(task=task.name, set=name, compiled_supports=supported, prompts=len(examples),
                         model_accuracy=sum(model_ok) / len(examples),
                         model_accuracy_lenient=sum(model_lenient) / len(examples),
                         compiled_accuracy=sum(compiled_ok) / len(examples), description=description))
    return pd.DataFrame(rows)


def evaluate_run(run_dir: str | Path, original: bool = False, suites: str = "all", n: int = 200,
                 shakespeare: str | None = None, ppl_lines: int = 300, benchmarks: dict | None = None,
                 benchmark_limit: int | None = None) -> dict:
    loaded, config, step = load_run(run_dir, original)
    task = get_task(config.task)
    names = list(task.suites()) if suites == "all" else [s for s in suites.split(",") if s]
    for name in names:
        if name not in task.suites():
            raise WorkbenchError(f"unknown suite {name!r} for {task.name}; available: {', '.join(task.suites())}")
    out = Path(run_dir) / ("eval_original" if original else "eval")
    out.mkdir(parents=True, exist_ok=True)
    table = task_table(loaded, task, n, names)
    lines, corpus = shakespeare_lines(shakespeare, ppl_lines)
    ppl = perplexity(loaded.model, loaded.tokenizer, lines)
    bench = evaluate_benchmarks(loaded.model, loaded.tokenizer, benchmarks or {}, benchmark_limit)
    summary = {"run": str(run_dir), "model": loaded.name, "method": "original" if original else config.method,
               "task": task.name, "step": step, "perplexity": ppl, "perplexity_corpus": corpus, **bench}
    table.to_csv(out / "accuracy.csv", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(
        f"# Evaluation of {run_dir} ({summary['method']}, {loaded.name}, step {step})\n\n"
        + table.to_markdown(index=False) + f"\n\nPer-line perplexity {ppl['per_line_ppl']:.2f} "
        f"(token-level {ppl['token_ppl']:.2f}) on {corpus}.\n\n"
        + "\n".join(f"- {k.upper()}: {v}" for k, v in bench.items()) + "\n")
    return {"table": table, **summary, "out": str(out)}
