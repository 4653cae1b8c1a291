"""EAP vs ACDC on the same model and data: wall-clock ratio and both AUCs against the known circuit.

    python benchmarks/circuits_bench.py [--targets dyck,count,...] [--n 16] [--thresholds 10] [--batch 10]

Each target is a compiled program (tier-1 truth, zero ablation); ACDC sweeps ``--thresholds``
thresholds (its ROC needs the sweep), ``--batch`` of its passes in lockstep with their trials
stacked along the batch (``acdc_batch``; 1: one pass after the other, the same scores), EAP is
one forward and one backward pass. Both run on one ``Experiment`` in the same process,
interleaved. ``acdc_s_per_edge`` / ``eap_s_per_edge``: seconds per edge of the graph (ACDC:
the whole sweep). Targets: every tier-1 target of ``analyses/circuits.py`` (the 3 task programs and
the 15 tracr library programs). The bar (issue 18): EAP at least 100x faster at an edge AUC no more
than 0.05 below ACDC's (``meets_target``). Writes benchmarks/results/circuits.csv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.circuits import Experiment
from workbench.circuits.benchmark import compiled_target
from workbench.circuits.methods import acdc, eap
from workbench.circuits.scoring import auc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analyses"))
from circuits import TIER1  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "circuits.csv"
SPEEDUP, AUC_MARGIN = 100, 0.05


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default=",".join(TIER1))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--thresholds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10, help="ACDC passes run in lockstep (1: unbatched)")
    parser.add_argument("--repeats", type=int, default=3, help="EAP timings (median; ACDC runs once)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.targets.split(","):
        target = compiled_target(name)
        experiment = Experiment.from_data(target.model, target.graph, target.draw(args.n, 0), target.ablation)
        eap(experiment)  # warm-up
        eap_times, eap_scores = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            eap_scores = eap(experiment)
            eap_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        acdc_scores = acdc(experiment, n_thresholds=args.thresholds, batch=args.batch)
        acdc_seconds = time.perf_counter() - start
        eap_seconds = sorted(eap_times)[len(eap_times) // 2]
        edges = len(target.graph.edges)
        row = dict(target=target.name, edges=edges, n=args.n, acdc_thresholds=args.thresholds,
                   acdc_s=round(acdc_seconds, 3), eap_s=round(eap_seconds, 4),
                   speedup=round(acdc_seconds / eap_seconds, 1),
                   acdc_edge_auc=round(auc(target.truth.edges, acdc_scores.edges), 4),
                   eap_edge_auc=round(auc(target.truth.edges, eap_scores.edges), 4))
        row["meets_target"] = row["speedup"] >= SPEEDUP and row["eap_edge_auc"] >= row["acdc_edge_auc"] - AUC_MARGIN
        row.update(acdc_batch=args.batch, acdc_s_per_edge=round(acdc_seconds / edges, 5),
                   eap_s_per_edge=float(f"{eap_seconds / edges:.3g}"))
        rows.append(row)
        print(f"{target.name} ({edges} edges): ACDC {acdc_seconds:.2f} s (batch {args.batch}), "
              f"EAP {1000 * eap_seconds:.1f} ms -> EAP {row['speedup']}x faster (target >= {SPEEDUP}x); "
              f"edge AUC ACDC {row['acdc_edge_auc']}, EAP {row['eap_edge_auc']}", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(RESULTS, index=False)  # after every target: a killed run keeps what it measured
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
