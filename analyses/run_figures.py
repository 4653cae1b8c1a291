"""The paper's Figures 3–6 on one injected TI run: decoded variables and the noise ablation.

    python analyses/run_figures.py --run runs/presets/tiny-llama/sum_ti [--n 100] [--seeds 3]

Writes results/figures_<preset>_<task>/:
- decoded_variables.csv: the variables decoded through the map at the last aligned layer on the
  task's first test prompt (Figure 6; ``workbench decode RUN`` draws Figures 4–6 as HTML);
- noise_ablation.csv: Gaussian noise at the last aligned layer, of norm r × the mean residual norm
  there (r in ``RELATIVE_NORMS``), inside the answer variable's subspace (through the map) or inside
  random subspaces of the same rank (Figure 3), on ``n`` test prompts, ``seeds`` seeds each;
- README.md: the run's numbers (from results/injection.csv, results/injection_agreement.csv) and the
  ablation's, read from these files.
A run that is not in results/injection.csv at its latest checkpoint (``python analyses/injection.py``),
or that is below 90 % strict test accuracy there, is refused: what is decoded from a model that does
not compute its program is not a result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tables import RESULTS, bad_input  # noqa: E402

from workbench.ablate import noise_ablation  # noqa: E402
from workbench.align import align, model_hook, task_batch  # noqa: E402
from workbench.decode.views import view_run  # noqa: E402
from workbench.evaluate.runs import load_trained_map  # noqa: E402
from workbench.inject import checkpoint  # noqa: E402
from workbench.tasks import get_task  # noqa: E402

PASS = 0.90
RELATIVE_NORMS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def evaluated_row(run_dir: Path) -> pd.Series:
    """The run's row of results/injection.csv, evaluated at its latest checkpoint and at or above the bar."""
    latest = checkpoint.latest(run_dir)
    if latest is None or not (run_dir / "config.json").exists():
        bad_input(f"{run_dir} is not a training run with a checkpoint; give a TI run folder, e.g. runs/presets/tiny/count_ti")
    config = json.loads((run_dir / "config.json").read_text())
    table = pd.read_csv(RESULTS / "injection.csv")
    row = table[(table.preset == run_dir.parent.name) & (table.task == config["task"]) & (table.method == "ti")]
    step = json.loads((latest / "state.json").read_text())["step"]
    if config["method"] != "ti" or row.empty or int(row.steps.iloc[0]) != step:
        bad_input(f"{run_dir} (step {step}) is not a TI run evaluated in results/injection.csv at that step; "
                "run `python analyses/injection.py` first")
    row = row.iloc[0]
    if not row.test_strict >= PASS:  # NaN too
        bad_input(f"{run_dir} scores {row.test_strict:.1%} strict on its test split (< {PASS:.0%}): it does not compute "
                "its program, so nothing decoded from it is a result")
    agreement = pd.read_csv(RESULTS / "injection_agreement.csv")
    if not ((agreement.preset == row.preset) & (agreement.task == row.task)).any():
        bad_input(f"results/injection_agreement.csv has no rows of {run_dir}; run `python analyses/injection.py` first")
    return row


@torch.no_grad()
def mean_residual_norm(model, tokenizer, task, compiled, examples, block: int) -> float:
    """The mean L2 norm of the model's residual at ``block``'s input over the real tokens of ``examples``."""
    batched = task_batch([align(task, e, tokenizer, compiled.max_seq_len) for e in examples], compiled, tokenizer)
    device = next(model.parameters()).device
    name = model_hook(block)
    _, cache = model.run_with_cache(batched["ids"].to(device), names_filter=[name], stop_at_layer=block + 1)
    return float(cache[name].float().norm(dim=-1).cpu()[batched["mask"]].mean())


