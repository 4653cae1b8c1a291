"""Cost of a tracr-injection step vs an FT+KL step on the same model and batch.

    python benchmarks/step_bench.py [--models tiny-gpt2,smollm2-135m] [--repeats 5]

Prints, per model, the median step time of TI and FT+KL, their ratio (target ≤ 1.10) and the
share of the TI step spent on the roll projection (P = M pinv(M) and h·P + roll). Writes
benchmarks/results/step.csv.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.inject.config import InjectionConfig
from workbench.inject.data import TaskBatches, TextBatches
from workbench.inject.hooks import layer_map, roll, subspace_projection
from workbench.inject.losses import alignment_loss, answer_ce, kl_to_original
from workbench.inject.trainer import Injector, _compiled_targets
from workbench.models import load_model
from workbench.tasks import get_task

RESULTS = Path(__file__).parent / "results" / "step.csv"


class Stepper:
    """One method's injector, optimizer and fixed batch; ``step()`` runs and times one training step."""

    def __init__(self, method: str, loaded, compiled, task, config):
        torch.manual_seed(0)
        self.method, self.compiled = method, compiled
        model = copy.deepcopy(loaded.model)
        self.original = copy.deepcopy(loaded.model).requires_grad_(False)
        self.injector = Injector(model, compiled, layer_map(compiled.n_layers, model.cfg.n_layers), "after_last",
                                 method == "ti")
        self.optimizer = torch.optim.AdamW(self.injector.parameters(), lr=1e-6)
        self.batch = TaskBatches(task, loaded.tokenizer, compiled, 64, 0)(0, config.task_batch)
        self.text = TextBatches("brown", loaded.tokenizer, config.text_tokens, 0)(0, config.text_batch)

    def step(self) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            original_logits = self.original(self.text)
            targets = _compiled_targets(self.compiled, self.batch["compiled_ids"]) if self.method == "ti" else []
        task_logits, mapped, text_logits = self.injector(self.batch["ids"], self.text)
        loss = answer_ce(task_logits, self.batch["ids"], self.batch["answer_mask"]) + kl_to_original(
            text_logits, original_logits)
        if mapped:
            loss = loss + alignment_loss(mapped, targets, self.batch["mask"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start

    def roll_time(self) -> float:
        shape = (*self.batch["ids"].shape, self.injector.model.cfg.d_model)
        h = torch.randn(*shape, requires_grad=True)
        start = time.perf_counter()
        roll(h, subspace_projection(self.injector.map.weight, self.injector.final_dims)).sum().backward()
        return time.perf_counter() - start


def time_pair(loaded, compiled, task, config, repeats: int) -> tuple[float, float, float]:
    """Median TI and FT+KL step times, interleaved so that machine load affects both alike."""
    ti, ft = Stepper("ti", loaded, compiled, task, config), Stepper("ft", loaded, compiled, task, config)
    ti.step(), ft.step()  # warm-up
    ti_times, ft_times, roll_times = [], [], []
    for _ in range(repeats):
        ti_times.append(ti.step())
        ft_times.append(ft.step())
        roll_times.append(ti.roll_time())
    return statistics.median(ti_times), statistics.median(ft_times), statistics.median(roll_times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny-gpt2,smollm2-135m")
    parser.add_argument("--task", default="dyck")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = get_task(args.task)
    compiled = task.compile()
    config = InjectionConfig(task_batch=4, text_batch=4)
    rows = []
    for name in args.models.split(","):
        loaded = load_model(name, device="cpu", n_layers=12)
        ti, ft, roll_time = time_pair(loaded, compiled, task, config, args.repeats)
        rows.append(dict(model=loaded.name, task=args.task, task_batch=config.task_batch,
                         text_batch=config.text_batch, ti_step_s=round(ti, 4), ft_step_s=round(ft, 4),
                         ratio_ti_ft=round(ti / ft, 3), roll_share_of_ti=round(roll_time / ti, 4),
                         meets_target=ti / ft <= 1.10))
        print(f"{loaded.name}: TI {ti:.3f} s/step, FT+KL {ft:.3f} s/step, ratio {ti / ft:.3f} (target ≤ 1.10), "
              f"roll projection {roll_time / ti:.1%} of the TI step", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
