"""Size and compile cost of the three task programs → benchmarks/results/tasks.csv.

    python benchmarks/tasks_bench.py

Cold = first compilation of the program in a fresh process (JAX traces new shapes);
cached = loading it back from the disk cache. Targets: cold ≤ 60 s, depth ≤ 12 blocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

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
print(json.dumps(dict(task=task.name, blocks=cfg.n_layers, residual_width=cfg.d_model, heads=cfg.n_heads,
                      d_mlp=cfg.d_mlp, compiled_vocab=len(task.compiled_vocab), context=task.max_seq_len,
                      variables=len(compiled.variables), cold_compile_s=round(cold, 2),
                      cached_load_s=round(cached, 3))))
"""


def main() -> None:
    rows = []
    for name in ("dyck", "count", "sum"):
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
