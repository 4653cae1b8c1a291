"""Ground truth derived from the compiled program's structure — never from a discovery method's run.

**Tier 1, compiled models (head level), one edge set per ablation.** Each head and MLP of the
compiled model reads and writes named residual dims (``CompiledModel.components``, from
tracr's craft blocks). An edge sender → receiver *meets* when the sender writes a dim the
receiver's input (query, key, value or MLP input; the output variable for ``output``) reads.
A component is in the circuit iff a chain of meeting edges leads from it to the output; an
edge is in the circuit iff it meets and its receiver is in the circuit. Padding heads and
empty MLP layers write nothing and are never in it (``Truth.writing`` marks the components
that write something). What *meets* means depends on the ablation:

- ``zero``: any dim the sender writes and the receiver reads. Removing the edge deletes
  those dims from the receiver's input, the constant ones included (``one``, the BOS token's
  dim, the positions): an edge carrying only those is real.
- ``mean`` and ``resample``: only dims that can differ between the clean input and the
  replacement. Constant dims hold the same value at a position on every input, so replacing
  the sender's output by its mean or by its output on another input leaves them unchanged,
  and an edge carrying nothing else changes nothing. Constant under both: ``one`` (every
  token, padding included, writes it) and the BOS token's dim (always exactly position 0).
  ``indices:*`` (the position embedding) is constant under **mean** ablation only (the mean
  at a position is taken over the corrupt rows with a real token there; exact where at least
  one corrupt row reaches the position), not under **resample** ablation: inputs differ in
  length and TransformerLens gives a padding position no position embedding, so where the
  corrupt input is shorter than the clean one its positions read 0. An MLP that reads only
  constant dims writes constant dims too (it works position by position); a head is always
  taken to vary (its attention depends on the input's length through the padding mask even
  when it reads only constant dims).

``check_truth`` tests a truth empirically: each true edge, cut alone, should change the
output on at least one input of a large random set; it reports the edges where it does not
(e.g. a BOS fallback of a selector that never fires because every query matches some key).

**Tier 2, injected models (layer level).** The compiled block i sits between the model's
residuals at mapped blocks m_i and m_(i+1), so its attention and MLP are transported to the
model's attention and MLP layers m_i … m_(i+1) − 1 (one layer each with the paper's map).
The truth is then the tier-1 truth of the same ablation aggregated to layers and transported.
It claims: if the model computes the program where the alignment put it, these layers and
edges carry it. It does not claim that the model uses no other component (the pretrained
computation runs everywhere, the alignment loss is a linear read-out, not an intervention)
and it says nothing about layers after m_k, which carry the answer to the logits: those
nodes and edges are left out of the scoring (``domain``).

>>> from workbench.compiled import compile_lib
>>> from workbench.circuits.graph import build_graph
>>> compiled = compile_lib("reverse")
>>> graph = build_graph(compiled.model)
>>> truth = tier1(compiled, graph)
>>> int(truth.edges.sum()), [c for c, t in zip(truth.components, truth.nodes) if t]
(13, ['a0.h0', 'm0', 'm1', 'm2', 'a3.h0'])
>>> sorted(set(truth.edge_names(graph)) - set(tier1(compiled, graph, "mean").edge_names(graph)))
['input->a0.h0.v', 'input->a3.h0.k', 'input->a3.h0.q', 'input->m0', 'input->m1']
>>> sorted(set(truth.edge_names(graph)) - set(tier1(compiled, graph, "resample").edge_names(graph)))
['input->a0.h0.v', 'input->a3.h0.q', 'input->m0']
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from workbench.circuits.graph import Graph, build_graph
from workbench.circuits.patching import ABLATIONS, Experiment, run_graph
from workbench.compiled import CompiledModel
from workbench.errors import WorkbenchError

INPUT_VARIABLES = ("tokens", "indices", "one")
CONSTANT_VARIABLES = {"mean": ("indices", "one"), "resample": ("one",)}  # the BOS token's dim too


@dataclasses.dataclass
class Truth:
    components: tuple[str, ...]
    edges: np.ndarray  # bool [edges]
    nodes: np.ndarray  # bool [components]
    edge_domain: np.ndarray  # bool [edges]: edges the truth speaks about
    node_domain: np.ndarray  # bool [components]
    ablation: str  # the ablation this truth is for: "zero", "mean" or "resample"
    tier: int
    writing: np.ndarray | None = None  # bool [components]: writes something (padding heads, empty MLPs: no)

    def edge_names(self, graph: Graph) -> list[str]:
        """Names of the true edges."""
        return [name for name, t in zip(graph.edge_names, self.edges) if t]


def constant_labels(compiled: CompiledModel, ablation: str) -> set[str]:
    """Residual labels that ``ablation`` (mean or resample) leaves unchanged at every position: ``one`` and
    the BOS token's dim, and ``indices:*`` under mean ablation (see the module docstring)."""
    return {d.label for d in compiled.residual_dims
            if d.variable in CONSTANT_VARIABLES[ablation] or d.label == f"tokens:{compiled.bos}"}


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


