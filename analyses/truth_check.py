"""Empirical check of the tier-1 truths: every true edge, cut alone, should change the output somewhere.

    python analyses/truth_check.py [--programs dyck,count,reverse ...] [--ablations zero,mean,resample] [--n 256]

For each compiled program and ablation, each edge is cut alone on ``n`` random inputs
(``workbench.circuits.benchmark.check_target``). Writes results/circuits_truth_check.{csv,md}: per
target and ablation the true edges no input needed (``inert``: e.g. a BOS fallback of a selector
that always matches) and, on graphs of at most ``LARGE`` edges where every scored edge is cut, the
edges outside the truth that did change an output (``missed``: the truth would be wrong about them).
The files are rewritten after every (program, ablation), and rows made by the same circuits code
(``code``, as in ``analyses/circuits.py``) on as many inputs are reused: a killed run resumes.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from circuits import LARGE, TIER1, code_version
from tables import RESULTS, write

from workbench.circuits.benchmark import check_target, compiled_target

ABLATIONS = ("zero", "mean", "resample")
STEM = "circuits_truth_check"


def check(spec: str, ablation: str, n: int) -> dict:
    """One row: how many edges were cut, how many of the true ones no input needed, how many others mattered."""
    target = compiled_target(spec, ablation)
    which = "all" if len(target.graph.edges) <= LARGE else "true"
    start = time.process_time()
    report = check_target(target, n=n, which=which)
    inert = report.edge[report.true & (report.changed == 0)].tolist()
    missed = report.edge[~report.true & (report.changed > 0)].tolist()
    return {"target": target.name, "ablation": ablation, "edges": len(target.graph.edges),
            "scored_edges": int(target.truth.edge_domain.sum()), "true_edges": int(target.truth.edges.sum()),
            "cut": which, "inputs": n, "inert_true_edges": len(inert),
            "missed_edges": len(missed) if which == "all" else None,
            "inert": "; ".join(inert), "missed": "; ".join(missed), "cpu_seconds": round(time.process_time() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", default=",".join(TIER1))
    parser.add_argument("--ablations", default=",".join(ABLATIONS))
    parser.add_argument("--n", type=int, default=256, help="random inputs each edge is cut on")
    args = parser.parse_args()
    code = code_version()
    rows = kept_rows(code, args.n)
    for spec in args.programs.split(","):
        for ablation in args.ablations.split(","):
            if any(r["program"] == spec and r["ablation"] == ablation for r in rows):
                print(f"{spec} ({ablation}): row reused from {RESULTS / STEM}.csv", flush=True)
                continue
            rows.append({"program": spec, **check(spec, ablation, args.n), "code": code})
            row = rows[-1]
            print(f"{row['target']} ({ablation}): {row['inert_true_edges']} of {row['true_edges']} true edges inert, "
                  f"{row['missed_edges']} missed; {row['cpu_seconds']} CPU s", flush=True)
            write_table(rows)


def kept_rows(code: str, n: int) -> list[dict]:
    """The rows already in the results file that the same code made on ``n`` inputs."""
    path = RESULTS / f"{STEM}.csv"
    if not path.exists():
        return []
    table = pd.read_csv(path, dtype={"code": str, "inert": str, "missed": str})
    if "code" not in table:
        return []
    table[["inert", "missed"]] = table[["inert", "missed"]].fillna("")
    table["missed_edges"] = table["missed_edges"].astype("Int64")
    return table[(table.code == code) & (table.inputs == n)].to_dict("records")


def write_table(rows: list[dict]) -> None:
    order = {spec: i for i, spec in enumerate(TIER1)}
    table = pd.DataFrame(rows).sort_values(["program", "ablation"], key=lambda column: column.map(
        lambda value: order.get(value, len(order)) if column.name == "program" else ABLATIONS.index(value)))
    table["missed_edges"] = table["missed_edges"].astype("Int64")
    write(table, STEM, "Tier-1 truths, checked edge by edge",
          [f"each edge cut alone (the target's ablation) on `inputs` random inputs; `cut` = which edges were cut: "
           f"`all` scored edges on graphs of at most {LARGE} edges, else only the `true` ones",
           "`inert` = true edges whose cut changed no output on any input of the set (the truth keeps them, no input "
           "needs them); `missed` = edges outside the truth whose cut changed an output (none expected)",
           "under mean and resample ablation the constant directions (`one`, BOS) are the same on every input, so "
           "edges that carry only them are not true there (issue 18, item 2)",
           "`code` = content hash of `workbench/circuits/*.py` that made the row; `cpu_seconds` = CPU time of the check"])


if __name__ == "__main__":
    main()
