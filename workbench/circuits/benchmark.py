"""Run every method on a target over several data resamples; tables and the ROC figure.

A *target* is a model with its graph, truth and data: a compiled program (tier 1: the
three tasks or any tracr library program, head level, zero ablation by default) or an
injected TI run (tier 2: layer level, resample ablation by default). Its truth is the one
for its ablation (``Truth.ablation``, the ``truth_ablation`` column of the tables). Scores, AUCs,
faithfulness and rank stability are computed over the truth's scored domain only
(``workbench.circuits.scoring``).

>>> target = compiled_target("reverse")
>>> summary, per_resample, curves = benchmark(target, "eap,random", resamples=1, n=4)
>>> bool(summary.loc["eap", "edge_auc"] > summary.loc["random", "edge_auc"])
True
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench.circuits.data import CircuitData, lib_data, run_data, task_compiled_data
from workbench.circuits.graph import Graph, build_graph
from workbench.circuits.methods import get_methods
from workbench.circuits.patching import Experiment
from workbench.circuits.scoring import auc, cpr_cmd, faithfulness, rank_stability, roc
from workbench.circuits.truth import Truth, check_truth, tier1, tier2
from workbench.errors import WorkbenchError
from workbench.plots import roc_figure, write_figure


@dataclasses.dataclass
class Target:
    name: str
    model: object  # HookedTransformer
    graph: Graph
    truth: Truth
    draw: Callable[[int, int], CircuitData]  # (n, seed) -> data
    ablation: str

    def describe(self) -> str:
        truth = self.truth
        return (f"{self.name} (tier {truth.tier}): {self.graph}; truth for {truth.ablation} ablation: "
                f"{int(truth.edges.sum())} of {int(truth.edge_domain.sum())} scored edges, {int(truth.nodes.sum())} "
                f"of {int(truth.node_domain.sum())} scored components ({int(_writing(truth).sum())} write something); "
                f"{self.ablation} ablation")


def check_finite(model: torch.nn.Module, what: str, fix: str) -> None:
    """Refuse a model with NaN or infinite weights: every score computed on it would be meaningless."""
    for name, tensor in model.named_parameters():  # buffers hold -inf masks on purpose
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise WorkbenchError(f"{what} has {bad} NaN or infinite weights in {name}, so no circuit can be scored "
                                 f"on it; {fix}")


def compiled_target(name: str, ablation: str = "zero") -> Target:
    """Tier 1: a task (``dyck``, ``count``, ``sum``) or a tracr library program (``reverse``, ``make_sort`` …).

    A library program named like a task (tracr's ``make_count`` and the ``count`` task) is addressed and
    named ``make_count``, so the two never share a row name."""
    from workbench.compiled import compile_lib, get_lib_program
    from workbench.tasks import TASKS

    if name in TASKS:
        task = TASKS[name]
        compiled = task.compile()
        draw = lambda n, seed: task_compiled_data(task, compiled, n, seed)  # noqa: E731
    else:
        program = get_lib_program(name).name
        compiled = compile_lib(program)
        name = f"make_{program}" if program in TASKS else program
        draw = lambda n, seed: lib_data(compiled, program, n, seed)  # noqa: E731
    check_finite(compiled.model, f"the compiled model of {name}", "recompile it with --no-cache / a fresh cache")
    graph = build_graph(compiled.model, "head")
    return Target(name, compiled.model, graph, tier1(compiled, graph, ablation), draw, ablation)


def run_target(run_dir: str | Path, ablation: str = "resample") -> Target:
    """Tier 2: an injected TI run at its latest checkpoint, layer-level graph, truth through its layer map."""
    from workbench.evaluate.runs import load_run
    from workbench.inject.config import InjectionConfig
    from workbench.align import layer_map
    from workbench.tasks import get_task

    config_file = Path(run_dir) / "config.json"
    if config_file.exists() and InjectionConfig.from_file(config_file).method != "ti":
        raise WorkbenchError(f"{run_dir} is an FT+KL run: no layer map places the program in it, so there is no "
                             "tier-2 truth; use a TI run")
    loaded, config, step = load_run(run_dir)
    check_finite(loaded.model, f"the model of {run_dir} at step {step}",
                 "its training diverged: retrain with lower learning rates")
    task = get_task(config.task)
    compiled = task.compile()
    mapping = layer_map(compiled.n_layers, loaded.model.cfg.n_layers, config.layer_map)
    graph = build_graph(loaded.model, "layer")
    name = f"{Path(run_dir).name} ({config.task}, {config.model}, step {step})"
    return Target(name, loaded.model, graph, tier2(compiled, mapping, graph, ablation),
                  lambda n, seed: run_data(loaded, task, n, seed), ablation)


def _writing(truth: Truth):
    return truth.node_domain if truth.writing is None else truth.node_domain & truth.writing


def benchmark(target: Target, methods: str | list[str] | dict, resamples: int = 5, n: int = 16,
              progress: bool = False, options: dict[str, dict] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every method on ``resamples`` independent draws of ``n`` clean/corrupt rows.

    Returns the summary (one row per method: means, spreads over resamples, time), the
    per-resample rows, and the ROC curves of the first resample. ``node_auc`` is over every
    scored component, ``node_auc_writing`` over those that write something (padding heads and
    empty MLPs are trivially false); ``cpr`` and ``cmd`` are MIB's areas of the faithfulness curve
    (``scoring.cpr_cmd``). ``methods`` may be a dict name -> method (custom methods).
    """
    if resamples < 1:
        raise WorkbenchError("resamples must be at least 1")
    chosen = get_methods(methods)
    options = options or {}
    truth = target.truth
    rows, curves, edge_scores = [], [], {m: [] for m in chosen}
    bar = tqdm(total=resamples * len(chosen), desc=target.name, disable=not progress)
    for seed in range(resamples):
        experiment = Experiment.from_data(target.model, target.graph, target.draw(n, seed), target.ablation,
                                          torch.from_numpy(truth.edge_domain))
        for name, method in chosen.items():
            bar.set_postfix_str(f"resample {seed + 1}/{resamples}: {name}")
            start, cpu_start = time.perf_counter(), time.process_time()
            scores = method(experiment, seed=seed, progress=progress, **options.get(name, {}))
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            cpr, cmd = cpr_cmd(faithfulness(experiment, scores.edges, seed=seed))
            edge_scores[name].append(scores.edges)
            # CPU seconds as well: on a shared machine the wall clock measures the load as much as the method
            rows.append({"method": name, "resample": seed, "seconds": seconds, "cpu_seconds": cpu_seconds,
                         "edge_auc": auc(truth.edges, scores.edges, truth.edge_domain),
                         "node_auc": auc(truth.nodes, scores.nodes, truth.node_domain),
                         "node_auc_writing": auc(truth.nodes, scores.nodes, _writing(truth)),
                         "cpr": cpr, "cmd": cmd,
                         "faithfulness_at_truth_size": _at_truth_size(experiment, truth, scores, seed),
                         **scores.info})
            if seed == 0:
                for kind, t, s, d in (("edges", truth.edges, scores.edges, truth.edge_domain),
                                      ("nodes", truth.nodes, scores.nodes, truth.node_domain)):
                    fpr, tpr = roc(t, s, d)
                    curves += [{"method": name, "kind": kind, "fpr": x, "tpr": y} for x, y in zip(fpr, tpr)]
            bar.update(1)
    bar.close()
    per_resample = pd.DataFrame(rows)
    grouped = per_resample.groupby("method", sort=False)
    columns = ["edge_auc", "node_auc", "node_auc_writing", "cpr", "cmd", "faithfulness_at_truth_size", "seconds",
               "cpu_seconds"]
    # per-method facts: EAP-IG's steps, nonzero steps, completeness; EAP-GP's path; edge pruning's circuit
    columns += [c for c in per_resample.columns if c.startswith(("ig_", "gp_", "ep_"))]
    summary = grouped[columns].mean()
    for column in ("edge_auc", "node_auc", "node_auc_writing", "cpr", "cmd"):
        summary[f"{column}_std"] = grouped[column].std(ddof=0)
    summary["score_rank_stability"] = [rank_stability(edge_scores[m], truth.edge_domain) for m in summary.index]
    summary.insert(0, "resamples", resamples)
    return summary, per_resample, pd.DataFrame(curves)


def _at_truth_size(experiment: Experiment, truth: Truth, scores, seed: int = 0) -> float:
    """Faithfulness of the circuit as large as the true one (its top ``|truth|`` scored edges)."""
    size = (truth.edges & truth.edge_domain).sum() / truth.edge_domain.sum()
    return faithfulness(experiment, scores.edges, (size,), seed=seed)[0]


def check_target(target: Target, n: int = 256, seed: int = 1000, which: str = "true") -> pd.DataFrame:
    """``truth.check_truth`` on ``n`` fresh inputs of the target under its ablation: rows with ``true`` and
    ``changed == 0`` are true edges no input of the set needs (see ``check_truth``)."""
    return check_truth(target.model, target.graph, target.truth, target.draw(n, seed), target.ablation, which)


def summary_row(target: Target, summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the target's description columns in front (one results-table block)."""
    table = summary.reset_index()
    truth = target.truth
    front = {"target": target.name, "level": target.graph.level, "ablation": target.ablation,
             "truth_ablation": truth.ablation, "nodes": len(target.graph.nodes),
             "edges": len(target.graph.edges), "scored_edges": int(truth.edge_domain.sum()),
             "true_edges": int(truth.edges.sum()), "true_components": int(truth.nodes.sum()),
             "writing_components": int(_writing(truth).sum())}
    for position, (key, value) in enumerate(front.items()):
        table.insert(position, key, value)
    return table


def write_results(out: str | Path, target: Target, summary: pd.DataFrame, per_resample: pd.DataFrame,
                  curves: pd.DataFrame) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary_row(target, summary).to_csv(out / "summary.csv", index=False)
    per_resample.to_csv(out / "resamples.csv", index=False)
    curves.to_csv(out / "roc.csv", index=False)
    written = [out / "summary.csv", out / "resamples.csv", out / "roc.csv"]
    return written + write_figure(roc_figure(curves, f"ROC against the known circuit: {target.name}"), out / "roc")
