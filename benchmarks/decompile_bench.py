"""Training throughput of the decompiler's meta-model: samples per second of the trainer's own step.

    python benchmarks/decompile_bench.py [--zoo runs/decompile/zoo] [--sizes 4x256,2x128] [--steps 20]

Per model size: ``--steps`` steps of ``workbench.decompile.train.train`` on the zoo's train split
(batch 32, noise and dropout on, no validation checks), timed from the run's ``metrics.jsonl``
(each step's samples/s; the median and the interquartile range of the steps after the first,
which pays for allocation), on this machine's device (CUDA when there is one). Also prints the
load average: on a shared machine the figure is a floor, not the model's speed.
→ benchmarks/results/decompile.csv.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd
import torch

from workbench.decompile.metamodel import MetaModelConfig
from workbench.decompile.train import TrainConfig, train

RESULTS = Path(__file__).parent / "results" / "decompile.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, default=Path("runs/decompile/zoo"))
    parser.add_argument("--sizes", default="4x256,2x128", help="comma list of LAYERSxD_MODEL")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        layers, width = (int(v) for v in size.split("x"))
        config = TrainConfig(model=MetaModelConfig(n_layers=layers, d_model=width), steps=args.steps, eval_every=0,
                             checkpoint_every=args.steps)
        with tempfile.TemporaryDirectory() as run:
            train(config, args.zoo, Path(run) / "run", progress=False)
            speeds = pd.read_json(Path(run) / "run" / "metrics.jsonl", lines=True).samples_per_s.iloc[1:]
        rows.append({"layers": layers, "d_model": width, "batch_size": config.batch_size, "steps": args.steps,
                     "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads(),
                     "samples_per_s": speeds.median(), "iqr": speeds.quantile(0.75) - speeds.quantile(0.25),
                     "load_average_1m": os.getloadavg()[0]})
        print(rows[-1], flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    pd.DataFrame(rows).round(3).to_csv(RESULTS, index=False)
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
