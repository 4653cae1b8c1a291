"""Checkpoints: exact round trip of weights, optimizer and RNG state, without pickle; recoverable corruption."""

import json
import pickle
import random
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from workbench import WorkbenchError
from workbench.inject import checkpoint


def _setup(seed=0):
    torch.manual_seed(seed)
    model, linear_map = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5)), nn.Linear(5, 2)
    optimizer = torch.optim.AdamW([{"params": model.parameters(), "lr": 1e-3},
                                   {"params": linear_map.parameters(), "lr": 1e-2, "weight_decay": 0.0}])
    return model, linear_map, optimizer


def _trained(steps=3):
    model, linear_map, optimizer = _setup()
    for _ in range(steps):
        loss = linear_map(model(torch.randn(4, 3))).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, linear_map, optimizer


def _draws():
    return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.standard_normal(),
            torch.rand(4).tolist(), torch.randint(0, 1000, (3,)).tolist())


@pytest.fixture
def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint must load without torch.load / pickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_optimizer_state_round_trips_tensor_by_tensor(tmp_path, no_unpickling):
    model, linear_map, optimizer = _trained()
    folder = checkpoint.save(tmp_path, 3, model, linear_map, optimizer, {"note": "x"})
    assert sorted(p.suffix for p in folder.iterdir()) == [".json"] * 4 + [".safetensors"] * 4
    fresh_model, fresh_map, fresh_optimizer = _setup(seed=1)
    checkpoint.load(folder, fresh_model, fresh_map, fresh_optimizer)
    saved, loaded = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    assert saved["state"].keys() == loaded["state"].keys() and len(saved["state"]) == 6
    for param, values in saved["state"].items():
        assert values.keys() == loaded["state"][param].keys() == {"step", "exp_avg", "exp_avg_sq"}
        for key, tensor in values.items():
            assert tensor.dtype == loaded["state"][param][key].dtype
            assert torch.equal(tensor, loaded["state"][param][key]), (param, key)
    for a, b in [(model, fresh_model), (linear_map, fresh_map)]:
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name
    # the next step from the restored state is the same step
    batch = torch.randn(4, 3)
    for m, lm, opt in [(model, linear_map, optimizer), (fresh_model, fresh_map, fresh_optimizer)]:
        opt.zero_grad()
        lm(m(batch)).pow(2).sum().backward()
        opt.step()
    for x, y in zip(model.parameters(), fresh_model.parameters()):
        assert torch.equal(x, y)


def test_rng_state_restored_gives_the_same_random_numbers(tmp_path, no_unpickling):
    model, linear_map, optimizer = _trained()
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    random.gauss(0, 1), np.random.standard_normal()  # leave a cached Gaussian in both generators
    folder = checkpoint.save(tmp_path, 1, model, linear_map, optimizer, {})
    expected = _draws()
    random.seed(6), np.random.seed(6), torch.manual_seed(6)
    assert _draws() != expected
    checkpoint.load(folder, *_setup())
    assert _draws() == expected


def test_load_returns_the_whole_state_json(tmp_path):
    model, linear_map, optimizer = _trained(1)
    extra = {"config": {"task": "count"}, "mapping": [0, 1, 2], "scheduler": {"last_epoch": 7, "base_lrs": [0.1]}}
    folder = checkpoint.save(tmp_path, 7, model, linear_map, optimizer, extra)
    assert checkpoint.load(folder, *_setup()) == {"step": 7, **extra}


def test_no_map_module(tmp_path):
    model, _, _ = _setup()
    optimizer = torch.optim.AdamW(model.parameters())
    folder = checkpoint.save(tmp_path, 1, model, None, optimizer, {})
    assert not (folder / "map.safetensors").exists()
    assert checkpoint.load(folder, model, None, torch.optim.AdamW(model.parameters()))["step"] == 1


def test_corrupt_checkpoint_names_a_fix_that_works(tmp_path):
    model, linear_map, optimizer = _trained(1)
    for step in (1, 2, 3):
        checkpoint.save(tmp_path, step, model, linear_map, optimizer, {})
    root = tmp_path / "checkpoints"
    assert [p.name for p in checkpoint.step_folders(tmp_path)] == ["step_0000002", "step_0000003"]
    newest = checkpoint.latest(tmp_path)
    assert newest == root / "step_0000003"
    weights = newest / "optimizer.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(WorkbenchError) as caught:
        checkpoint.load(newest, *_setup())
    message = str(caught.value)
    assert "\n" not in message and "step_0000003 is corrupt or truncated" in message
    assert checkpoint.newest_intact(tmp_path)[0] == root / "step_0000002"
    assert [f.name for f, _ in checkpoint.newest_intact(tmp_path)[1]] == ["step_0000003"]
    # follow the message: remove the named folder, and the run resumes from the one it names
    removed, resumes_from = re.search(r"remove the folder (\S+) and the run resumes from (step_\d+)", message).groups()
    shutil.rmtree(removed)
    assert (root / "latest").read_text() == "step_0000003"  # the pointer still names the removed folder
    assert checkpoint.latest(tmp_path) == root / resumes_from == root / "step_0000002"
    assert checkpoint.load(checkpoint.latest(tmp_path), *_setup())["step"] == 2
    # the next save points `latest` at it again and keeps two
    checkpoint.save(tmp_path, 4, model, linear_map, optimizer, {})
    assert [p.name for p in checkpoint.step_folders(tmp_path)] == ["step_0000002", "step_0000004"]
    assert checkpoint.latest(tmp_path) == root / "step_0000004"


def test_latest_without_or_with_a_bad_pointer(tmp_path):
    assert checkpoint.latest(tmp_path) is None
    model, linear_map, optimizer = _trained(1)
    for step in (9, 10):
        checkpoint.save(tmp_path, step, model, linear_map, optimizer, {})
    (tmp_path / "checkpoints" / ".step_0000011.tmpabc").mkdir()  # a staging folder is never a checkpoint
    pointer = tmp_path / "checkpoints" / "latest"
    for text in (None, "", "../../elsewhere", "step_0000099"):
        if text is None:
            pointer.unlink()
        else:
            pointer.write_text(text)
        assert checkpoint.latest(tmp_path).name == "step_0000010", text
    pointer.write_text("step_0000009")  # an intact older pointer is still honoured
    assert checkpoint.latest(tmp_path).name == "step_0000009"


def test_missing_manifest_and_legacy_pickled_checkpoint_are_refused(tmp_path, no_unpickling):
    model, linear_map, optimizer = _trained(1)
    folder = checkpoint.save(tmp_path, 1, model, linear_map, optimizer, {})
    (folder / "optimizer.safetensors").rename(folder / "optimizer.pt")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["optimizer.pt"] = manifest.pop("optimizer.safetensors")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WorkbenchError, match="older workbench .* train the run again"):
        checkpoint.load(folder, *_setup())
    (folder / "manifest.json").unlink()
    with pytest.raises(WorkbenchError, match="incomplete .no manifest.json.; remove the run folder"):
        checkpoint.verify(folder)


def test_unserialisable_extra_writes_nothing(tmp_path):
    model, linear_map, optimizer = _trained(1)
    with pytest.raises(TypeError):
        checkpoint.save(tmp_path, 1, model, linear_map, optimizer, {"bad": object()})
    assert checkpoint.step_folders(tmp_path) == [] and checkpoint.latest(tmp_path) is None
