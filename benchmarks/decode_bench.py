"""Warm latency of decoding one 64-token prompt into program variables on SmolLM2-135M (CPU).

    python benchmarks/decode_bench.py [--run runs/demo] [--repeats 10]

Decoding = one forward pass caching the aligned layers, the linear map, and the argmax table.
Uses the count program (context 64) and the run's trained map when --run (a count run) is given, else a random map of the same shape (the
cost is the same). Target ≤ 50 ms. Writes benchmarks/results/decode.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.decode.views import view_run
from workbench.inject.hooks import layer_map
from workbench.models import load_model
from workbench.tasks import get_task

RESULTS = Path(__file__).parent / "results" / "decode.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = get_task("count")
    compiled = task.compile()
    if args.run:
        from workbench.evaluate.runs import load_trained_map

        loaded, _, linear_map, mapping, _ = load_trained_map(args.run)
    else:
        loaded = load_model("smollm2-135m", device="cpu")
        linear_map = torch.nn.Linear(loaded.model.cfg.d_model, compiled.model.cfg.d_model).requires_grad_(False)
        mapping = layer_map(compiled.n_layers, loaded.model.cfg.n_layers)
    prompt = "What is the number of 'X' in this text? " + " ".join("xy"[i % 3 == 0] for i in range(48)) + ". Answer:"
    tokens = len(loaded.tokenizer(prompt)["input_ids"]) + 1
    view_run(task, compiled, loaded.model, linear_map, loaded.tokenizer, mapping, prompt)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        view_run(task, compiled, loaded.model, linear_map, loaded.tokenizer, mapping, prompt)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{loaded.name}: decoding a {tokens}-token prompt takes {1000 * median:.1f} ms warm (median of "
          f"{args.repeats}; target <= 50 ms)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([dict(model=loaded.name, tokens=tokens, median_ms=round(1000 * median, 2),
                       min_ms=round(1000 * min(times), 2), meets_target=median <= 0.05)]).to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
