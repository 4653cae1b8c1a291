"""A run folder with every file the report reads, written with known numbers (no training, no model).

Used by the report's tests and by benchmarks/report_bench.py (a 10,000-step run with 200-prompt evaluations).
The shapes follow what the commands write: ``workbench train`` (config.json, metrics.jsonl, a checkpoint),
``workbench eval`` (eval/, eval_original/), ``workbench decode`` (decode/view.json, agreement.csv),
``workbench ablate`` and ``workbench circuits --run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import save_file

VARIABLES = ["tokens", "indices", "count_x", "answer"]
LAYERS = ["layer 0 (block 0)", "layer 1 (block 1)", "layer 2 (block 2)"]
TOKENS = ["x", "y", "x", ":"]
COMPILED_LABELS = ["tokens:x", "tokens:no", "count_x:1", "count_x:2", "answer"]
SUITES = [("test", True, 0.97, 0.975, 1.0), ("x_only", True, 0.125, 0.13, 1.0), ("y_to_z", False, 0.025, 0.03, 0.5)]
PPL_ORIGINAL, PPL_AFTER = {"per_line_ppl": 200.0, "token_ppl": 150.0}, {"per_line_ppl": 190.0, "token_ppl": 153.0}
METHODS = [("acdc", 0.8863, 0.0225, 0.8875, 0.0729), ("eap", 0.7675, 0.1005, 0.75, 0.1369),
           ("random", 0.545, 0.1621, 0.5, 0.3791)]


def metrics_rows(steps: int, eval_every: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for step in range(1, steps + 1):
        row = {"step": step, "loss": 10.0 / step + 0.1 * rng.random(), "ce": 8.0 / step, "kl": 0.5,
               "alignment": 1.0 / step, "lr_model": 1e-3, "time": 1000.0 + step}
        if step % eval_every == 0:
            row["eval_accuracy"] = min(1.0, step / steps)
        rows.append(row)
    return rows


def write_fake_run(folder: Path, method: str = "ti", steps: int = 300, eval_every: int = 100, prompts: int = 200
                   ) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"task": "count", "model": "tiny-gpt2", "method": method, "steps": steps, "eval_every": eval_every,
              "eval_prompts": prompts, "seed": 42}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics_rows(steps, eval_every)))
    checkpoint = folder / "checkpoints" / f"step_{steps:07d}"
    checkpoint.mkdir(parents=True)
    weights = {"embed.W_E": np.zeros((50, 16), np.float32), "pos_embed.W_pos": np.zeros((32, 16), np.float32)}
    for block in range(3):
        weights[f"blocks.{block}.attn.W_Q"] = np.zeros((2, 16, 8), np.float32)
    save_file(weights, str(checkpoint / "model.safetensors"))
    (folder / "checkpoints" / "latest").write_text(checkpoint.name)

    (folder / "eval").mkdir()
    pd.DataFrame([dict(task="count", set=name, compiled_supports=supported, prompts=prompts, model_accuracy=strict,
                       model_accuracy_lenient=lenient, compiled_accuracy=compiled, description=f"about {name}")
                  for name, supported, strict, lenient, compiled in SUITES]).to_csv(folder / "eval/accuracy.csv",
                                                                                    index=False)
    summary = {"step": steps, "perplexity_corpus": "some plays", "perplexity": PPL_AFTER}
    (folder / "eval/summary.json").write_text(json.dumps(summary))
    (folder / "eval_original").mkdir()
    (folder / "eval_original/summary.json").write_text(json.dumps({**summary, "step": 0,
                                                                   "perplexity": PPL_ORIGINAL}))
    if method != "ti":
        return folder

    (folder / "decode").mkdir()
    agreement = pd.DataFrame([[1.0, 0.99, 0.98], [1.0, 1.0, 1.0], [None, 0.6531, 0.8017], [None, None, 0.9847]],
                             index=pd.Index(VARIABLES, name="variable"), columns=LAYERS)
    agreement.to_csv(folder / "decode/agreement.csv")
    table = pd.DataFrame([TOKENS, [0, 1, 2, 3], [1, 1, 2, 2], [None, None, None, 2]], index=VARIABLES,
                         columns=[f"{i}:{t}" for i, t in enumerate(TOKENS)])
    view = {"tokens": TOKENS, "layers": LAYERS, "compiled_labels": COMPILED_LABELS,
            "raw": [(np.arange(4 * 16).reshape(4, 16) * (i + 1) / 64).tolist() for i in range(3)],
            "mapped": [(np.eye(4, 5) * (i + 1)).tolist() for i in range(3)],
            "tables": [table.to_dict(orient="split")] * 3}
    (folder / "decode/view.json").write_text(json.dumps(view))

    (folder / "ablation").mkdir()
    pd.DataFrame([dict(subspace=kind, norm=norm, seed=seed, dimension=11, prompts=prompts, layer="blocks.3.hook_resid_pre",
                       accuracy=(0.97 - norm / 100 - seed / 100) if kind == "answer subspace" else 0.97 - seed / 100,
                       answer_loss=norm / 10)
                  for norm in (0, 10, 30) for seed in range(3) for kind in ("answer subspace", "random subspace")]
                 ).to_csv(folder / "ablation/noise_ablation.csv", index=False)

    (folder / "circuits").mkdir()
    pd.DataFrame([dict(target="fake", level="layer", ablation="resample", nodes=10, edges=45, scored_edges=21,
                       true_edges=5, method=m, edge_auc=e, edge_auc_std=es, node_auc=n, node_auc_std=ns,
                       faithfulness=0.5, seconds=1.25, resamples=5) for m, e, es, n, ns in METHODS]
                 ).to_csv(folder / "circuits/summary.csv", index=False)
    pd.DataFrame([dict(method=m, kind=kind, fpr=f, tpr=t) for m, *_ in METHODS for kind in ("edges", "nodes")
                  for f, t in ((0, 0), (0.5, 0.8), (1, 1))]).to_csv(folder / "circuits/roc.csv", index=False)
    return folder
