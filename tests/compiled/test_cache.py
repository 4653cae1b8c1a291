"""The disk cache returns the same model, and refuses stale or corrupt entries loudly."""

import json
import logging

import pytest
import torch

from workbench.compiled import cache_dir, compile_lib
from workbench.compiled.cache import cache_key

SPEC_ARGS = dict(name="sort", causal=False)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test starts from an empty cache (other tests compile the same programs)."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))


def _entry_folder():
    (folder,) = [p for p in cache_dir().iterdir() if (p / "meta.json").exists() and
                 json.loads((p / "meta.json").read_text())["spec"].get("lib_program") == "sort"]
    return folder


def _assert_same_model(a, b):
    assert a.residual_dims == b.residual_dims
    assert a.input_vocab == b.input_vocab and a.output_values == b.output_values
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    assert a.run([3, 1, 2, 2]) == b.run([3, 1, 2, 2]) == [1, 2, 2, 3]


def test_round_trip_and_reuse():
    fresh = compile_lib(**SPEC_ARGS)
    assert fresh.tracr is not None  # compiled now
    cached = compile_lib(**SPEC_ARGS)
    assert cached.tracr is None  # read from disk
    _assert_same_model(fresh, cached)


def test_stale_entry_is_reported_and_recompiled(caplog):
    compile_lib(**SPEC_ARGS)
    meta_path = _entry_folder() / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["tracr"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="workbench"):
        model = compile_lib(**SPEC_ARGS)
    assert "is stale" in caplog.text and "0.0.1" in caplog.text
    assert model.tracr is not None
    assert json.loads(meta_path.read_text())["tracr"] != "0.0.1"  # rewritten
    assert compile_lib(**SPEC_ARGS).tracr is None


def test_corrupt_entry_is_reported_and_recompiled(caplog):
    reference = compile_lib(**SPEC_ARGS)
    weights = _entry_folder() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="workbench"):
        model = compile_lib(**SPEC_ARGS)
    assert "is unreadable" in caplog.text
    # A recompilation draws new tracr uids for unnamed variables, so compare behaviour and shape.
    assert model.tracr is not None
    assert model.run([3, 1, 2, 2]) == reference.run([3, 1, 2, 2])
    assert len(model.residual_dims) == len(reference.residual_dims)
    _assert_same_model(model, compile_lib(**SPEC_ARGS))  # the rewritten entry is read back


def test_key_depends_on_every_argument():
    base = {"lib_program": "sort", "max_seq_len": 5, "causal": False}
    keys = {cache_key(base), cache_key({**base, "causal": True}), cache_key({**base, "max_seq_len": 6}),
            cache_key({**base, "lib_program": "hist"})}
    assert len(keys) == 4
    assert cache_key(dict(reversed(list(base.items())))) == cache_key(base)
