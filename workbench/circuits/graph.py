"""The ACDC computational graph of a ``HookedTransformer``, from TransformerLens's split hooks.

Senders write into the residual stream: the embeddings (``input``), each attention head
(``a{L}.h{H}``, from ``hook_result``) or, at layer level, each attention layer (``a{L}``,
``hook_attn_out``), and each MLP (``m{L}``, ``hook_mlp_out``). Receivers read it: each head's
query, key and value input (``a{L}.h{H}.q|k|v``, ``hook_q_input`` …) or, at layer level, the
attention layer's input (``a{L}``: the same change to all three), each MLP's input
(``m{L}``, ``hook_mlp_in``) and the unembedding (``output``, the last ``hook_resid_post``).
An edge joins every sender to every receiver later in the forward pass.

>>> from workbench.compiled import compile_lib
>>> print(build_graph(compile_lib("reverse").model))
head-level graph: 10 nodes (4 heads, 4 MLPs), 77 edges
"""

from __future__ import annotations

import dataclasses

import torch
from transformer_lens import HookedTransformer

from workbench.errors import WorkbenchError

LEVELS = ("head", "layer")


@dataclasses.dataclass(frozen=True)
class Graph:
    level: str
    n_layers: int
    n_heads: int
    senders: tuple[str, ...]  # forward order, "input" first
    receivers: tuple[str, ...]  # forward order, "output" last
    edges: tuple[tuple[int, int], ...]  # (sender index, receiver index)

    @property
    def components(self) -> tuple[str, ...]:
        """Heads (or attention layers) and MLPs: the nodes a circuit may or may not contain."""
        return self.senders[1:]

    @property
    def nodes(self) -> tuple[str, ...]:
        return ("input",) + self.components + ("output",)

    @property
    def edge_names(self) -> list[str]:
        return [f"{self.senders[s]}->{self.receivers[r]}" for s, r in self.edges]

    def receiver_node(self, receiver: int) -> str:
        """The node a receiver belongs to (``a1.h0.q`` -> ``a1.h0``)."""
        name = self.receivers[receiver]
        return name.rsplit(".", 1)[0] if name.endswith((".q", ".k", ".v")) else name

    def receiver_layer(self, receiver: int) -> int:
        """The block whose forward pass reads the receiver (``output``: the last block's residual)."""
        name = self.receivers[receiver]
        return self.n_layers - 1 if name == "output" else int(name[1:].split(".")[0])

    @property
    def edge_index(self) -> torch.Tensor:
        """``[receivers, senders]``: the edge joining them, -1 where there is none."""
        index = torch.full((len(self.receivers), len(self.senders)), -1, dtype=torch.long)
        for e, (s, r) in enumerate(self.edges):
            index[r, s] = e
        return index

    def __str__(self) -> str:
        n_attn = len([c for c in self.components if c.startswith("a")])
        kind = "heads" if self.level == "head" else "attention layers"
        return (f"{self.level}-level graph: {len(self.nodes)} nodes ({n_attn} {kind}, {self.n_layers} MLPs), "
                f"{len(self.edges)} edges")


def _attention_names(layer: int, n_heads: int, level: str) -> list[str]:
    return [f"a{layer}.h{h}" for h in range(n_heads)] if level == "head" else [f"a{layer}"]


def build_graph(model: HookedTransformer, level: str = "head") -> Graph:
    """The edge graph of ``model`` at head or layer level (see the module docstring)."""
    if level not in LEVELS:
        raise WorkbenchError(f"unknown graph level {level!r}; use one of {LEVELS}")
    cfg = model.cfg
    if cfg.attn_only or cfg.parallel_attn_mlp:
        raise WorkbenchError("the circuit graph needs attention followed by an MLP in every block")
    if level == "head" and cfg.n_key_value_heads not in (None, cfg.n_heads):
        raise WorkbenchError(f"{cfg.model_name} groups its keys and values ({cfg.n_key_value_heads} for "
                             f"{cfg.n_heads} heads): use the layer-level graph (--level layer)")
    senders, sender_step = ["input"], [-1]
    receivers, receiver_step = [], []
    for layer in range(cfg.n_layers):
        attention = _attention_names(layer, cfg.n_heads, level)
        senders += attention + [f"m{layer}"]
        sender_step += [2 * layer] * len(attention) + [2 * layer + 1]
        reads = [f"{a}.{x}" for a in attention for x in "qkv"] if level == "head" else attention
        receivers += reads + [f"m{layer}"]
        receiver_step += [2 * layer] * len(reads) + [2 * layer + 1]
    receivers.append("output")
    receiver_step.append(2 * cfg.n_layers)
    edges = tuple((s, r) for r, r_step in enumerate(receiver_step) for s, s_step in enumerate(sender_step)
                  if s_step < r_step)
    return Graph(level, cfg.n_layers, cfg.n_heads, tuple(senders), tuple(receivers), edges)
