"""Training data: fresh prompts in a seeded order, batches that depend on the step only, targets once per prompt."""

import copy
import logging
from types import SimpleNamespace

import pytest
import torch

from workbench.align import compiled_hook
from workbench.compiled import compile_lib
from workbench.inject.data import CompiledTargets, PromptStream, TaskBatches, compiled_targets
from workbench.models import tiny_model
from workbench.tasks import get_task
from workbench.tasks.base import in_test_split


@pytest.mark.parametrize("name", ["count", "dyck"])
def test_fresh_stream_never_repeats_and_never_leaks_test_prompts(name):
    stream = PromptStream(get_task(name), seed=3)
    prompts = [stream[i].prompt for i in range(3000)]
    assert len(set(prompts)) == len(prompts)
    assert not any(in_test_split(p) for p in prompts)
    again = PromptStream(get_task(name), seed=3)
    assert [again[i].prompt for i in (2999, 0, 1500)] == [prompts[2999], prompts[0], prompts[1500]]
    assert PromptStream(get_task(name), seed=4)[0].prompt != prompts[0] or PromptStream(get_task(name), 4)[1] != stream[1]


def test_listed_space_is_used_up_before_any_repeat_and_the_log_says_so(caplog):
    task = get_task("sum")
    space = task.train_space()
    assert len(space) == len({e.prompt for e in space}) > 0.85 * 451 ** 2
    assert not any(in_test_split(e.prompt) for e in space)
    stream = PromptStream(task, seed=0)
    first_pass = {stream[i].prompt for i in range(len(space))}
    assert first_pass == {e.prompt for e in space}
    with caplog.at_level(logging.WARNING):
        second = stream[len(space)]
    assert "used up" in caplog.text and "pass 2" in caplog.text
    assert second.prompt in first_pass and second.prompt != stream[0].prompt or len(space) == 1


def test_a_batch_depends_on_its_step_only():
    task, tiny = get_task("count"), tiny_model("tiny-gpt2", n_layers=4)
    compiled = task.compile()
    long_run = TaskBatches(task, tiny.tokenizer, compiled, seed=1, with_targets=False)
    for step in range(5):  # a run that has seen earlier steps
        long_run(step, 8)
    fresh = TaskBatches(task, tiny.tokenizer, compiled, seed=1, with_targets=False)
    assert torch.equal(fresh(4, 8)["ids"], long_run(4, 8)["ids"])
    halves = [fresh(4, 8, rank, 2)["ids"] for rank in (0, 1)]
    assert sorted(map(tuple, torch.cat([h[:, :3] for h in halves]).tolist())) == \
        sorted(map(tuple, long_run(4, 8)["ids"][:, :3].tolist()))


@pytest.mark.parametrize("name", ["count", "sum", "dyck"])
def test_targets_are_the_compiled_residuals_at_every_layer(name):
    task, tiny = get_task(name), tiny_model("tiny-gpt2", n_layers=4)
    compiled = task.compile()
    batch = TaskBatches(task, tiny.tokenizer, compiled, seed=0)(0, 3)
    assert len(batch["targets"]) == compiled.n_layers + 1
    row = 1
    length = int(batch["mask"][row].sum())
    tokens = [compiled.input_vocab[i] for i in batch["compiled_ids"][row, 1: length + 1].tolist()]
    expected = compiled.residuals(tokens)  # independent path: the compiled model's own residual API
    for layer, hook in enumerate(["blocks.0.hook_resid_pre", *(f"blocks.{i}.hook_resid_post"
                                                               for i in range(compiled.n_layers))]):
        # float32 rounding of tracr's steep MLPs (the reference) is ~5e-4; a flipped value would be ~1
        assert torch.allclose(batch["targets"][layer][row, :length], torch.as_tensor(expected[hook])[1:], atol=1e-3)
    # the sparse float64 pass equals the compiled model's own, at every layer and position
    for lean, full in zip(batch["targets"], compiled_targets(compiled, batch["compiled_ids"])):
        assert torch.allclose(lean, full, atol=1e-3)
    # and the dense forward pass in float64 to its rounding: only zero terms were left out
    dense = SimpleNamespace(model=copy.deepcopy(compiled.model).to(torch.float64))
    dense.model.cfg.dtype = torch.float64
    for lean, full in zip(CompiledTargets(compiled).exact(batch["compiled_ids"]),
                          compiled_targets(dense, batch["compiled_ids"]), strict=True):
        assert torch.allclose(lean, full, rtol=0, atol=1e-6)


def test_targets_do_not_merge_different_mlp_inputs_that_share_a_key():
    task = get_task("dyck")
    compiled = task.compile()
    ids = TaskBatches(task, tiny_model("tiny-gpt2", n_layers=4).tokenizer, compiled, seed=0,
                      with_targets=False)(0, 8)["compiled_ids"]
    targets = CompiledTargets(compiled)
    expected = targets.exact(ids)
    for _, mlp in targets.layers:
        mlp.probe = torch.zeros_like(mlp.probe)  # every input row projects to the same key
    for got, want in zip(targets.exact(ids), expected, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("program, tokens", [("sort", [3, 1, 4, 2]), ("hist", list("abcab"))])
def test_targets_of_a_bidirectional_program_see_every_position(program, tokens):
    compiled = compile_lib(program)  # tracr's library compiles without a causal mask
    assert not compiled.causal
    ids = compiled.encode(tokens)
    expected = compiled.residuals(tokens)
    for layer, target in enumerate(CompiledTargets(compiled)(ids)):
        assert torch.allclose(target[0], torch.as_tensor(expected[compiled_hook(layer, compiled.n_layers)])[1:],
                              atol=1e-3), layer


def test_compiled_targets_are_the_compiled_models_cached_residuals():
    task = get_task("count")
    compiled = task.compile()
    batch = TaskBatches(task, tiny_model("tiny-gpt2", n_layers=4).tokenizer, compiled, seed=0, with_targets=False)(0, 5)
    names = [compiled_hook(i, compiled.n_layers) for i in range(compiled.n_layers + 1)]
    _, cache = compiled.model.run_with_cache(batch["compiled_ids"], names_filter=names, return_type=None)
    for name, target in zip(names, compiled_targets(compiled, batch["compiled_ids"]), strict=True):
        assert torch.equal(target, cache[name][:, 1:]), name

