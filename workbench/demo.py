"""The main job on the embedded default: inject shuffle-dyck into SmolLM2-135M on the CPU.

The paper trains 80k steps of 12 + 12 examples on a GPU (~10 h). On 2 CPU cores one step of
4 + 4 examples takes ~10 s, so the demo preset is 40 steps with larger learning rates: enough
to see the alignment loss fall and to decode the program's variables through the map, not to
reach the paper's accuracy. Everything is saved in the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.express as px

from workbench.decode.views import view_run
from workbench.evaluate import answer_accuracy
from workbench.inject.config import InjectionConfig
from workbench.inject.trainer import train
from workbench.models import load_model
from workbench.tasks import get_task

DEMO_PRESET = dict(task="dyck", model="smollm2-135m", steps=40, task_batch=4, text_batch=4, text_tokens=70,
                   lr_model=1e-5, lr_map=1e-3, checkpoint_every=10)
N_EVAL = 64


def loss_curves(run_dir: Path) -> pd.DataFrame:
    metrics = pd.read_json(run_dir / "metrics.jsonl", lines=True)
    terms = [c for c in ("loss", "ce", "alignment", "kl") if c in metrics]
    fig = px.line(metrics, x="step", y=terms, log_y=True, title=f"Loss curves — {run_dir}")
    fig.write_html(run_dir / "loss_curves.html", include_plotlyjs=True)
    return metrics[["step", *terms]]


def run_demo(out: Path, **overrides) -> dict:
    out = Path(out)
    config = InjectionConfig(**{**DEMO_PRESET, **overrides})
    preset = ", ".join(f"{k} {getattr(config, k)}" for k in ("steps", "task_batch", "text_batch", "lr_model", "lr_map"))
    print(f"Demo: tracr-injection of {config.task} into {config.model} on the CPU ({preset}).\n"
          "The paper trains 80k steps of 12 + 12 examples on a GPU; this CPU-sized preset shows the method\n"
          "working (losses fall, variables decode through the map), not the paper's final accuracy.")
    task = get_task(config.task)
    examples = task.split("test", N_EVAL, seed=config.seed)
    original = load_model(config.model, **config.model_kwargs())
    before = answer_accuracy(original.model, original.tokenizer, task, examples)
    del original
    result = train(config, out, resume=True)
    model, tokenizer = result["injector"].model, result["tokenizer"]
    model.eval()
    after = answer_accuracy(model, tokenizer, task, examples)
    curves = loss_curves(out)
    preview = decoded_preview(result, task, examples[0])
    summary = {"task": config.task, "model": result["model"], "steps": result["step"], "layer_map": result["mapping"],
               "accuracy_before": before, "accuracy_after": after, "eval_prompts": len(examples),
               "first_losses": curves.iloc[0].to_dict(), "last_losses": curves.iloc[-1].to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    preview.to_csv(out / "decoded_preview.csv")
    print(f"\ntask accuracy (greedy exact match, {len(examples)} test prompts): before {before:.1%}, after {after:.1%}")
    print("losses, first → last step:")
    for term in curves.columns[1:]:
        print(f"  {term:10s} {curves[term].iloc[0]:9.4f} → {curves[term].iloc[-1]:9.4f}")
    print(f"\ndecoded variables through the map at the last aligned layer ({examples[0].prompt!r}), last 6 tokens:")
    print(preview.iloc[:, -6:].to_string())
    print(f"\nsaved in {out}: config.json, metrics.jsonl, loss_curves.html, checkpoints/, summary.json, "
          "decoded_preview.csv")
    return summary


def decoded_preview(result: dict, task, example) -> pd.DataFrame:
    """Decoded program variables of one prompt and its answer, through the trained map (last aligned layer)."""
    if result["injector"].map is None:
        return pd.DataFrame()
    view = view_run(task, result["compiled"], result["injector"].model, result["injector"].map, result["tokenizer"],
                    result["mapping"], example.text)
    return view.tables[-1]
