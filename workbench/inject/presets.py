"""Named CPU presets: settings measured to inject each task on 2 cores (results in the README).

The paper's settings (80k steps at lr 1e-6 on a GPU) stay the defaults of ``InjectionConfig``;
a preset overrides them, and explicit command-line options override the preset.

>>> preset("tiny", "count")["tiny_layers"]  # the compiled count program has 3 blocks
4
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

# Shared by every tiny run: a small model from scratch, short text windows for the KL term (the
# original is random, the term only keeps the run honest to the method), a schedule with warm-up,
# the roll switched on once the map has found the answer subspace, early stop at the target (for TI, once
# the decoded variables agree too: dyck's answer was learnt at step 400 with 87 % agreement), and the
# end-of-text token after the answer supervised (a model trained from scratch has no other reason to
# stop after the answer: at step 500 of count, 87 % lenient but 22 % strict exact match without it).
_TINY = dict(model="tiny-gpt2", supervise_end=True, tiny_d_model=128, task_batch=32, text_batch=2, text_tokens=16,
             lr_model=1e-3, lr_map=1e-2, lr_schedule="cosine", warmup_steps=100, grad_clip=1.0, roll_after=300, eval_every=100,
             eval_prompts=128, target_accuracy=0.97, target_agreement=0.93,
             checkpoint_every=500, steps=3000)

# Depth = compiled blocks + 1 (the block the roll sits after); width >= the rank of the compiled residual,
# since the map is linear from the model's residual (measured over train prompts: count 107, dyck 149, sum 211;
# sum at width 128 stayed at 1-3 % held-out accuracy for 3000 steps).
_TINY_TASKS = {"count": {**_TINY, "tiny_layers": 4},
               "sum": {**_TINY, "tiny_layers": 11, "tiny_d_model": 256},
               "dyck": {**_TINY, "tiny_layers": 7, "tiny_d_model": 256}}

# SmolLM2-135M (pretrained, 30 blocks of width 576): ~4.4 s a step on 2 cores at these batch sizes, so
# 1,500 steps fit the 2 h budget; a held-out check every 50 steps. What the first two attempts showed
# (runs/presets/smollm2/count_ti_spread_lr1e-4, count_ti_paper_map): at lr 1e-4 the KL to the original
# rose to ~3 nats by step 200, and held-out accuracy fell once the roll came on, whether the roll sat
# after block 3 (26 pretrained blocks then read another prompt's residual) or after the last block 29
# (no block left to read the answer subspace). So: a third of the rate, the aligned blocks at 0, 7, 14,
# 21 (8 blocks above the roll to turn the answer subspace into the answer tokens), the roll on later.
# Count still fails (README): with the roll on at step 500 or ramped in over steps 300-700
# (runs/presets/smollm2/count_ti_ramp), held-out accuracy falls as the rolled share rises (67 % to 6 %).
_SMOLLM2 = dict(model="smollm2-135m", supervise_end=True, task_batch=6, text_batch=2, text_tokens=32,
                lr_model=3e-5, lr_map=1e-2, lr_schedule="cosine", warmup_steps=50, grad_clip=1.0, roll_after=500,
                layer_map="0,7,14,21", eval_every=50, eval_prompts=64, target_accuracy=0.95, target_agreement=0.93,
                checkpoint_every=100, steps=1500)

# Dyck (6 compiled blocks) on the same model: its seven residuals every 3-4 blocks up to block 21, again
# eight blocks above the roll. The roll comes on at step 200 (count's at 500 came after the model had
# learnt the answer outside the answer subspace: its units digit fell from ~75 % to 5 % and had not come
# back 300 steps later; results/injection_answer_tokens.csv).
_SMOLLM2_DYCK = {**_SMOLLM2, "layer_map": "0,3,7,10,14,17,21", "roll_after": 200}

# Sum (10 compiled blocks): its eleven residuals every 2-3 blocks up to block 21, the roll at step 200 as
# dyck's. Does not inject (README): 59 % held-out at step 200, 6 % by step 400 once the roll was on; the
# operands' units and tens digits decode at 13-33 % at every aligned layer (results/injection_unfinished_agreement.csv):
# blocks 0-21 had not learnt the program's lookups, so the answer subspace at block 21 could not hold the sum.
_SMOLLM2_SUM = {**_SMOLLM2, "layer_map": "0,2,4,6,8,10,13,15,17,19,21", "roll_after": 200}

PRESETS: dict[str, dict[str, dict]] = {
    "tiny": _TINY_TASKS,
    "tiny-llama": {task: {**settings, "model": "tiny-llama"} for task, settings in _TINY_TASKS.items()},
    "smollm2": {"count": _SMOLLM2, "dyck": _SMOLLM2_DYCK, "sum": _SMOLLM2_SUM},
}

# Each preset's bar (issue 15): strict test accuracy, and for TI on the tiny models the decoded agreement
# averaged over every variable at every aligned layer (SmolLM2's bar is the test accuracy alone; its
# agreement is reported beside it). ``benchmarks/inject_bench.py`` times runs to the accuracy, and
# ``analyses/injection.py`` holds every evaluated run to its bar.
BARS: dict[str, tuple[float, float | None]] = {"tiny": (0.95, 0.90), "tiny-llama": (0.95, 0.90),
                                               "smollm2": (0.90, None)}


def preset(name: str, task: str) -> dict:
    """The settings of preset ``name`` for ``task``."""
    if name not in PRESETS:
        raise WorkbenchError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    if task not in PRESETS[name]:
        raise WorkbenchError(f"preset {name!r} has no settings for task {task!r}; it covers {', '.join(PRESETS[name])}")
    return dict(PRESETS[name][task])
