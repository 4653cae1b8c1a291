"""Warm compile + convert time and residual exactness for every tracr lib program.

    python benchmarks/compile_bench.py      # writes benchmarks/results/compile.csv

"Warm" = the second compilation of the same program in this process (the first pays
JAX's tracing of new shapes). Target: <= 1 s warm per program.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from workbench.compiled import LIB_PROGRAMS, compile_program, residual_hook_names

RESULTS = Path(__file__).parent / "results" / "compile.csv"
TARGET_WARM_S = 1.0
N_INPUTS = 10


def residual_max_diff(compiled, entry, rng) -> float:
    worst = 0.0
    for _ in range(N_INPUTS):
        tokens = entry.random_input(rng)
        out = compiled.tracr.assembled.apply([compiled.bos, *tokens])
        reference = [out.input_embeddings, *out.residuals]
        ours = compiled.residuals(tokens)
        for hook, ref in zip(residual_hook_names(compiled.n_layers), reference):
            worst = max(worst, float(np.abs(ours[hook].numpy() - np.asarray(ref)[0]).max()))
    return worst


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    for name, entry in LIB_PROGRAMS.items():
        for causal in (False, True):
            start = time.perf_counter()
            compile_program(entry.program(), set(entry.vocab), entry.max_seq_len, causal=causal)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            compiled = compile_program(entry.program(), set(entry.vocab), entry.max_seq_len, causal=causal)
            warm = time.perf_counter() - start
            cfg = compiled.model.cfg
            rows.append(dict(program=name, causal=causal, blocks=cfg.n_layers, d_model=cfg.d_model,
                             heads=cfg.n_heads, d_mlp=cfg.d_mlp, first_compile_s=round(cold, 3),
                             warm_compile_s=round(warm, 3),
                             residual_max_diff=residual_max_diff(compiled, entry, random.Random(0)),
                             meets_target=warm <= TARGET_WARM_S))
            print(f"{name:18s} causal={causal!s:5s} warm {warm:6.3f} s  first {cold:6.3f} s  "
                  f"max diff {rows[-1]['residual_max_diff']:.1e}", flush=True)
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS, index=False)
    print(f"\nwarm compile: median {table.warm_compile_s.median():.3f} s, max {table.warm_compile_s.max():.3f} s "
          f"(target <= {TARGET_WARM_S} s: {table.meets_target.sum()}/{len(table)} meet it); "
          f"worst residual diff {table.residual_max_diff.max():.1e}\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
