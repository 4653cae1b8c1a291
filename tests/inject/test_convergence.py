"""Injection works: the tiny preset teaches a model from scratch to count, measured by strict greedy
exact match on held-out test prompts (an untrained model scores 0 %)."""

import pytest

from workbench.evaluate import answer_correct
from workbench.inject.config import InjectionConfig
from workbench.inject.presets import preset
from workbench.inject.trainer import train
from workbench.tasks import get_task


def _run(tmp_path, steps: int, **overrides) -> tuple[float, dict]:
    config = InjectionConfig(**{**preset("tiny", "count"), "task": "count", "steps": steps, "eval_every": 0,
                                "target_accuracy": 0.0, **overrides})
    result = train(config, tmp_path / "count", progress=False)
    task = get_task("count")
    examples = task.split("test", 100, seed=11)  # not the trainer's held-out batch: an independent check
    model = result["injector"].model.eval()
    return sum(answer_correct(model, result["tokenizer"], task, examples)) / len(examples), result


def test_a_short_tiny_count_run_already_answers_held_out_prompts(tmp_path):
    accuracy, _ = _run(tmp_path, steps=200)
    assert accuracy >= 0.2, accuracy


@pytest.mark.slow
def test_the_tiny_count_preset_injects_count(tmp_path):
    accuracy, _ = _run(tmp_path, steps=1500)
    assert accuracy >= 0.9, accuracy
