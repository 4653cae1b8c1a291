"""Where each RASP operation sits in the compiled model, and which residual dims it reads and writes.

This is the compiled program's structure, read from tracr's craft model (the blocks that
``assemble`` turns into weights): every attention head and MLP layer of the assembled model,
with the residual labels its query, key, value (or MLP input) read and its output writes.
Circuit ground truth (``workbench.circuits.truth``) is derived from it, never from weights
or from a discovery method's run.

>>> from workbench.compiled import compile_lib
>>> [c.name for c in compile_lib("reverse").components]
['a0.h0', 'm0', 'm1', 'm2', 'a3.h0']
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tracr.compiler import nodes
from tracr.craft import transformers


@dataclasses.dataclass(frozen=True)
class Component:
    """One attention head (``head`` set) or one MLP layer of the compiled model."""

    layer: int
    head: int | None
    operations: tuple[str, ...]  # labels of the RASP expressions computed here
    reads: dict[str, tuple[str, ...]]  # "q"/"k"/"v" for a head, "in" for an MLP -> residual labels
    writes: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"m{self.layer}" if self.head is None else f"a{self.layer}.h{self.head}"

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "head": self.head, "operations": list(self.operations),
                "reads": {k: list(v) for k, v in self.reads.items()}, "writes": list(self.writes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Component":
        return cls(data["layer"], data["head"], tuple(data["operations"]),
                   {k: tuple(v) for k, v in data["reads"].items()}, tuple(data["writes"]))


def _labels(space, used=None) -> tuple[str, ...]:
    """Residual labels (as ``ResidualDim.label`` writes them) of the dims of ``space`` that ``used`` marks.

    A craft block's spaces can hold dims its matrix ignores (a value space listing the BOS
    token whose row is zero): only dims with a nonzero row or column are read or written.
    """
    flags = [True] * space.num_dims if used is None else used
    return tuple(d.name if d.value is None else f"{d.name}:{d.value}" for d, f in zip(space.basis, flags) if f)


def _nonzero(matrix, axis: int) -> list[bool]:
    """Per row (axis=1) or per column (axis=0): whether any entry is nonzero."""
    return list(np.any(np.asarray(matrix) != 0, axis=axis))


def _operations_by_block(graph) -> dict[int, str]:
    """id(craft block) -> label of the RASP expression it computes (selector width has two blocks)."""
    found = {}
    for node_id, node in graph.nodes.items():
        block = node.get(nodes.MODEL_BLOCK)
        if block is None:
            continue
        for part in block.blocks if isinstance(block, transformers.SeriesWithResiduals) else [block]:
            found[id(part)] = node_id
    return found


def components_of(artifacts) -> list[Component]:
    """The heads and MLP layers of the assembled model in forward order (padding heads left out).

    Layers are placed as ``assemble`` places them: each craft block takes the next free
    attention or MLP half-layer of its kind.
    """
    operations = _operations_by_block(artifacts.graph)
    mlp_operations = [(label, artifacts.graph.nodes[label][nodes.MODEL_BLOCK]) for label in
                      artifacts.graph.nodes if isinstance(artifacts.graph.nodes[label].get(nodes.MODEL_BLOCK),
                                                          (transformers.MLP, transformers.SeriesWithResiduals))]
    half_layer, found = 0, []
    for module in artifacts.craft_model.blocks:
        is_mlp = isinstance(module, transformers.MLP)
        if half_layer % 2 != is_mlp:
            half_layer += 1
        layer = half_layer // 2
        if is_mlp:
            writes = _labels(module.snd.output_space, _nonzero(module.snd.matrix, 0))
            ops = tuple(label for label, block in mlp_operations
                        if set(_labels(_mlp_part(block).snd.output_space)) & set(writes))
            found.append(Component(layer, None, ops,
                                   {"in": _labels(module.fst.input_space, _nonzero(module.fst.matrix, 1))}, writes))
        else:
            for head_index, head in enumerate(module.as_multi().heads()):
                found.append(Component(
                    layer, head_index, (operations[id(head)],),
                    {"q": _labels(head.w_qk.left_space, _nonzero(head.w_qk.matrix, 1)),
                     "k": _labels(head.w_qk.right_space, _nonzero(head.w_qk.matrix, 0)),
                     "v": _labels(head.w_ov.input_space, _nonzero(head.w_ov.matrix, 1))},
                    _labels(head.w_ov.output_space, _nonzero(head.w_ov.matrix, 0))))
        half_layer += 1
    return found


def _mlp_part(block):
    return block.blocks[1] if isinstance(block, transformers.SeriesWithResiduals) else block
