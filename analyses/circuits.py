"""Circuit-discovery benchmark tables: tier 1 (compiled programs) and tier 2 (injected runs).

    python analyses/circuits.py --tier 1 [--programs dyck,count,reverse ...] [--ablation zero] [--resamples 5] [--n 8]
    python analyses/circuits.py --tier 2 --run runs/presets/tiny/count_ti [--run RUN ...]

Writes results/circuits_tier{1,2}.csv and .md, and one ROC figure per target computed this time
(results/circuits_tier{1,2}_<target>_roc.html, not committed: regenerate with the command).
``analyses/leaderboard.py`` runs both tiers through :func:`tier_table` and lays the same rows out
as one leaderboard.

Each target's rows are kept in ``results/circuits_rows/`` (committed: a run's rows outlive its
weights, which are not) and reused only when everything that made them is the same: the circuits
code (``workbench/circuits/*.py``, by content hash), the target (for a run, its checkpoint; a run
whose folder is not on this machine is taken as the one its rows were made on), the methods,
resamples, inputs, ablation and ACDC sweep. So a killed run redoes only the targets it had not
finished, and rows of another code version are never reused or merged in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import pandas as pd
from tables import RESULTS, bad_input, write

from workbench.circuits.benchmark import benchmark, compiled_target, roc_figure, run_target, summary_row
from workbench.compiled.lib_programs import LIB_PROGRAMS
from workbench.plots import write_figure
from workbench.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
ROWS = ROOT / "results" / "circuits_rows"
TASK_PROGRAMS = ["dyck", "count", "sum"]
# every tracr library program; the one named like a task is addressed as tracr names it (make_count)
TIER1 = TASK_PROGRAMS + [f"make_{p}" if p in TASKS else p for p in LIB_PROGRAMS]
PASS = 0.90  # tier 2: a run below this strict test accuracy does not compute its program: not a result
QUALITY_PROMPTS = 200
METHODS = "acdc,eap,eap-ig,eap-gp,edge-pruning,patch,random"
LARGE = 1000  # edges: above this, ACDC sweeps fewer thresholds (each costs one forward pass per edge)

COLUMNS = ["target", "level", "ablation", "truth_ablation", "nodes", "edges", "scored_edges", "true_edges",
           "writing_components", "method", "edge_auc", "edge_auc_std", "node_auc", "node_auc_std", "node_auc_writing",
           "node_auc_writing_std", "cpr", "cpr_std", "cmd", "cmd_std", "faithfulness_at_truth_size",
           "score_rank_stability", "ig_steps", "ig_nonzero_steps", "seconds", "cpu_seconds", "resamples",
           "acdc_thresholds", "task_accuracy", "decoded_agreement"]
KEY = ["code", "spec", "checkpoint", "methods", "resamples", "n", "ablation", "acdc_thresholds"]


def code_version() -> str:
    """Content hash of the code that computes the rows (``workbench/circuits/*.py``)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "workbench" / "circuits").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def run_quality(run_dir: str) -> tuple[float, float]:
    """A TI run's strict greedy exact match on test prompts and its decoded-variable agreement (mean over
    every variable at every aligned layer): whether the model computes the program tier 2 assumes."""
    from workbench.decode import agreement
    from workbench.evaluate.accuracy import answer_correct
    from workbench.evaluate.runs import load_trained_map
    from workbench.tasks import get_task

    loaded, config, linear_map, mapping, _ = load_trained_map(run_dir)
    task = get_task(config.task)
    examples = task.split("test", QUALITY_PROMPTS)
    accuracy = sum(answer_correct(loaded.model, loaded.tokenizer, task, examples)) / len(examples)
    table = agreement(loaded.model, linear_map, loaded.tokenizer, task, task.compile(), examples[:50], mapping)
    return accuracy, float(table.stack().mean())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _checkpoint(tier: int, spec: str) -> str:
    """Tier 2: the run's checkpoint the rows are for, ``<folder>@<weights>`` (the start of the SHA-256 of the
    model's and the map's weights in its manifest: a run retrained to the same step is other weights); tier 1: none."""
    from workbench.inject import checkpoint

    if tier == 1:
        return ""
    latest = checkpoint.latest(Path(spec))
    if latest is None:
        return ""
    sums = json.loads((latest / "manifest.json").read_text())
    return f"{latest.name}@{sums['model.safetensors'][:12]}{sums.get('map.safetensors', '')[:12]}"


def _key(tier: int, spec: str, edges: int, ablation: str, methods: str, resamples: int, n: int,
         large_resamples: int | None) -> dict:
    """What made a target's rows (``KEY``): a graph of more than ``LARGE`` edges gets ``large_resamples``
    resamples (when given) and a 3-threshold ACDC sweep instead of 10."""
    large = edges > LARGE
    return dict(code=code_version(), spec=spec, checkpoint=_checkpoint(tier, spec), methods=methods,
                resamples=large_resamples if large and large_resamples else resamples, n=n, ablation=ablation,
                acdc_thresholds=3 if large else 10)


def target_rows(tier: int, spec: str, ablation: str, methods: str = METHODS, resamples: int = 5, n: int = 8,
                large_resamples: int | None = None, rows: Path = ROWS, figures: Path | None = RESULTS,
                compute: bool = True) -> tuple[pd.DataFrame | None, str | None]:
    """One target's table rows (``COLUMNS`` and the ``KEY`` that made them), from ``rows`` when they were
    made with the same code and settings, else computed and stored there.

    ``spec`` is a tier-1 program (``TIER1``) or a tier-2 run folder. A run below ``PASS`` task accuracy
    gets no rows (None) and a note for the table saying why, as does a target with no stored rows
    when ``compute`` is off. ``figures``: the folder of the ROC figure of a target computed now (None:
    no figure).
    """
    cache = rows / f"tier{tier}_{_slug(spec)}.csv"
    if cache.exists():
        cached = pd.read_csv(cache, dtype={"code": str, "spec": str, "checkpoint": str}, keep_default_na=False,
                             na_values=[""])
        cached["checkpoint"] = cached["checkpoint"].fillna("")
        stored = cached[KEY].iloc[0].to_dict()
        wanted = _key(tier, spec, int(cached.edges.iloc[0]), ablation, methods, resamples, n, large_resamples)
        elsewhere = tier == 2 and not Path(spec).is_dir()
        if elsewhere:
            wanted["checkpoint"] = stored["checkpoint"]
        if stored == wanted:
            print(f"{cached.target.iloc[0]}: rows reused from {cache}"
                  + (" (the run is not on this machine)" if elsewhere else ""), flush=True)
            return cached, None
    if not compute:
        return None, f"{spec}: not computed yet (no stored rows for this code and these settings)"
    if tier == 2 and not Path(spec).is_dir():
        stored = "its stored rows were made by other code or settings" if cache.exists() else "no stored rows"
        return None, (f"{spec}: not computed ({stored}, and the run is not on this machine: train it with "
                      "`python benchmarks/inject_bench.py`)")
    quality = run_quality(spec) if tier == 2 else None
    if quality is not None and quality[0] < PASS:
        return None, (f"{spec}: not published — {quality[0]:.1%} strict test accuracy (< {PASS:.0%}): the model "
                      "does not compute its program, so the transported truth does not describe it")
    target = compiled_target(spec, ablation) if tier == 1 else run_target(spec, ablation)
    print(target.describe(), flush=True)
    key = _key(tier, spec, len(target.graph.edges), ablation, methods, resamples, n, large_resamples)
    start = time.perf_counter()
    summary, _, curves = benchmark(target, methods, resamples=key["resamples"], n=n, progress=True,
                                   options={"acdc": {"n_thresholds": key["acdc_thresholds"]}})
    table = summary_row(target, summary)
    if quality is not None:
        table["task_accuracy"], table["decoded_agreement"] = quality
    table = table.reindex(columns=COLUMNS).assign(**key)
    rows.mkdir(parents=True, exist_ok=True)
    table.to_csv(cache, index=False)
    print(f"{target.name}: {time.perf_counter() - start:.0f} s for all methods and resamples", flush=True)
    if figures is not None:
        write_figure(roc_figure(curves, target.name), figures / f"circuits_tier{tier}_{_slug(target.name)}_roc")
    return table, None


def tier_table(tier: int, specs: list[str], ablation: str, methods: str = METHODS, resamples: int = 5, n: int = 8,
               large_resamples: int | None = None, rows: Path = ROWS, figures: Path | None = RESULTS,
               compute: bool = True) -> tuple[pd.DataFrame | None, list[str]]:
    """Every target's rows (:func:`target_rows`) as one table (None: no target published), and the notes
    on the runs left out."""
    tables, notes = [], []
    for spec in specs:
        table, note = target_rows(tier, spec, ablation, methods, resamples, n, large_resamples, rows, figures,
                                  compute)
        if note is not None:
            print(note, flush=True)
            notes.append(note)
        if table is not None:
            tables.append(table[COLUMNS])
    if not tables:
        return None, notes
    table = pd.concat(tables, ignore_index=True).round(4)
    return (table.drop(columns=["task_accuracy", "decoded_agreement"]) if tier == 1 else table), notes


def write_tier(tier: int, table: pd.DataFrame, notes: list[str], ablation: str, n: int) -> None:
    """results/circuits_tier{tier}.csv and .md with the notes that say what every column means."""
    truth = (f"structural truth of the compiled program (head level) for {ablation} ablation (`truth_ablation`)"
             if tier == 1 else
             f"compiled truth for {ablation} ablation (`truth_ablation`) transported through the run's layer map "
             "(layer level); layers after the last aligned block and the edges into the output are not scored")
    write(table, f"circuits_tier{tier}", f"Circuit discovery, tier {tier}",
          [truth, f"`resamples` resamples of {n} clean + {n} corrupt inputs (fewer on graphs of more than {LARGE} "
           f"edges, where ACDC also sweeps fewer thresholds: `acdc_thresholds`); means, `_std` = spread over "
           "resamples; `score_rank_stability` = mean Spearman correlation of edge scores between resamples",
           "every score is computed over the scored edges and components only (the others get no score); a "
           "method that ranks nothing gets AUC 0.5 and the faithfulness of a random ranking (ties broken at random)",
           "`node_auc` = over every scored component; `node_auc_writing` = over those that write something "
           "(padding heads and empty MLPs left out; empty when all of them are in the circuit, as on every compiled "
           "program)",
           "MIB faithfulness: f = (L_empty - L_circuit)/(L_empty - L_full) of the top x of the scored edges at x = 0, "
           "0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100 %; `cpr` = area under f, `cmd` = area under |1 - f| (trapezoids "
           "over x); f can be negative when a partial circuit is worse than the empty one (compiled MLPs fed partial "
           "inputs can output huge values)",
           "`ig_steps` = EAP-IG's points along the path, `ig_nonzero_steps` = those with a nonzero gradient (1: "
           "EAP-IG is EAP / steps, see `workbench.circuits.methods.eap_ig`)",
           "`seconds` = wall-clock, `cpu_seconds` = CPU time of the process, per method and resample on a shared "
           "2-core CPU (the wall clock includes the other jobs' load)"]
          + ([f"`task_accuracy` = the run's strict greedy exact match on {QUALITY_PROMPTS} test prompts, "
              "`decoded_agreement` = its decoded-variable agreement with the compiled program (mean over every "
              f"variable at every aligned layer, 50 prompts); runs below {PASS:.0%} are not published"]
             if tier == 2 else []) + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", type=int, choices=[1, 2], required=True)
    parser.add_argument("--run", action="append", default=[], help="tier 2: a TI run folder (repeatable)")
    parser.add_argument("--programs", default=",".join(TIER1), help="tier 1: tasks and tracr lib programs")
    parser.add_argument("--resamples", type=int, default=5)
    parser.add_argument("--large-resamples", type=int, help=f"resamples on graphs of more than {LARGE} edges")
    parser.add_argument("--n", type=int, default=8, help="clean (and corrupt) prompts per resample")
    parser.add_argument("--methods", default=METHODS, help="methods (a table of these methods only)")
    parser.add_argument("--ablation", choices=["zero", "mean", "resample"],
                        help="default: zero for tier 1, resample for tier 2; the truth is the one for this ablation")
    args = parser.parse_args()
    if args.tier == 2 and not args.run:
        bad_input("--tier 2 needs at least one --run RUN_DIR (a TI run)")
    args.run = [str(Path(run)) for run in args.run]  # runs/x/ and runs/x are one run
    unknown = [run for run in args.run if not Path(run).is_dir() and not (ROWS / f"tier2_{_slug(run)}.csv").exists()]
    if unknown:
        bad_input(f"no run folder and no stored rows for --run {unknown[0]}: train it with "
                   "`python benchmarks/inject_bench.py` or give an existing TI run folder")
    ablation = args.ablation or ("zero" if args.tier == 1 else "resample")
    specs = args.programs.split(",") if args.tier == 1 else args.run
    table, notes = tier_table(args.tier, specs, ablation, args.methods, args.resamples, args.n, args.large_resamples)
    if table is None:
        bad_input("no target to publish: " + "; ".join(notes))
    write_tier(args.tier, table, notes, ablation, args.n)


if __name__ == "__main__":
    main()
