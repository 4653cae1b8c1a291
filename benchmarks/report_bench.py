"""Build time and size of `workbench report` for a long run: 10,000 logged steps, in-loop checks and
evaluations of 200 prompts (a fake run folder with every file the report reads, tests/report/fake_run.py).

    python benchmarks/report_bench.py [--steps 10000] [--prompts 200] [--repeats 3]

Targets (issue 21): at most 10 s (on an idle core: CPU seconds) and 10 MB. The time is of one `workbench report` command in a fresh
process (imports included, as a user waits for it); the median of the repeats, with the machine's load
average beside it and the command's CPU seconds (user + system: what it takes on an idle core, whatever
the load). Writes benchmarks/results/report.csv.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "report"))
from fake_run import write_fake_run  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "report.csv"
MAX_SECONDS, MAX_MB = 10.0, 10.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = write_fake_run(Path(folder) / "run", steps=args.steps, eval_every=100, prompts=args.prompts)
        out = Path(folder) / "report.html"
        seconds, cpu_seconds, load = [], [], os.getloadavg()[0]
        for _ in range(args.repeats):
            start, cpu_start = time.perf_counter(), _children_cpu()
            subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(run), "--out", str(out)], check=True,
                           capture_output=True)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(_children_cpu() - cpu_start)
        megabytes = out.stat().st_size / 1e6
    row = {"steps": args.steps, "prompts": args.prompts, "median_seconds": round(statistics.median(seconds), 2),
           "min_seconds": round(min(seconds), 2),
           "median_cpu_seconds": round(statistics.median(cpu_seconds), 2), "megabytes": round(megabytes, 2),
           "load_average": round(load, 1), "cpus": os.cpu_count(),
           "meets_target": statistics.median(cpu_seconds) <= MAX_SECONDS and megabytes <= MAX_MB}
    RESULTS.parent.mkdir(exist_ok=True)
    pd.DataFrame([row]).to_csv(RESULTS, index=False)
    print(pd.DataFrame([row]).to_string(index=False))


if __name__ == "__main__":
    main()