def _varying_writes(compiled: CompiledModel, graph: Graph, reads: dict[int, set], writes: dict[int, set],
                    ablation: str) -> dict[int, set]:
    """Per sender, the dims it writes that ``ablation`` (mean or resample) can change."""
    constant = constant_labels(compiled, ablation)
    varying = {0: writes[0] - constant}
    receiver_of = {graph.receiver_node(r): r for r in range(len(graph.receivers)) if graph.receivers[r][0] == "m"}
    incoming: dict[int, list[int]] = {}
    for s, r in graph.edges:
        incoming.setdefault(r, []).append(s)
    for s, name in enumerate(graph.senders[1:], start=1):
        if name.startswith("a"):
            varying[s] = writes[s]  # a head's attention depends on the input's length (padding mask)
        else:
            r = receiver_of[name]
            reads_varying = any(varying[t] & reads[r] for t in incoming.get(r, []))
            varying[s] = writes[s] if reads_varying else set()
    return varying


def tier1(compiled: CompiledModel, graph: Graph, ablation: str = "zero") -> Truth:
    """The structural truth of a compiled model at head level for ``ablation`` (see the module docstring)."""
    if graph.level != "head" or graph.n_layers != compiled.n_layers:
        raise WorkbenchError("tier-1 truth needs the head-level graph of the compiled model itself")
    if ablation not in ABLATIONS:
        raise WorkbenchError(f"unknown ablation {ablation!r}; use one of {ABLATIONS}")
    if not compiled.components:
        raise WorkbenchError("this compiled model has no structure; recompile it (cache entries older than "
                             "format 2 are recompiled automatically)")
    reads, writes = _reads_and_writes(compiled, graph)
    carried = writes if ablation == "zero" else _varying_writes(compiled, graph, reads, writes, ablation)
    meets = np.array([bool(carried[s] & reads[r]) for s, r in graph.edges])
    live = {"output"}
    for e in reversed(range(len(graph.edges))):  # edges are ordered by receiver: later receivers first
        s, r = graph.edges[e]
        if meets[e] and graph.receiver_node(r) in live:
            live.add(graph.senders[s])
    edges = np.array([bool(meets[e]) and graph.receiver_node(r) in live for e, (_, r) in enumerate(graph.edges)])
    nodes = np.array([c in live for c in graph.components])
    writing = np.array([bool(writes[s]) for s in range(1, len(graph.senders))])
    return Truth(graph.components, edges, nodes, np.ones_like(edges), np.ones_like(nodes), ablation, 1, writing)


def _layer_of(name: str) -> tuple[str, int]:
    """``a3.h1`` -> ("a", 3), ``m2`` -> ("m", 2)."""
    return name[0], int(name[1:].split(".")[0])


