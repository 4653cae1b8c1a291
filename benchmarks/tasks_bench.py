"""Size, compile cost and exactness of every task program → benchmarks/results/tasks.csv.

    python benchmarks/tasks_bench.py

Cold = first compilation of the program in a fresh process (JAX traces new shapes);
cached = loading it back from the disk cache. Targets: cold ≤ 60 s, depth ≤ 12 blocks.
``compiled_<set>`` = the compiled program's exact-match accuracy on 200 prompts of the test
split and of each out-of-distribution suite (1.0 where the program's algorithm covers the suite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from workbench.tasks import TASKS

RESULTS = Path(__file__).parent / "results" / "tasks.csv"

_MEASURE = """
import json, os, sys, time
import torch
torch.set_num_threads(2)
from workbench.tasks import get_task
task = get_task(sys.argv[1])
start = time.perf_counter(); compiled = task.compile(); cold = time.perf_counter() - start
start = time.perf_counter(); task.compile(); cached = time.perf_counter() - start
cfg = compiled.model.cfg
sets = {"test": task.split("test", 200), **{name: task.suite(name, 200) for name in task.suites()}}

def accuracy(examples):
    answers = task.compiled_answers(compiled, examples)
    return sum(answer == example.label for answer, example in zip(answers, examples)) / len(examples)

print(json.dumps(dict(task=task.name, blocks=cfg.n_layers, residual_width=cfg.d_model, heads=cfg.n_heads,
                      d_mlp=cfg.d_mlp, compiled_vocab=len(task.compiled_vocab), context=task.max_seq_len,
                      variables=len(compiled.variables), cold_compile_s=round(cold, 2),
                      cached_load_s=round(cached, 3),
                      **{f"compiled_{name}": accuracy(examples) for name, examples in sets.items()})))
"""


def main() -> None:
    rows = []
    for name in TASKS:
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run([sys.executable, "-c", _MEASURE, name], capture_output=True, text=True, check=True,
                                 env={**os.environ, "WORKBENCH_CACHE": cache})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["meets_targets"] = (table.cold_compile_s <= 60) & (table.blocks <= 12)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS, index=False)
    print(table.to_string(index=False))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
