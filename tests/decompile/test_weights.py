"""The weight encoding (thesis §5.1.2): chunks of 512, type one-hot, terminal flag, architecture."""

import numpy as np
import pytest

from workbench.decompile.weights import (
    ASSEMBLED_TYPES,
    BLOCK,
    CRAFT_TYPES,
    assembled_weights,
    decode_weights,
    encode_weights,
    n_weight_tokens,
    token_width,
)
from workbench.errors import WorkbenchError


def test_token_widths_are_the_thesis_ones():
    assert token_width("craft") == 745 and token_width("assembled") == 747


def test_layout_of_a_token():
    rng = np.random.default_rng(0)
    weights = [("w_qk", rng.normal(size=(4, 5))), ("w_ov", rng.normal(size=(25, 30))),
               ("fst", rng.normal(size=(3, 600))), ("snd", rng.normal(size=(600, 2)))]
    tokens = encode_weights(weights, ["HEAD", "MLP"])
    assert tokens.shape == (1 + 2 + 4 + 3, 745) == (n_weight_tokens([20, 750, 1800, 1200]), 745)
    types = [CRAFT_TYPES[i] for i in tokens[:, :len(CRAFT_TYPES)].argmax(axis=1)]
    assert types == ["w_qk", "w_ov", "w_ov", "fst", "fst", "fst", "fst", "snd", "snd", "snd"]
    assert tokens[:, len(CRAFT_TYPES)].tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 0, 1]
    params = tokens[:, len(CRAFT_TYPES) + 1:len(CRAFT_TYPES) + 1 + BLOCK]
    np.testing.assert_array_equal(params[0, :20], weights[0][1].reshape(-1).astype(np.float32))
    assert not params[0, 20:].any()  # zero padding after the parameter
    np.testing.assert_array_equal(params[2, :750 - BLOCK], weights[1][1].reshape(-1)[BLOCK:].astype(np.float32))
    arch = tokens[:, len(CRAFT_TYPES) + 1 + BLOCK:]
    assert (arch == arch[0]).all()  # the same architecture in every token
    assert arch[0].reshape(-1, 3)[:3].tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]  # HEAD, MLP, then empty


def test_decode_inverts_encode():
    rng = np.random.default_rng(1)
    weights = [("w_qk", rng.normal(size=(7, 9))), ("w_ov", rng.normal(size=(40, 40))), ("fst", np.zeros((0, 3)))]
    decoded, layers = decode_weights(encode_weights(weights, ["HEAD", "MLP"]), [w.size for _, w in weights])
    assert layers == ["HEAD", "MLP"]
    assert [k for k, _ in decoded] == ["w_qk", "w_ov", "fst"]
    for (_, a), (_, b) in zip(weights, decoded):
        np.testing.assert_array_equal(a.reshape(-1).astype(np.float32), b)


def test_assembled_level_folds_a_projection_in():
    rng = np.random.default_rng(2)
    d, k = 6, 4
    params = {f"transformer/layer_0/attn/{n}": {"w": rng.normal(size=(d, 3))} for n in ("query", "key", "value")}
    params["transformer/layer_0/attn/linear"] = {"w": rng.normal(size=(3, d))}
    params["transformer/layer_0/mlp/linear_1"] = {"w": rng.normal(size=(d, 5))}
    params["transformer/layer_0/mlp/linear_2"] = {"w": rng.normal(size=(5, d))}
    projection = rng.normal(size=(k, d))
    weights, layers = assembled_weights(params, projection)
    assert layers == ["MHA", "MLP"]
    named = dict(weights)
    np.testing.assert_allclose(named["query"], projection @ params["transformer/layer_0/attn/query"]["w"])
    np.testing.assert_allclose(named["linear_2"], params["transformer/layer_0/mlp/linear_2"]["w"] @ projection.T)
    tokens = encode_weights(weights, layers, level="assembled")
    assert tokens.shape[1] == 747
    assert [ASSEMBLED_TYPES[i] for i in tokens[:, :9].argmax(axis=1)] == ["query", "key", "value", "linear",
                                                                          "linear_1", "linear_2"]


def test_bad_inputs_are_refused():
    with pytest.raises(WorkbenchError, match="not one of the craft types"):
        encode_weights([("query", np.ones(3))], ["HEAD"])
    with pytest.raises(WorkbenchError, match="slots"):
        encode_weights([("fst", np.ones(3))], ["MLP"] * 76)
    with pytest.raises(WorkbenchError, match="unknown weight level"):
        token_width("jax")
