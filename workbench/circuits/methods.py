"""Circuit-discovery methods, one interface: ``method(experiment) -> Scores`` (higher = more in the circuit).

- ``acdc``: Conmy et al. 2023. Receivers from the output backwards, each incoming edge
  (latest sender first) is ablated for good when the metric moves by less than τ (ACDC's
  ``abs_value_threshold``: our metric is not a divergence from the clean run, an ablation
  that lowers it changes the behaviour as much as one that raises it); a receiver
  whose node no longer reaches the output loses all its inputs untested. Run for each τ of a
  sweep; an edge scores the largest τ it survives (0: never). Only the scored domain is
  searched: the other edges stay in every circuit and get no score.
- ``eap``: edge attribution patching (Syed et al. 2023): |∂metric/∂a_e| at a = 0, i.e.
  |(ablated − clean sender output) · ∂metric/∂receiver input|, one backward pass.
- ``eap-ig``: EAP with integrated gradients over the edge coefficients (Hanna et al. 2024):
  |mean of ∂metric/∂a over a = α·1, α = k/steps for k = 0 … steps − 1| — the attribution of
  each edge along the path from the full model to the fully ablated one, summed as Hanna et
  al. do (their points run from the corrupt towards the clean input and include the clean one,
  a = 0 here). See :func:`eap_ig` for why it equals EAP on the compiled dyck and sum programs.
- ``patch``: node activation patching: each component's output ablated towards every
  receiver, score |Δmetric|; an edge scores the smaller score of its two components.
- ``random``: uniform random scores, the baseline.

Edge methods score a node by its highest-scoring incident edge of the scored domain
(``experiment.domain``). Every method leaves the edges outside the domain, and the nodes with
no edge in it, unscored (NaN): they are excluded from every AUC and never ranked.
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
    edges: np.ndarray  # [edges], NaN outside the scored domain
    nodes: np.ndarray  # [components], NaN for a component with no edge in the scored domain
    info: dict = dataclasses.field(default_factory=dict)  # per-method facts for the tables (EAP-IG's steps)


def scored_nodes(experiment: Experiment) -> np.ndarray:
    """Components with at least one edge (sent or received) in the scored domain (bool per component)."""
    graph = experiment.graph
    touched = set()
    for inside, (s, r) in zip(experiment.domain.tolist(), graph.edges):
        if inside:
            touched.update((graph.senders[s], graph.receiver_node(r)))
    return np.array([c in touched for c in graph.components])


def _node_scores(experiment: Experiment, edge_scores: np.ndarray) -> np.ndarray:
    """Each component's highest score over its edges in the scored domain (NaN: no such edge)."""
    graph = experiment.graph
    best = dict.fromkeys(graph.components, np.nan)
    for inside, score, (s, r) in zip(experiment.domain.tolist(), edge_scores, graph.edges):
        if not inside:
            continue
        for node in (graph.senders[s], graph.receiver_node(r)):
            if node in best:
                best[node] = float(score) if np.isnan(best[node]) else max(best[node], float(score))
    return np.array([best[c] for c in graph.components])


def _restrict(experiment: Experiment, edge_scores: np.ndarray) -> np.ndarray:
    """``edge_scores`` (float) with the edges outside the scored domain unscored (NaN)."""
    edge_scores = np.asarray(edge_scores, dtype=float).copy()
    edge_scores[~experiment.domain.numpy()] = np.nan
    return edge_scores


def _edge_method(edge_scores: np.ndarray, experiment: Experiment, **info) -> Scores:
    edge_scores = _restrict(experiment, edge_scores)
    return Scores(edge_scores, _node_scores(experiment, edge_scores), info)


def eap(experiment: Experiment, **_) -> Scores:
    coefficients = torch.zeros(experiment.n_edges, requires_grad=True)
    experiment.loss(coefficients).backward()
    return _edge_method(coefficients.grad.abs().numpy(), experiment)


