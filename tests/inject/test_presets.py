"""The CPU presets can hold their program: deep and wide enough for the compiled model they are aligned to."""

import functools

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.inject.data import TaskBatches
from workbench.inject.presets import PRESETS, preset
from workbench.models.tokenizers import adapt_tokenizer, gpt2_tokenizer
from workbench.tasks import get_task

TINY_PRESETS = [(name, task) for name in PRESETS if name.startswith("tiny") for task in PRESETS[name]]


@functools.lru_cache(maxsize=None)  # the tiny presets of both model families share their tasks
def _residual_rank(task_name: str, n_prompts: int = 256) -> int:
    """Rank of the compiled residual after the last block over the real positions of train prompts."""
    task = get_task(task_name)
    compiled = task.compile()
    batch = TaskBatches(task, adapt_tokenizer(gpt2_tokenizer()), compiled, seed=0)(0, n_prompts)
    residual = batch["targets"][-1][batch["mask"].bool()].double()
    singular = torch.linalg.svdvals(residual)
    return int((singular > 1e-6 * singular[0]).sum())


@pytest.mark.parametrize("name,task", TINY_PRESETS)
def test_a_tiny_preset_is_one_block_deeper_and_as_wide_as_its_compiled_residual(name, task):
    # The map is linear from the model's residual, so a model narrower than the rank of the compiled
    # residual cannot be aligned (sum at width 128: rank 211, held-out accuracy stuck at 1-3 %).
    settings = preset(name, task)
    assert settings["tiny_layers"] == get_task(task).compile().n_layers + 1
    assert settings["tiny_d_model"] <= 256
    assert settings["tiny_d_model"] >= _residual_rank(task)


def test_unknown_preset_or_task_names_what_exists():
    with pytest.raises(WorkbenchError, match="available: tiny"):
        preset("huge", "count")
    with pytest.raises(WorkbenchError, match="covers count"):
        preset("tiny", "dyck-paper")


@pytest.mark.parametrize("task", list(PRESETS["smollm2"]))
def test_a_smollm2_preset_aligns_every_compiled_residual_below_the_last_block(task):
    from workbench.align import layer_map

    settings = preset("smollm2", task)
    blocks = layer_map(get_task(task).compile().n_layers, 30, settings["layer_map"])  # SmolLM2-135M: 30 blocks
    assert blocks[0] == 0 and 30 - 1 - blocks[-1] >= 8  # eight pretrained blocks above the roll