def readme(run_dir: Path, row: pd.Series, prompt: str, layer: str, ablation: pd.DataFrame, command: str) -> str:
    agreement = pd.read_csv(RESULTS / "injection_agreement.csv")
    agreement = agreement[(agreement.preset == row.preset) & (agreement.task == row.task)].set_index("variable")
    last = agreement.filter(like="layer").dropna(axis=1, how="all").iloc[:, -1]
    means = ablation.groupby(["relative_norm", "subspace"])[["accuracy", "answer_loss"]].mean().unstack()
    curve = pd.concat({"accuracy %": means["accuracy"].mul(100).round(1), "answer loss": means["answer_loss"].round(4)},
                      axis=1)
    curve.columns = [f"{measure}, {subspace}" for measure, subspace in curve.columns]
    curve.index = [f"{r:g} × mean norm ({ablation[ablation.relative_norm == r].norm.iloc[0]:.1f})" for r in curve.index]
    gap = (curve["accuracy %, random subspace"] - curve["accuracy %, answer subspace"]).iloc[1:]
    loss_ratio = (curve["answer loss, answer subspace"] / curve["answer loss, random subspace"]).iloc[1:]
    return (f"# Decoded variables and noise ablation of `{run_dir}`\n\n"
            f"Regenerate: `{command}`.\n\n"
            f"The run: `{row.preset}` preset, {row.task}, {row.model}, {int(row.steps):,} steps — "
            f"**{100 * row.test_strict:.1f} % strict test accuracy** and decoded agreement "
            f"{100 * row.agreement_mean:.1f} % (`results/injection.csv`), at or above the 90 % bar.\n\n"
            f"- `decoded_variables.csv` (Figure 6): the variables decoded through the map at {layer} on the prompt "
            f"`{prompt}`. Decoded agreement with the compiled program at that layer, per variable, over the test "
            "prompts of `results/injection_agreement.csv`: "
            + ", ".join(f"{name} {100 * share:.1f} %" for name, share in last.sort_values().items()) + ".\n"
            f"- `noise_ablation.csv` (Figure 3): noise at {layer} inside the answer variable's subspace "
            f"({int(ablation.dimension.iloc[0])} dimensions, through the map) or inside random subspaces of the same "
            f"rank, as the paper's Figure 3 (at the residual aligned with the last compiled layer); "
            f"{int(ablation.prompts.iloc[0])} test prompts, {ablation.seed.nunique()} seeds; means:\n\n"
            + curve.rename_axis("noise norm").to_markdown() + "\n\n"
            f"Accuracy points that noise in the answer subspace costs beyond noise of the same norm in a random "
            f"subspace, per nonzero norm: {', '.join(f'{g:+.1f}' for g in gap)} (positive: the answer subspace "
            f"matters more; {int((gap > 0).sum())} of {len(gap)} norms); answer loss with noise in the answer "
            f"subspace ÷ in a random one: {', '.join(f'{r:.2f}' for r in loss_ratio)}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a TI run folder, evaluated by analyses/injection.py")
    parser.add_argument("--n", type=int, default=100, help="test prompts of the ablation")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    row = evaluated_row(args.run)
    loaded, config, linear_map, mapping, _ = load_trained_map(args.run)
    task = get_task(config.task)
    compiled = task.compile()
    out = RESULTS / f"figures_{row.preset}_{row.task}"
    out.mkdir(exist_ok=True)
    prompt = task.split("test", 1)[0].prompt
    view = view_run(task, compiled, loaded.model, linear_map, loaded.tokenizer, mapping, prompt)
    view.tables[-1].to_csv(out / "decoded_variables.csv")
    examples = task.split("test", args.n)
    scale = mean_residual_norm(loaded.model, loaded.tokenizer, task, compiled, examples, mapping[-1])
    ablation = noise_ablation(loaded.model, linear_map, compiled.dims_of(compiled.output_variable), task,
                              loaded.tokenizer, compiled, examples, mapping,
                              [round(r * scale, 3) for r in RELATIVE_NORMS], args.seeds)
    ablation.insert(2, "relative_norm", ablation.norm.map(dict(zip([round(r * scale, 3) for r in RELATIVE_NORMS],
                                                                    RELATIVE_NORMS))))
    ablation.round(4).to_csv(out / "noise_ablation.csv", index=False)
    command = f"python analyses/run_figures.py --run {args.run} --n {args.n} --seeds {args.seeds}"
    (out / "README.md").write_text(readme(args.run, row, prompt, model_hook(mapping[-1]), ablation, command))
    print((out / "README.md").read_text())
    print(f"wrote {out}/decoded_variables.csv, noise_ablation.csv, README.md")


if __name__ == "__main__":
    main()
