"""The hooks of the workbench, written once: residual capture at mapped layers and the roll.

Decoding, ablation and circuits reuse these names and functions.
"""

from __future__ import annotations

from typing import Callable

import torch

from workbench.errors import WorkbenchError


def layer_map(compiled_layers: int, model_layers: int, kind: str = "paper") -> list[int]:
    """Model blocks m_0 < … < m_k whose ``hook_resid_pre`` aligns with the compiled residual after i blocks.

    ``paper``: m_i = i. ``spread``: the k + 1 points spread over the model's depth (the last
    one leaves a block for the roll). The model needs m_k + 1 blocks (the roll sits at the
    output of block m_k).
    """
    k = compiled_layers
    if model_layers < k + 1:
        raise WorkbenchError(f"the model has {model_layers} blocks but the compiled program has {k}: it needs at "
                             f"least {k + 1} (one per compiled block, plus the block the roll sits after); "
                             "use a deeper model or a shallower program")
    if kind == "paper":
        return list(range(k + 1))
    if kind == "spread":
        last = model_layers - 1
        return [round(i * last / k) if k else 0 for i in range(k + 1)]
    raise WorkbenchError(f"unknown layer map {kind!r}; use 'paper' or 'spread'")


def model_hook(block: int) -> str:
    return f"blocks.{block}.hook_resid_pre"


def compiled_hook(layer: int, compiled_layers: int) -> str:
    """The compiled residual after ``layer`` compiled blocks."""
    if not 0 <= layer <= compiled_layers:
        raise ValueError(f"layer {layer} outside 0..{compiled_layers}")
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


def roll_hook_name(mapping: list[int], roll_at: str = "after_last") -> str:
    return f"blocks.{mapping[-1]}.hook_resid_post" if roll_at == "after_last" else roll_at


def capture(store: dict[str, torch.Tensor]) -> Callable:
    """A forward hook that keeps the activation (with its graph) under its hook name."""

    def hook(activation, hook):
        store[hook.name] = activation
        return activation

    return hook


@torch.no_grad()
def subspace_projection(map_weight: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """P = M pinv(M), M = the map's rows for ``dims`` transposed (d_model × r): projection onto their span."""
    m = map_weight[dims].T.float()
    return (m @ torch.linalg.pinv(m)).to(map_weight.dtype)


def roll(activation: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """h·P + roll_batch(h − h·P, 1).detach(): outside the subspace, each example gets its neighbour's stream."""
    inside = activation @ projection
    outside = torch.roll(activation - inside, shifts=1, dims=0).detach()
    return inside + outside


def roll_hook(projection: torch.Tensor) -> Callable:
    def hook(activation, hook):
        return roll(activation, projection)

    return hook


def add_hook(delta: Callable[[str], torch.Tensor | None]) -> Callable:
    """A forward hook returning ``activation + delta(hook name)`` (``None``: unchanged).

    Edge patching in ``workbench.circuits`` adds, at each receiver's input, the difference
    between the ablated and the current outputs of the senders it is cut from.
    """

    def hook(activation, hook):
        change = delta(hook.name)
        return activation if change is None else activation + change

    return hook
