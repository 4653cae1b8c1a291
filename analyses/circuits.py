"""Circuit-discovery benchmark tables: tier 1 (compiled programs) and tier 2 (injected runs).

    python analyses/circuits.py --tier 1 [--ablation zero] [--resamples 5] [--n 8]
    python analyses/circuits.py --tier 2 --run runs/demo [--run runs/tiny_count ...]

Writes results/circuits_tier{1,2}.csv and .md, and one ROC figure per target
(results/circuits_tier{1,2}_<target>_roc.html, not committed: regenerate with the command).
Every row of a table comes from one run of this code: ``--methods`` writes a table of those
methods only (rows of older code versions are never merged in).
"""

import argparse
import re
import time

import pandas as pd
from tables import RESULTS, write

from workbench.circuits.benchmark import benchmark, compiled_target, roc_figure, run_target, summary_row
from workbench.plots import write_figure

TIER1 = ["dyck", "count", "sum", "reverse", "frac_prevs", "sort", "hist"]
PASS = 0.90  # tier 2: a run below this strict test accuracy does not compute its program: not a result
QUALITY_PROMPTS = 200
METHODS = "acdc,eap,eap-ig,patch,random"
LARGE = 1000  # edges: above this, ACDC sweeps fewer thresholds (each costs one forward pass per edge)

COLUMNS = ["target", "level", "ablation", "truth_ablation", "nodes", "edges", "scored_edges", "true_edges",
           "writing_components", "method", "edge_auc", "edge_auc_std", "node_auc", "node_auc_std", "node_auc_writing",
           "faithfulness", "faithfulness_std", "faithfulness_at_truth_size", "score_rank_stability", "ig_steps",
           "ig_nonzero_steps", "seconds", "resamples", "task_accuracy", "decoded_agreement"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", type=int, choices=[1, 2], required=True)
    parser.add_argument("--run", action="append", default=[], help="tier 2: a TI run folder (repeatable)")
    parser.add_argument("--programs", default=",".join(TIER1), help="tier 1: tasks and tracr lib programs")
    parser.add_argument("--resamples", type=int, default=5)
    parser.add_argument("--n", type=int, default=8, help="clean (and corrupt) prompts per resample")
    parser.add_argument("--methods", default=METHODS, help="methods (a table of these methods only)")
    parser.add_argument("--ablation", choices=["zero", "mean", "resample"],
                        help="default: zero for tier 1, resample for tier 2; the truth is the one for this ablation")
    args = parser.parse_args()
    if args.tier == 2 and not args.run:
        raise SystemExit("--tier 2 needs at least one --run RUN_DIR (a TI run)")
    ablation = args.ablation or ("zero" if args.tier == 1 else "resample")
    targets = ([lambda p=p: compiled_target(p, ablation) for p in args.programs.split(",")] if args.tier == 1
               else [lambda r=r: run_target(r, ablation) for r in args.run])
    tables, notes = [], []
    for run, make in zip(args.run or [None] * len(targets), targets):
        quality = run_quality(run) if args.tier == 2 else None
        if quality is not None and quality[0] < PASS:
            notes.append(f"{run}: not published — {quality[0]:.1%} strict test accuracy (< {PASS:.0%}): the model "
                         "does not compute its program, so the transported truth does not describe it")
            print(notes[-1], flush=True)
            continue
        target = make()
        print(target.describe(), flush=True)
        thresholds = 3 if len(target.graph.edges) > LARGE else 10
        start = time.perf_counter()
        summary, _, curves = benchmark(target, args.methods, resamples=args.resamples, n=args.n, progress=True,
                                       options={"acdc": {"n_thresholds": thresholds}})
        row = summary_row(target, summary)
        if quality is not None:
            row["task_accuracy"], row["decoded_agreement"] = quality
        tables.append(row.reindex(columns=COLUMNS))
        notes.append(f"{target.name}: ACDC swept {thresholds} thresholds; {time.perf_counter() - start:.0f} s "
                     "for all methods and resamples")
        slug = re.sub(r"[^a-z0-9]+", "_", target.name.lower()).strip("_")
        if args.methods == METHODS:
            write_figure(roc_figure(curves, target.name), RESULTS / f"circuits_tier{args.tier}_{slug}_roc")
    truth = (f"structural truth of the compiled program (head level) for {ablation} ablation (`truth_ablation`)"
             if args.tier == 1 else
             f"compiled truth for {ablation} ablation (`truth_ablation`) transported through the run's layer map "
             "(layer level); layers after the last aligned block and the edges into the output are not scored")
    if not tables:
        raise SystemExit("no run passed its task: nothing to publish (" + "; ".join(notes) + ")")
    table = pd.concat(tables).round(4)
    if args.tier == 1:
        table = table.drop(columns=["task_accuracy", "decoded_agreement"])
    write(table, f"circuits_tier{args.tier}", f"Circuit discovery, tier {args.tier}",
          [truth, f"{args.resamples} resamples of {args.n} clean + {args.n} corrupt inputs; means, `_std` = spread "
           "over resamples; `score_rank_stability` = mean Spearman correlation of edge scores between resamples",
           "every score is computed over the scored edges and components only (the others get no score); a "
           "method that ranks nothing gets AUC 0.5 and the faithfulness of a random ranking (ties broken at random)",
           "`node_auc` = over every scored component; `node_auc_writing` = over those that write something "
           "(padding heads and empty MLPs left out; empty when all of them are in the circuit, as on every compiled "
           "program)",
           "faithfulness = MIB-style area under (L_empty - L_circuit)/(L_empty - L_full) over circuit sizes "
           "0-100 % of the scored edges; it can be negative when a partial circuit is worse than the empty one "
           "(compiled MLPs fed partial inputs can output huge values: sum's random circuits reach a loss 1e5 times "
           "the empty circuit's)",
           "`ig_steps` = EAP-IG's points along the path, `ig_nonzero_steps` = those with a nonzero gradient (1: "
           "EAP-IG is EAP / steps, see `workbench.circuits.methods.eap_ig`)",
           "seconds = wall-clock per method and resample on 2 CPU cores"]
          + ([f"`task_accuracy` = the run's strict greedy exact match on {QUALITY_PROMPTS} test prompts, "
              "`decoded_agreement` = its decoded-variable agreement with the compiled program (mean over every "
              f"variable at every aligned layer, 50 prompts); runs below {PASS:.0%} are not published"]
             if args.tier == 2 else []) + notes)


if __name__ == "__main__":
    main()