def tier2(compiled: CompiledModel, mapping: list[int], graph: Graph, ablation: str = "zero") -> Truth:
    """The compiled truth for ``ablation`` transported to an injected model's layer-level graph through ``mapping``.

    ``Truth.writing`` marks the scored layers whose compiled counterpart writes something.
    """
    if graph.level != "layer":
        raise WorkbenchError("tier-2 truth is defined on the layer-level graph (build_graph(model, 'layer'))")
    if len(mapping) != compiled.n_layers + 1 or mapping[-1] >= graph.n_layers:
        raise WorkbenchError(f"layer map {mapping} does not fit a {compiled.n_layers}-block program in a "
                             f"{graph.n_layers}-block model")
    compiled_graph = build_graph(compiled.model, "head")
    head_truth = tier1(compiled, compiled_graph, ablation)
    writing_layers = {_layer_of(c) for c, w in zip(head_truth.components, head_truth.writing) if w}
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
    writing = [compiled_side(c) in writing_layers for c in graph.components]
    return Truth(graph.components, np.array(edges), np.array(nodes), np.array(edge_domain), np.array(node_domain),
                 ablation, 2, np.array(writing))


def edge_effects(model, graph: Graph, data, ablation: str, edges: list[int], batch: int = 64,
                 atol: float = 1e-3) -> np.ndarray:
    """For each edge index in ``edges``: on how many clean inputs of ``data`` (a ``CircuitData``) cutting it
    alone changes the output at a scored position (categorical: the argmax; numerical: by more than
    ``atol`` times max(1, |value|)).

    Rows are taken ``batch`` at a time, each batch with its own corrupt rows (mean ablation: their mean).
    """
    counts = np.zeros(len(edges), dtype=int)
    for start in range(0, len(data.clean), batch):
        rows = slice(start, start + batch)
        if not data.positions[rows].any():
            continue
        experiment = Experiment(model, graph, data.clean[rows], data.corrupt[rows], data.positions[rows], ablation,
                                data.numerical, data.clean_mask[rows], data.corrupt_mask[rows])
        with torch.no_grad():
            for i, e in enumerate(edges):
                ablated = torch.zeros(experiment.n_edges)
                ablated[e] = 1
                logits, _ = run_graph(model, graph, experiment.clean, ablated, experiment.replacement,
                                      experiment.clean_mask)
                if experiment.numerical:
                    clean = experiment.clean_output
                    changed = (logits[..., 0] - clean).abs() > atol * clean.abs().clamp(min=1)
                else:
                    changed = logits.argmax(-1) != experiment.answers
                counts[i] += int((changed & experiment.positions).any(-1).sum())
    return counts


def check_truth(model, graph: Graph, truth: Truth, data, ablation: str | None = None, which: str = "true",
                batch: int = 64) -> pd.DataFrame:
    """Cut each edge alone on every input of ``data``: one row per edge (``which``: ``"true"`` edges or
    ``"all"`` scored edges) with ``true`` and ``changed`` (inputs whose output changed) out of ``inputs``.

    Every true edge should change the output on at least one input: the rows ``true & changed == 0``
    are edges the truth keeps but no input of this set needs (report them, e.g. a BOS fallback that
    never fires). With ``which="all"``, rows ``~true & changed > 0`` would be edges the truth misses.
    ``ablation`` defaults to the one the truth is for.
    """
    if which not in ("true", "all"):
        raise WorkbenchError(f"which={which!r}: use 'true' or 'all'")
    chosen = truth.edges if which == "true" else truth.edge_domain
    edges = [int(e) for e in np.flatnonzero(chosen)]
    changed = edge_effects(model, graph, data, ablation or truth.ablation, edges, batch)
    names = graph.edge_names
    return pd.DataFrame({"edge": [names[e] for e in edges], "true": [bool(truth.edges[e]) for e in edges],
                         "changed": changed, "inputs": len(data.clean)})
