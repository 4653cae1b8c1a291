import pytest
import torch

from workbench import WorkbenchError
from workbench.inject.hooks import compiled_hook, layer_map, roll, subspace_projection


def test_roll_keeps_the_subspace_and_takes_the_rest_from_the_partner():
    torch.manual_seed(0)
    weight = torch.randn(10, 16)  # a map d_model=16 -> compiled width 10
    projection = subspace_projection(weight, [2, 5, 7])
    assert torch.allclose(projection @ projection, projection, atol=1e-5)  # a projection
    assert torch.allclose(projection, projection.T, atol=1e-5)  # orthogonal
    assert torch.linalg.matrix_rank(projection) == 3
    h = torch.randn(4, 3, 16, requires_grad=True)
    out = roll(h, projection)
    inside = h @ projection
    for b in range(4):
        partner = (b - 1) % 4
        expected = inside[b] + (h[partner] - h[partner] @ projection)
        assert torch.allclose(out[b], expected, atol=1e-5)
    # the map's rows span the subspace: the map reads the same final-variable values after the roll
    assert torch.allclose(out @ weight[[2, 5, 7]].T, h @ weight[[2, 5, 7]].T, atol=1e-4)
    # no gradient flows through the rolled part: d out / d h = P for every example
    out.sum().backward()
    assert torch.allclose(h.grad, torch.ones(4, 3, 16) @ projection, atol=1e-5)


def test_a_partial_roll_mixes_the_own_rest_with_the_neighbours():
    torch.manual_seed(1)
    projection = subspace_projection(torch.randn(10, 16), [1, 4])
    h = torch.randn(3, 2, 16, requires_grad=True)
    assert torch.allclose(roll(h, projection, 0.0), h, atol=1e-5)
    out = roll(h, projection, 0.25)
    full = roll(h, projection)
    assert torch.allclose(out, 0.75 * h + 0.25 * full, atol=1e-5)
    # the own rest keeps its gradient at its share: d out / d h = P + 0.75 (I - P)
    out.sum().backward()
    expected = torch.ones(3, 2, 16) @ (projection + 0.75 * (torch.eye(16) - projection))
    assert torch.allclose(h.grad, expected, atol=1e-5)


def test_layer_maps_and_too_shallow_models():
    assert layer_map(3, 12) == [0, 1, 2, 3]
    spread = layer_map(3, 30, "spread")
    assert spread[0] == 0 and spread[-1] == 29 and spread == sorted(set(spread))
    assert layer_map(6, 7) == list(range(7))
    with pytest.raises(WorkbenchError, match="the model has 6 blocks but the compiled program has 6: it needs at least 7"):
        layer_map(6, 6)
    assert compiled_hook(0, 3) == "blocks.0.hook_resid_pre" and compiled_hook(3, 3) == "blocks.2.hook_resid_post"


def test_a_layer_map_given_as_blocks_is_checked_against_program_and_model():
    assert layer_map(3, 30, "0,7,14,21") == [0, 7, 14, 21]
    for wrong in ("0,7,14", "0,7,7,21", "0,7,14,30", "1,x,2,3"):
        with pytest.raises(WorkbenchError, match="layer map"):
            layer_map(3, 30, wrong)
    from workbench.inject.config import InjectionConfig

    assert InjectionConfig(layer_map="0,7,14,21").layer_map == "0,7,14,21"
    with pytest.raises(WorkbenchError, match="layer_map must be 'paper', 'spread' or model blocks"):
        InjectionConfig(layer_map="deep")
