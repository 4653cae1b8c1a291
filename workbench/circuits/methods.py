"""Circuit-discovery methods, one interface: ``method(experiment) -> Scores`` (higher = more in the circuit).

- ``acdc``: Conmy et al. 2023. Receivers from the output backwards, each incoming edge
  (latest sender first) is ablated for good when the metric moves by less than τ (ACDC's
  ``abs_value_threshold``: our metric is not a divergence from the clean run, an ablation
  that lowers it changes the behaviour as much as one that raises it); a receiver
  whose node no longer reaches the output loses all its inputs untested. Run for each τ of a
  sweep; an edge scores the largest τ it survives (0: never).
- ``eap``: edge attribution patching (Syed et al. 2023): |∂metric/∂a_e| at a = 0, i.e.
  |(ablated − clean sender output) · ∂metric/∂receiver input|, one backward pass.
- ``eap-ig``: EAP with integrated gradients over the edge coefficients (Hanna et al. 2024):
  |mean of ∂metric/∂a over a = α·1, α = k/steps for k = 0 … steps − 1| — the attribution of
  each edge along the path from the full model to the fully ablated one, summed as Hanna et
  al. do (their points run from the corrupt towards the clean input and include the clean one,
  a = 0 here; on saturated compiled MLPs the gradient vanishes away from it).
- ``patch``: node activation patching: each component's output ablated towards every
  receiver, score |Δmetric|; an edge scores the smaller score of its two components.
- ``random``: uniform random scores, the baseline.

Edge methods score a node by its highest-scoring incident edge.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from workbench.circuits.patching import Experiment
from workbench.errors import WorkbenchError


@dataclasses.dataclass
class Scores:
    edges: np.ndarray  # [edges]
    nodes: np.ndarray  # [components]


def _node_scores(experiment: Experiment, edge_scores: np.ndarray) -> np.ndarray:
    graph = experiment.graph
    best = dict.fromkeys(graph.components, 0.0)
    for score, (s, r) in zip(edge_scores, graph.edges):
        for node in (graph.senders[s], graph.receiver_node(r)):
            if node in best:
                best[node] = max(best[node], float(score))
    return np.array([best[c] for c in graph.components])


def _edge_method(edge_scores: np.ndarray, experiment: Experiment) -> Scores:
    return Scores(edge_scores, _node_scores(experiment, edge_scores))


def eap(experiment: Experiment, **_) -> Scores:
    coefficients = torch.zeros(experiment.n_edges, requires_grad=True)
    experiment.loss(coefficients).backward()
    return _edge_method(coefficients.grad.abs().numpy(), experiment)


def eap_ig(experiment: Experiment, steps: int = 5, **_) -> Scores:
    total = torch.zeros(experiment.n_edges)
    for alpha in np.arange(steps) / steps:
        coefficients = torch.full((experiment.n_edges,), float(alpha), requires_grad=True)
        experiment.loss(coefficients).backward()
        total += coefficients.grad
    return _edge_method((total / steps).abs().numpy(), experiment)


def acdc_circuit(experiment: Experiment, threshold: float, progress: Callable[[], None] = lambda: None
                 ) -> np.ndarray:
    """The edges one ACDC pass at ``threshold`` keeps (bool per edge)."""
    graph = experiment.graph
    ablated = torch.zeros(experiment.n_edges)
    incoming: dict[int, list[int]] = {}
    outgoing: dict[str, list[int]] = {}
    for e, (s, r) in enumerate(graph.edges):
        incoming.setdefault(r, []).append(e)
        outgoing.setdefault(graph.senders[s], []).append(e)
    prefix = None
    with torch.no_grad():
        current = float(experiment.loss(ablated))
        for r in reversed(range(len(graph.receivers))):
            edges = list(reversed(incoming.get(r, [])))
            node = graph.receiver_node(r)
            if node != "output" and all(ablated[e] == 1 for e in outgoing.get(node, [])):
                ablated[[e for e in edges if experiment.candidates[e]]] = 1  # the node no longer reaches the output
                for _ in edges:
                    progress()
                continue
            for e in edges:
                if not experiment.candidates[e]:
                    progress()
                    continue
                layer = graph.receiver_layer(r)
                if prefix is None or prefix.layer != layer:  # blocks before `layer` stay as they are from here on
                    prefix = experiment.prefix(ablated, layer)
                ablated[e] = 1
                trial = float(experiment.loss(ablated, prefix))
                if abs(trial - current) < threshold:
                    current = trial
                else:
                    ablated[e] = 0
                progress()
    return (ablated == 0).numpy()


def default_thresholds(experiment: Experiment, n: int = 10) -> list[float]:
    """``n`` thresholds spread geometrically from 1e-6 (above float32 noise) to 0.3 of the metric's full range (empty vs full model)."""
    full, empty = experiment.full_and_empty
    spread = abs(empty - full)
    if spread == 0:
        raise WorkbenchError("ablating every edge leaves the metric unchanged: nothing to discover with this "
                             "data and ablation (try zero ablation or corrupt inputs that change the answer)")
    return list(spread * np.geomspace(1e-6, 0.3, n))


def acdc(experiment: Experiment, thresholds: list[float] | None = None, n_thresholds: int = 10,
         progress: bool = False, **_) -> Scores:
    thresholds = sorted(thresholds or default_thresholds(experiment, n_thresholds))
    scores = np.zeros(experiment.n_edges)
    with tqdm(total=len(thresholds) * experiment.n_edges, desc="acdc", disable=not progress, leave=False) as bar:
        for threshold in thresholds:
            kept = acdc_circuit(experiment, threshold, lambda: bar.update(1))
            scores[kept] = threshold
    return _edge_method(scores, experiment)


def node_patching(experiment: Experiment, **_) -> Scores:
    graph = experiment.graph
    with torch.no_grad():
        full = float(experiment.loss())
        node_scores = []
        for component in graph.components:
            ablated = torch.tensor([float(graph.senders[s] == component) for s, _ in graph.edges])
            node_scores.append(abs(float(experiment.loss(ablated)) - full))
    by_node = dict(zip(graph.components, node_scores))
    # input and output are in every circuit: an edge scores its other end; input -> output gets no evidence (0)
    edge_scores = np.array([min(by_node.get(graph.senders[s], np.inf), by_node.get(graph.receiver_node(r), np.inf))
                            for s, r in graph.edges])
    edge_scores[np.isinf(edge_scores)] = 0.0
    return Scores(edge_scores, np.array(node_scores))


def random_scores(experiment: Experiment, seed: int = 0, **_) -> Scores:
    """Uniform scores; ``seed`` varies with the data resample."""
    rng = np.random.default_rng(seed)
    return Scores(rng.random(experiment.n_edges), rng.random(len(experiment.graph.components)))


METHODS: dict[str, Callable[..., Scores]] = {
    "acdc": acdc, "eap": eap, "eap-ig": eap_ig, "patch": node_patching, "random": random_scores,
}


def get_methods(names: str | list[str]) -> dict[str, Callable[..., Scores]]:
    names = names.split(",") if isinstance(names, str) else names
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise WorkbenchError(f"unknown method {unknown[0]!r}; available: {', '.join(METHODS)}")
    return {n: METHODS[n] for n in names}
