"""Ground truth derived from the compiled program's structure — never from a discovery method's run.

**Tier 1, compiled models (head level).** Each head and MLP of the compiled model reads and
writes named residual dims (``CompiledModel.components``, from tracr's craft blocks). An edge
sender → receiver *meets* when the sender writes a dim the receiver's input (query, key,
value or MLP input; the output variable for ``output``) reads. A component is in the circuit
iff a chain of meeting edges leads from it to the output; an edge is in the circuit iff it
meets and its receiver is in the circuit. Padding heads and empty MLP layers write nothing
and are never in it. This is the truth for **zero ablation**: removing a meeting edge
deletes dims its receiver reads. Under mean or resample ablation it is an upper bound: an
edge whose dims carry the same values on every input (``one``, the BOS token, and positions
when clean and corrupt inputs have the same length) changes nothing when replaced.

**Tier 2, injected models (layer level).** The compiled block i sits between the model's
residuals at mapped blocks m_i and m_(i+1), so its attention and MLP are transported to the
model's attention and MLP layers m_i … m_(i+1) − 1 (one layer each with the paper's map).
The truth is then the tier-1 truth aggregated to layers and transported. It claims: if the
model computes the program where the alignment put it, these layers and edges carry it.
It does not claim that the model uses no other component (the pretrained computation runs
everywhere, the alignment loss is a linear read-out, not an intervention) and it says nothing
about layers after m_k, which carry the answer to the logits: those nodes and edges are left
out of the scoring (``domain``).

>>> from workbench.compiled import compile_lib
>>> from workbench.circuits.graph import build_graph
>>> compiled = compile_lib("reverse")
>>> truth = tier1(compiled, build_graph(compiled.model))
>>> int(truth.edges.sum()), [c for c, t in zip(truth.components, truth.nodes) if t]
(13, ['a0.h0', 'm0', 'm1', 'm2', 'a3.h0'])
"""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.circuits.graph import Graph, build_graph
from workbench.compiled import CompiledModel
from workbench.errors import WorkbenchError

INPUT_VARIABLES = ("tokens", "indices", "one")


@dataclasses.dataclass
class Truth:
    components: tuple[str, ...]
    edges: np.ndarray  # bool [edges]
    nodes: np.ndarray  # bool [components]
    edge_domain: np.ndarray  # bool [edges]: edges the truth speaks about
    node_domain: np.ndarray  # bool [components]
    ablation: str  # the ablation the truth is exact for
    tier: int


def _reads_and_writes(compiled: CompiledModel, graph: Graph) -> tuple[dict[int, set], dict[int, set]]:
    input_labels = {d.label for d in compiled.residual_dims if d.variable in INPUT_VARIABLES}
    by_name = {c.name: c for c in compiled.components}
    writes = {0: input_labels}
    for s, name in enumerate(graph.senders[1:], start=1):
        writes[s] = set(by_name[name].writes) if name in by_name else set()
    reads = {}
    output_labels = {d.label for d in compiled.residual_dims if d.variable == compiled.output_variable}
    for r, name in enumerate(graph.receivers):
        node = graph.receiver_node(r)
        if name == "output":
            reads[r] = output_labels
        elif node in by_name:
            reads[r] = set(by_name[node].reads["in" if node.startswith("m") else name[-1]])
        else:
            reads[r] = set()
    return reads, writes


def tier1(compiled: CompiledModel, graph: Graph) -> Truth:
    """The structural truth of a compiled model at head level (see the module docstring)."""
    if graph.level != "head" or graph.n_layers != compiled.n_layers:
        raise WorkbenchError("tier-1 truth needs the head-level graph of the compiled model itself")
    if not compiled.components:
        raise WorkbenchError("this compiled model has no structure; recompile it (cache entries older than "
                             "format 2 are recompiled automatically)")
    reads, writes = _reads_and_writes(compiled, graph)
    meets = np.array([bool(writes[s] & reads[r]) for s, r in graph.edges])
    live = {"output"}
    for e in reversed(range(len(graph.edges))):  # edges are ordered by receiver: later receivers first
        s, r = graph.edges[e]
        if meets[e] and graph.receiver_node(r) in live:
            live.add(graph.senders[s])
    edges = np.array([bool(meets[e]) and graph.receiver_node(r) in live for e, (_, r) in enumerate(graph.edges)])
    nodes = np.array([c in live for c in graph.components])
    return Truth(graph.components, edges, nodes, np.ones_like(edges), np.ones_like(nodes), "zero", 1)


def _layer_of(name: str) -> tuple[str, int]:
    """``a3.h1`` -> ("a", 3), ``m2`` -> ("m", 2)."""
    return name[0], int(name[1:].split(".")[0])


def tier2(compiled: CompiledModel, mapping: list[int], graph: Graph) -> Truth:
    """The compiled truth transported to an injected model's layer-level graph through ``mapping``."""
    if graph.level != "layer":
        raise WorkbenchError("tier-2 truth is defined on the layer-level graph (build_graph(model, 'layer'))")
    if len(mapping) != compiled.n_layers + 1 or mapping[-1] >= graph.n_layers:
        raise WorkbenchError(f"layer map {mapping} does not fit a {compiled.n_layers}-block program in a "
                             f"{graph.n_layers}-block model")
    compiled_graph = build_graph(compiled.model, "head")
    head_truth = tier1(compiled, compiled_graph)
    true_layers = {_layer_of(c) for c, t in zip(head_truth.components, head_truth.nodes) if t}
    true_pairs = set()
    for e, (s, r) in enumerate(compiled_graph.edges):
        if head_truth.edges[e] and compiled_graph.receivers[r] != "output":
            sender = compiled_graph.senders[s]
            true_pairs.add(("input" if sender == "input" else _layer_of(sender),
                            _layer_of(compiled_graph.receiver_node(r))))
    block_of = {m: i for i in range(compiled.n_layers) for m in range(mapping[i], mapping[i + 1])}

    def compiled_side(name: str):
        if name in ("input", "output"):
            return name
        kind, layer = _layer_of(name)
        return (kind, block_of[layer]) if layer in block_of else None

    edges, edge_domain = [], []
    for s, r in graph.edges:
        sender, receiver = compiled_side(graph.senders[s]), compiled_side(graph.receiver_node(r))
        inside = sender is not None and receiver is not None and receiver != "output"
        edge_domain.append(inside)
        edges.append(inside and ((sender, receiver) in true_pairs or (sender == receiver and sender in true_layers)))
    nodes = [compiled_side(c) in true_layers for c in graph.components]
    node_domain = [compiled_side(c) is not None for c in graph.components]
    return Truth(graph.components, np.array(edges), np.array(nodes), np.array(edge_domain), np.array(node_domain),
                 "zero", 2)
