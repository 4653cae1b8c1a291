"""The hooks of the workbench, written once: residual capture at mapped layers and the roll.

Decoding, ablation and circuits reuse these functions. The layer map and the hook names of
both residuals (``layer_map``, ``model_hook``, ``compiled_hook``) belong to ``workbench.align``
and are re-exported here for older imports.
"""

from __future__ import annotations

from typing import Callable

import torch

from workbench.align.layers import compiled_hook, layer_map, model_hook  # re-exported: they live in align


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


def roll(activation: torch.Tensor, projection: torch.Tensor, share: float = 1.0) -> torch.Tensor:
    """h·P + roll_batch(h − h·P, 1).detach(): outside the subspace, each example gets its neighbour's stream.

    ``share`` < 1 mixes: h·P + (1 − share)·(h − h·P) + share·roll_batch(h − h·P, 1).detach(), so a
    ramp of the share lets the blocks above move to the answer subspace instead of losing the rest at once.
    """
    inside = activation @ projection
    outside = activation - inside
    rolled = torch.roll(outside, shifts=1, dims=0).detach()
    return inside + rolled if share == 1.0 else inside + (1.0 - share) * outside + share * rolled


def roll_hook(projection: torch.Tensor, share: float = 1.0) -> Callable:
    def hook(activation, hook):
        return roll(activation, projection, share)

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


__all__ = ["add_hook", "capture", "compiled_hook", "layer_map", "model_hook", "roll", "roll_hook", "roll_hook_name",
           "subspace_projection"]
