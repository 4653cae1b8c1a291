"""Zoo generation throughput: programs/s per core, accepted / rejected shares, 1 vs 2 Ray workers.

    python benchmarks/zoo_bench.py [--n 24] [--shard-size 12] [--workers 1,2] [--seed 0]
    python benchmarks/zoo_bench.py --zoo runs/zoo-50k [--workers 2]


Each run generates the same zoo (thesis settings: 15 raw ops, ≥ 7 kept, vocab 1..10, numeric
50 %, max_seq_len 10; faithfulness on 16 inputs, 5 s timeout, ≤ 40 weight tokens) in a fresh
folder on a fresh local Ray with ``workers`` CPUs, and records:

- wall seconds from the first task to the zoo (Ray's own start-up timed apart), programs
  attempted per wall-second, per wall-second per worker (the thesis: 55/s on 12 threads,
  ≈ 4.6 per core-second) and per CPU-second (generation, compile and check, in the workers and
  their compiling children: the per-core figure on a machine that other jobs share);
- the accepted share and each rejection reason's share of the attempts (too_short: raw draws
  rejected before a program was kept, per attempt); every finished shard counts, also those
  past the zoo's last program (the work was done);
- the speed-up of each worker count over the first.

Appends nothing: rewrites benchmarks/results/zoo.csv.

``--zoo DIR`` instead records a real zoo made by ``workbench zoo generate`` (resumed or not) in
benchmarks/results/zoo_full.csv: its programs and shares from ``summary.json``, and its wall time
from the shards' own completion times (``workbench.decompile.zoo.generation_time``: pauses longer
than ``--pause`` seconds, a killed run before its resume, left out and counted as stretches).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from workbench.decompile.zoo import ALL_REASONS, ZooConfig, completed_shards, generate_zoo, generation_time

RESULTS = Path(__file__).parent / "results" / "zoo.csv"
FULL = RESULTS.with_name("zoo_full.csv")


def run(workers: int, n: int, config: ZooConfig) -> dict:
    import ray

    out = Path(tempfile.mkdtemp(prefix=f"zoo_bench_{workers}_"))
    try:
        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
        ray_start = time.perf_counter() - started
        started = time.perf_counter()
        summary = generate_zoo(n, out / "zoo", config, workers=workers, progress=False)
        wall = time.perf_counter() - started
        shards = list(completed_shards(out / "zoo").values())  # all the work done, shards past the zoo's included
    finally:
        ray.shutdown()
        shutil.rmtree(out, ignore_errors=True)
    attempted = sum(s["attempted"] for s in shards)
    cpu = sum(s["cpu_seconds"] for s in shards)
    row = {"workers": workers, "programs": summary["programs"], "attempted": attempted, "shards": len(shards),
           "ray_start_s": round(ray_start, 2), "wall_s": round(wall, 2),
           "programs_per_s": round(attempted / wall, 3),
           "programs_per_s_per_worker": round(attempted / wall / workers, 3),
           "programs_per_cpu_s": round(attempted / max(cpu, 1e-9), 3),
           "accepted_share": round(sum(s["accepted"] for s in shards) / attempted, 3),
           "duplicates": summary["duplicates"]}
    for reason in ALL_REASONS:
        row[f"{reason}_share"] = round(sum(s["rejected"][reason] for s in shards) / attempted, 3)
    row["cpus_on_machine"] = os.cpu_count()
    row["load_average_1m"] = round(os.getloadavg()[0], 2)
    return row


def record_zoo(zoo: Path, workers: int, pause: float) -> dict:
    """The row of ``--zoo``: what ``generate_zoo`` wrote, timed by its shards' completion times."""
    summary = json.loads((zoo / "summary.json").read_text())
    shards = completed_shards(zoo).values()
    seconds, stretches = generation_time(zoo, pause)
    attempted = sum(s["attempted"] for s in shards)
    return {"programs": summary["programs"], "attempted_for_zoo": summary["attempted"],
            "accepted_share": round(summary["accepted"] / summary["attempted"], 3),
            "duplicates": summary["duplicates"], "too_short_draws": summary["rejected"]["too_short"],
            "shards_run": len(shards), "attempted_all_shards": attempted,
            "workers": workers, "stretches": stretches, "wall_hours": round(seconds / 3600, 3),
            "programs_per_wall_s": round(summary["programs"] / seconds, 2),
            "attempts_per_wall_s": round(attempted / seconds, 2),
            "attempts_per_cpu_s": round(attempted / sum(s["cpu_seconds"] for s in shards), 2),
            **{f"{reason}_share": round(summary["rejected"][reason] / summary["attempted"], 3)
               for reason in ALL_REASONS},
            "cpus_on_machine": os.cpu_count(), "zoo": str(zoo)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="zoo size (unique faithful programs)")
    parser.add_argument("--shard-size", type=int, default=12)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zoo", type=Path, help="record this finished zoo instead (zoo_full.csv)")
    parser.add_argument("--pause", type=float, default=300.0,
                        help="with --zoo: seconds between two shard completions that count as a pause")
    args = parser.parse_args()
    if args.zoo is not None:
        if not (args.zoo / "summary.json").exists():
            print(f"error: {args.zoo} holds no finished zoo (no summary.json); make it with "
                  "`workbench zoo generate --out DIR`", file=sys.stderr)
            raise SystemExit(2)
        row = pd.DataFrame([record_zoo(args.zoo, int(args.workers.split(",")[-1]), args.pause)])
        row.to_csv(FULL, index=False)
        print(row.T.to_string(header=False))
        print(f"written: {FULL}")
        return
    config = ZooConfig(seed=args.seed, shard_size=args.shard_size)
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        rows.append(run(workers, args.n, config))
        print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    frame["speed_up"] = (frame["programs_per_s"] / frame["programs_per_s"].iloc[0]).round(2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(RESULTS, index=False)
    print(frame.to_string(index=False))
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
