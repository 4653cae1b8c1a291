"""Batched key-value-cached greedy decoding vs one prompt at a time, on the same model and prompts.

    python benchmarks/eval_bench.py [--model tiny-gpt2] [--prompts 1000]

Target: the batched decoder ≥ 5× faster. Both must produce identical tokens (checked).
Writes benchmarks/results/eval.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.align import align
from workbench.evaluate import greedy, greedy_one_at_a_time
from workbench.models import load_model
from workbench.tasks import get_task

RESULTS = Path(__file__).parent / "results" / "eval.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-gpt2")
    parser.add_argument("--task", default="sum")
    parser.add_argument("--prompts", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = load_model(args.model, device="cpu", n_layers=12)
    task = get_task(args.task)
    alignments = [align(task, e, loaded.tokenizer) for e in task.split("test", args.prompts)]
    prompts = [a.model_ids[: a.n_prompt] for a in alignments]
    new_tokens = max(len(a) - a.n_prompt for a in alignments)
    start = time.perf_counter()
    batched = greedy(loaded.model, prompts, new_tokens, batch_size=128)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = greedy_one_at_a_time(loaded.model, prompts, new_tokens)
    single_s = time.perf_counter() - start
    assert batched == single, "the batched decoder changed the greedy tokens"
    ratio = single_s / batched_s
    print(f"{loaded.name}, {args.prompts} {task.name} prompts, {new_tokens} new tokens: batched KV-cache "
          f"{batched_s:.2f} s, one at a time {single_s:.2f} s, speed-up {ratio:.1f}x (target >= 5x); tokens identical")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([dict(model=loaded.name, task=task.name, prompts=args.prompts, new_tokens=new_tokens,
                       batched_s=round(batched_s, 3), one_at_a_time_s=round(single_s, 3), speedup=round(ratio, 2),
                       meets_target=ratio >= 5)]).to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