def eap_ig(experiment: Experiment, steps: int = 5, **_) -> Scores:
    """EAP-IG: the gradient averaged over ``steps`` points of the straight path a = α·d, α = k/steps,
    d = the scored domain (from the full model towards the empty circuit).

    ``Scores.info`` reports ``ig_steps``, ``ig_nonzero_steps`` (path points where the gradient
    is not exactly zero) and ``ig_completeness`` (Σ signed attributions / (L_empty − L_full):
    1 when the Riemann sum has converged).

    **Why EAP-IG equals EAP on the compiled dyck and sum programs.** Under zero ablation the
    point a = α·1 scales each edge's contribution by c = 1 − α, so a value computed k components
    deep reaches its reader scaled by about c^k, while the ``one`` dim, which tracr's MLPs use as
    their bias and threshold, comes straight from the embeddings scaled by c only. Deep in the
    chains of MLPs (sum: m2 … m9; dyck: m1 … m3, m5) the thresholds win, the ReLUs switch off
    and the outputs are exactly zero (on 8 test prompts: m8 and m9 of sum from α = 0.02, m3 … m9
    from α = 0.1; m2, m3 and m5 of dyck from α = 0.2); the loss is the empty circuit's
    (log |outputs|) from α ≈ 0.02 (sum) and α = 0.2 (dyck). Beyond that the gradient is exactly
    0, so of the 5 points only α = 0 contributes (``ig_nonzero_steps`` = 1): the scores are
    EAP's divided by 5, with the same ranking, hence the same AUC, faithfulness and rank
    stability. This is the path on these models, not a bug, and more steps do not change it:
    with 20 and 50 steps on dyck and up to 100 on sum the ranking keeps a Spearman correlation
    ≥ 0.9999 with EAP's and the edge AUC does not move, because before the collapse the
    gradient is nearly parallel to the one at α = 0 (cosine 0.997 at α = 0.05 on dyck) and the
    collapse is too sharp for a uniform grid (completeness 1.5 at 100 steps on sum, 38 at 50
    steps on dyck). On the library programs reverse, count and hist EAP-IG and EAP differ.
    """
    direction = experiment.domain.float()
    total = torch.zeros(experiment.n_edges)
    nonzero = 0
    for alpha in np.arange(steps) / steps:
        coefficients = (float(alpha) * direction).requires_grad_(True)
        experiment.loss(coefficients).backward()
        gradient = coefficients.grad * direction  # the path moves the scored edges only
        total += gradient
        nonzero += bool(gradient.any())
    attributions = total / steps
    full, empty = experiment.full_and_empty
    completeness = float(attributions.sum()) / (empty - full) if empty != full else float("nan")
    return _edge_method(attributions.abs().numpy(), experiment, ig_steps=steps, ig_nonzero_steps=nonzero,
                        ig_completeness=completeness)


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
                ablated[[e for e in edges if experiment.domain[e]]] = 1  # the node no longer reaches the output
                for _ in edges:
                    progress()
                continue
            for e in edges:
                if not experiment.domain[e]:
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
    """``n`` thresholds spread geometrically from 1e-6 (above float32 noise) to 0.3 of the metric's full range
    (the empty circuit, every scored edge ablated, vs the full model)."""
    full, empty = experiment.full_and_empty
    spread = abs(empty - full)
    if spread == 0:
        raise WorkbenchError("ablating every scored edge leaves the metric unchanged: nothing to discover with this "
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
    """Each component of the scored domain with its whole output ablated (towards every receiver, the
    edges outside the domain included: the component's total effect); the others are not run."""
    graph = experiment.graph
    inside = scored_nodes(experiment)
    node_scores = np.full(len(graph.components), np.nan)
    with torch.no_grad():
        full = float(experiment.loss())
        for i, component in enumerate(graph.components):
            if inside[i]:
                ablated = torch.tensor([float(graph.senders[s] == component) for s, _ in graph.edges])
                node_scores[i] = abs(float(experiment.loss(ablated)) - full)
    by_node = dict(zip(graph.components, node_scores))
    # input and output are in every circuit: an edge scores its other end; input -> output gets no evidence (0)
    edge_scores = np.array([min(by_node.get(graph.senders[s], np.inf), by_node.get(graph.receiver_node(r), np.inf))
                            for s, r in graph.edges])
    edge_scores[np.isinf(edge_scores)] = 0.0
    return Scores(_restrict(experiment, edge_scores), node_scores)


def random_scores(experiment: Experiment, seed: int = 0, **_) -> Scores:
    """Uniform scores; ``seed`` varies with the data resample."""
    rng = np.random.default_rng(seed)
    edges, nodes = rng.random(experiment.n_edges), rng.random(len(experiment.graph.components))
    nodes[~scored_nodes(experiment)] = np.nan
    return Scores(_restrict(experiment, edges), nodes)


METHODS: dict[str, Callable[..., Scores]] = {
    "acdc": acdc, "eap": eap, "eap-ig": eap_ig, "patch": node_patching, "random": random_scores,
}


def get_methods(names: str | list[str] | dict[str, Callable[..., Scores]]) -> dict[str, Callable[..., Scores]]:
    """Methods by name (a comma list or a list), or a dict name -> method as given (custom methods)."""
    if isinstance(names, dict):
        return dict(names)
    names = names.split(",") if isinstance(names, str) else names
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise WorkbenchError(f"unknown method {unknown[0]!r}; available: {', '.join(METHODS)}")
    return {n: METHODS[n] for n in names}
