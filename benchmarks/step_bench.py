"""Cost of a tracr-injection step vs an FT+KL step on the same model, task and batches.

    python benchmarks/step_bench.py [--models tiny-gpt2,tiny-llama,smollm2-135m] [--tasks count,sum,dyck]
                                    [--repeats 20] [--loader-workers 1]

Each step is the trainer's own: the step's batch is taken from the trainer's loader (built, TI
with the compiled residual targets, in a worker process while the previous step trains), the
losses of ``step_losses``, backward, AdamW. TI and
FT+KL steps are interleaved so that machine load affects both alike. Prints and writes, per
model, the median step time of each, the spread (interquartile range) and the ratio of the
medians (target ≤ 1.10), and the median time of the compiled targets of one batch (part of the TI
step) → benchmarks/results/step.csv. A tiny model is measured at its preset's shape and batch (the
recipe that is trained: sum and dyck at width 256), SmolLM2-135M at the demo's batch.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from workbench.inject.config import InjectionConfig
from workbench.inject.data import CompiledTargets, StepBatches, TaskBatches, TextBatches, step_loader
from workbench.inject.hooks import layer_map
from workbench.inject.presets import preset
from workbench.inject.trainer import Injector, make_optimizer, step_losses
from workbench.models import load_model
from workbench.tasks import get_task

RESULTS = Path(__file__).parent / "results" / "step.csv"
TINY_PRESETS = {"tiny-gpt2": "tiny", "tiny-llama": "tiny-llama"}


class Stepper:
    """One method's injector, optimizer and batch stream; ``step()`` runs and times its next training step."""

    def __init__(self, config: InjectionConfig, loaded, compiled, task, steps: int):
        torch.manual_seed(0)
        self.config = config
        model = copy.deepcopy(loaded.model)
        self.original = copy.deepcopy(loaded.model).requires_grad_(False)
        mapping = layer_map(compiled.n_layers, model.cfg.n_layers, config.layer_map)
        self.injector = Injector(model, compiled, mapping, config.roll_at, config.method == "ti")
        self.optimizer = make_optimizer(self.injector, config)
        tasks = TaskBatches(task, loaded.tokenizer, compiled, 0, with_targets=config.method == "ti")
        texts = TextBatches(config.text_source, loaded.tokenizer, config.text_tokens, 0)
        self.batches = step_loader(StepBatches(tasks, texts, config.task_batch, config.text_batch), 0, steps,
                                   config.loader_workers, torch.device("cpu"))

    def step(self) -> float:
        start = time.perf_counter()
        batch, text_ids = next(self.batches)
        terms = step_losses(self.injector, self.original, batch, text_ids, self.config)
        self.optimizer.zero_grad()
        sum(terms.values()).backward()
        self.optimizer.step()
        return time.perf_counter() - start


def _seconds(targets: CompiledTargets, compiled_ids: torch.Tensor) -> float:
    start = time.perf_counter()
    targets(compiled_ids)
    return time.perf_counter() - start


def spread(times: list[float]) -> float:
    quartiles = statistics.quantiles(times, n=4)
    return quartiles[2] - quartiles[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny-gpt2,tiny-llama,smollm2-135m")
    parser.add_argument("--tasks", default="count,sum,dyck", help="comma-separated tasks")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--loader-workers", type=int, default=InjectionConfig.loader_workers,
                        help="the trainer's batch-building processes (0: batches built inside the step)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    tasks = {name: get_task(name) for name in args.tasks.split(",")}
    compiled_of = {name: task.compile() for name, task in tasks.items()}
    for task_name, name in itertools.product(tasks, args.models.split(",")):
        task, compiled = tasks[task_name], compiled_of[task_name]
        # A tiny model at its preset's shape and batch (the recipe that is trained), SmolLM2-135M at the demo's batch.
        shape = ["tiny_layers", "tiny_d_model", "task_batch", "text_batch", "text_tokens"]
        sizes = ({key: preset(TINY_PRESETS[name], task_name)[key] for key in shape} if name in TINY_PRESETS
                 else dict(task_batch=4, text_batch=4))
        base = InjectionConfig(task=task_name, model=name, loader_workers=args.loader_workers, **sizes)
        loaded = load_model(name, device="cpu", **base.model_kwargs())
        ti = Stepper(InjectionConfig(**{**base.__dict__, "method": "ti"}), loaded, compiled, task, args.repeats + 1)
        ft = Stepper(InjectionConfig(**{**base.__dict__, "method": "ft"}), loaded, compiled, task, args.repeats + 1)
        ti.step(), ft.step()  # warm-up (and the loader workers' start)
        ti_times, ft_times = [], []
        for _ in range(args.repeats):
            ti_times.append(ti.step())
            ft_times.append(ft.step())
        ti_median, ft_median = statistics.median(ti_times), statistics.median(ft_times)
        targets = CompiledTargets(compiled)
        batches = TaskBatches(task, loaded.tokenizer, compiled, 1, with_targets=False)
        target_times = [_seconds(targets, batches(step, base.task_batch)["compiled_ids"]) for step in range(5)]
        rows.append(dict(model=loaded.name, family=name, task=task_name, task_batch=base.task_batch, text_batch=base.text_batch,
                         loader_workers=args.loader_workers, repeats=args.repeats, ti_step_s=round(ti_median, 4),
                         ti_iqr_s=round(spread(ti_times), 4),
                         ft_step_s=round(ft_median, 4), ft_iqr_s=round(spread(ft_times), 4),
                         ratio_ti_ft=round(ti_median / ft_median, 3), meets_target=ti_median / ft_median <= 1.10,
                         targets_s=round(statistics.median(target_times), 4)))
        print(f"{loaded.name}, {task_name}: TI {ti_median:.3f} s/step (IQR {spread(ti_times):.3f}), "
              f"FT+KL {ft_median:.3f} s/step (IQR {spread(ft_times):.3f}), ratio {ti_median / ft_median:.3f} "
              f"(target ≤ 1.10); compiled targets {statistics.median(target_times):.3f} s/batch", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    if RESULTS.exists():  # keep the rows of models and loader settings not measured this time
        previous = pd.read_csv(RESULTS)
        if "loader_workers" not in previous:
            previous["loader_workers"] = 0  # rows from before the loader: batches built inside the step
        if "family" not in previous:  # rows from before the family column: the model's name without its shape
            previous["family"] = previous["model"].str.replace(r"-\d+l-\d+d$", "", regex=True)
        key = ["family", "task", "loader_workers"]
        kept = previous.merge(table[key], on=key, how="left", indicator=True)["_merge"] == "left_only"
        table = pd.concat([previous[kept.to_numpy()], table], ignore_index=True).sort_values(key)[table.columns]
    table.to_csv(RESULTS, index=False)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
