"""Circuit-discovery methods, one interface: ``method(experiment) -> Scores`` (higher = more in the circuit).

- ``acdc``: Conmy et al. 2023. Receivers from the output backwards, each incoming edge
  (latest sender first) is ablated for good when the metric moves by less than τ (ACDC's
  ``abs_value_threshold``: our metric is not a divergence from the clean run, an ablation
  that lowers it changes the behaviour as much as one that raises it); a receiver
  whose node no longer reaches the output loses all its inputs untested. Run for each τ of a
  sweep; an edge scores the largest τ it survives (0: never). Only the scored domain is
  searched: the other edges stay in every circuit and get no score. The passes of the sweep
  run in lockstep, their trials batched (:func:`acdc_circuits`; the same scores).
- ``eap``: edge attribution patching (Syed et al. 2023): |∂metric/∂a_e| at a = 0, i.e.
  |(ablated − clean sender output) · ∂metric/∂receiver input|, one backward pass.
- ``eap-ig``: EAP with integrated gradients over the edge coefficients (Hanna et al. 2024):
  |mean of ∂metric/∂a over a = α·1, α = k/steps for k = 0 … steps − 1| — the attribution of
  each edge along the path from the full model to the fully ablated one, summed as Hanna et
  al. do (their points run from the corrupt towards the clean input and include the clean one,
  a = 0 here). See :func:`eap_ig` for why it equals EAP on the compiled dyck and sum programs.
- ``eap-gp``: EAP integrated along GradPath, an adaptive path from the clean input towards the
  corrupted one (Zhang et al., NeurIPS 2025; see :func:`eap_gp`).
- ``edge-pruning``: learned hard-concrete edge masks with an L0 penalty (Bhaskar et al. 2024;
  see :func:`edge_pruning`); score = the learned mask logit.
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


def gradpath(experiment: Experiment, steps: int = 5, step_size: float = 1.0) -> list[torch.Tensor]:
    """EAP-GP's integration path (GradPath): ``steps`` points in embedding space, from the clean input's
    embeddings towards the input whose output is the empty circuit's.

    γ_0 = the clean embeddings (the ``input`` sender's output); γ_{j+1} = γ_j − η·g_j/‖g_j‖ with
    g_j = ∂‖G(γ_j) − G(x')‖²/∂γ_j, normalised per row (each row moves by η = ``step_size``),
    G = the output at the scored positions (all logits; the value for a numerical output),
    G(x') = the empty circuit's output (every scored edge ablated; under resample ablation of
    every edge, the corrupt run: tested in ``test_graph_and_patching``). Returns γ_1 … γ_steps.
    """
    positions = experiment.positions
    with torch.no_grad():
        target = experiment.logits(experiment.domain.float())
    target = target[positions] if not experiment.numerical else target[..., 0][positions]
    gamma = experiment.clean_outputs[0]
    path = []
    for _ in range(steps):
        gamma = gamma.detach().requires_grad_(True)
        with torch.enable_grad():
            output = experiment.logits(embeddings=gamma)
            output = output[positions] if not experiment.numerical else output[..., 0][positions]
            distance = ((output - target) ** 2).sum()
            (gradient,) = torch.autograd.grad(distance, gamma)
        norm = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (gradient.dim() - 1))
        gamma = (gamma - step_size * gradient / norm).detach()
        path.append(gamma)
    return path


def eap_gp(experiment: Experiment, steps: int = 5, step_size: float = 1.0, **_) -> Scores:
    """EAP-GP: edge attribution patching integrated along GradPath (Zhang, Dong, Zhang, Yang, Hu, Liu, Zhou
    & Wang, "EAP-GP: Mitigating Saturation Effect in Gradient-based Automated Circuit Identification",
    NeurIPS 2025, arXiv:2502.06852; Algorithm 1).

    EAP-IG integrates along the straight line between the clean and the corrupted input, which
    can cross regions where the model is saturated and the gradient says nothing. EAP-GP
    builds the path adaptively instead (:func:`gradpath`: ``steps`` unit-norm steps, scaled by
    ``step_size``, from the clean embeddings down the gradient of the output's squared
    distance to the corrupted output; k = 5 as in the paper's experiments) and scores edge
    s → r as

        |(ablated_s − clean_s) · (1/k) Σ_j ∂metric/∂(input of r) at γ_j|,

    i.e. the fixed clean-vs-ablated difference of the sender's output times the receiver's
    gradient averaged over the path points γ_1 … γ_k (computed as the gradient in the edge
    coefficients with the patch taken against the clean outputs: ``run_graph(reference=…)``).
    Here the corrupted input's output is the empty circuit's (see :func:`gradpath`), so the
    method works for zero and mean ablation as well. ``step_size=0`` is EAP (tested). Steps of
    fixed length overshoot once the path is near its target: on the hand-built test model unit
    steps cut the output's distance to a third in one step and then oscillate around it, steps
    of 0.25 shrink it monotonically.

    **On compiled programs the path can walk into the saturation it is meant to avoid.** On the
    compiled sum (8 test prompts, zero ablation) even steps of 0.05 bring the output to the
    empty circuit's (``gp_distance`` 9e-7): tracr's numerical MLPs switch off, the gradient is
    exactly zero at every path point, one edge gets a nonzero score and the edge AUC is 0.51
    (EAP: 1.0); on count (12 rows, 2 resamples) it is 0.61 (EAP 0.96). The clean point, where the gradient is not zero, is not on the path
    (the paper's sum runs over γ_1 … γ_k). On reverse, hist, sort and frac_prevs it is 1.0. On dyck unit steps overshoot (the distance grows
    1e7-fold) and the AUC is 0.99; steps of 0.25 or 0.05 give 1.0.
    ``Scores.info``: ``gp_steps``, ``gp_step_size``, ``gp_distance`` (the last point's output
    distance to the target over the clean input's: < 1 when the path approached it).
    """
    reference = experiment.clean_outputs
    total = torch.zeros(experiment.n_edges)
    path = gradpath(experiment, steps, step_size)
    for gamma in path:
        coefficients = torch.zeros(experiment.n_edges, requires_grad=True)
        with torch.enable_grad():
            loss = experiment.loss_of_logits(experiment.logits(coefficients, gamma, reference))
            loss.backward()
        total += coefficients.grad
    with torch.no_grad():
        positions = experiment.positions
        pick = (lambda x: x[..., 0][positions]) if experiment.numerical else (lambda x: x[positions])
        target = pick(experiment.logits(experiment.domain.float()))
        start = float(((pick(experiment.logits()) - target) ** 2).sum())
        end = float(((pick(experiment.logits(embeddings=path[-1])) - target) ** 2).sum()) if path else start
    return _edge_method((total / max(steps, 1)).abs().numpy(), experiment, gp_steps=steps, gp_step_size=step_size,
                        gp_distance=end / start if start else float("nan"))


HARD_CONCRETE = (2 / 3, -0.1, 1.1)  # temperature β and stretch (l, r) of Louizos et al. 2018, as Bhaskar et al. use


def edge_pruning(experiment: Experiment, steps: int = 200, lr: float = 0.1, sparsity: float = 1.0,
                 init: float = 3.0, seed: int = 0, **_) -> Scores:
    """Edge pruning with learned masks (Bhaskar, Wettig, Friedman & Chen, "Finding Transformer Circuits
    with Edge Pruning", NeurIPS 2024, arXiv:2406.16778).

    Each scored edge has a mask z_e ∈ [0, 1] drawn from a hard-concrete distribution with a
    learned logit log α_e (Louizos et al. 2018: β = 2/3, stretched to (−0.1, 1.1) and clipped,
    so z is exactly 0 or 1 with positive probability); the edge is patched with coefficient
    a_e = 1 − z_e (the patching of ``workbench.circuits.patching``; edges outside the scored
    domain stay). Adam (``lr``) minimises, over ``steps`` sampled masks (seeded by ``seed``),

        |metric(a) − metric(full)| / |metric(empty) − metric(full)| + sparsity · E[‖z‖₀] / n,

    the first term the circuit's distance to the full model's behaviour (Bhaskar et al. use
    the KL divergence to the full model's outputs; this is the shared metric, normalised),
    the second the expected fraction of scored edges kept (the hard concrete's L0 term). A
    fixed weight ``sparsity`` replaces their Lagrangian schedule towards a target sparsity:
    the ranking, not one circuit, is scored here. Score = the learned log α_e (initialised at
    ``init``: every edge kept). ``Scores.info``: ``ep_kept`` (edges with log α > 0, the
    circuit the learned masks select) and ``ep_recovered`` (that circuit's recovered share of
    the behaviour, 1 = the full model).
    """
    beta, low, high = HARD_CONCRETE
    domain = experiment.domain
    full, empty = experiment.full_and_empty
    spread = abs(empty - full)
    if spread == 0:
        raise WorkbenchError("ablating every scored edge leaves the metric unchanged: nothing to prune")
    log_alpha = torch.full((experiment.n_edges,), float(init), requires_grad=True)
    optimizer = torch.optim.Adam([log_alpha], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    shift = beta * np.log(-low / high)
    for _ in range(steps):
        u = torch.rand(experiment.n_edges, generator=generator).clamp(1e-6, 1 - 1e-6)
        with torch.enable_grad():
            z = torch.sigmoid((u.log() - (-u).log1p() + log_alpha) / beta) * (high - low) + low
            z = z.clamp(0, 1)
            faithful = (experiment.loss((1 - z) * domain) - full).abs() / spread
            kept = torch.sigmoid(log_alpha - shift)[domain].mean()
            objective = faithful + sparsity * kept
            optimizer.zero_grad()
            objective.backward()
        optimizer.step()
    scores = log_alpha.detach()
    circuit = (scores > 0) | ~domain
    recovered = (empty - experiment.keep_only(circuit)) / (empty - full)
    return _edge_method(scores.numpy(), experiment, ep_kept=int((circuit & domain).sum()), ep_recovered=recovered)


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


def acdc_circuits(experiment: Experiment, thresholds: list[float], progress: Callable[[int], None] = lambda n: None,
                  lookahead: int = 1) -> np.ndarray:
    """The edges ACDC keeps at each threshold (bool ``[thresholds, edges]``), all passes run in lockstep.

    The same result as :func:`acdc_circuit` for each threshold alone (tested), with several trials per
    forward pass, stacked along the batch (``Experiment.losses``): the passes visit the receivers
    in the same order, and for each receiver every pass contributes the trials of its next
    ``lookahead`` untested edges as a chain, each trial removing one more edge on the guess that
    the ones before it were removed. A pass takes the chain's trials in order, by its own
    threshold and its own current metric, until it keeps an edge: the trials after that one
    assumed a removal that did not happen and are run again in the next round. The prefix (the
    forward pass up to the receiver's block) is computed for all passes at once, once per block.
    """
    graph = experiment.graph
    k = len(thresholds)
    ablated = torch.zeros(k, experiment.n_edges)
    incoming: dict[int, list[int]] = {}
    outgoing: dict[str, list[int]] = {}
    for e, (s, r) in enumerate(graph.edges):
        incoming.setdefault(r, []).append(e)
        outgoing.setdefault(graph.senders[s], []).append(e)
    domain = experiment.domain.tolist()
    prefix = None
    with torch.no_grad():
        current = [float(experiment.loss(ablated[0]))] * k  # every pass starts from the full model
        for r in reversed(range(len(graph.receivers))):
            edges = list(reversed(incoming.get(r, [])))
            tested = [e for e in edges if domain[e]]
            node = graph.receiver_node(r)
            alive = list(range(k))
            if node != "output":
                out = outgoing.get(node, [])
                dead = [p for p in range(k) if all(ablated[p, e] == 1 for e in out)]
                for p in dead:  # the node no longer reaches the output in pass p
                    ablated[p, tested] = 1
                alive = [p for p in alive if p not in dead]
            if tested and alive:
                layer = graph.receiver_layer(r)
                if prefix is None or prefix.layer != layer:  # blocks before `layer` stay as they are from here on
                    prefix = experiment.prefix(ablated, layer)
                next_edge = dict.fromkeys(alive, 0)  # each pass's first untested edge of `tested`
                while any(i < len(tested) for i in next_edge.values()):
                    chains, trials = [], []
                    for p, first in next_edge.items():
                        state = ablated[p].clone()
                        for i in range(first, min(first + lookahead, len(tested))):
                            state = state.clone()
                            state[tested[i]] = 1
                            chains.append((p, i))
                            trials.append(state)
                    losses = experiment.losses(torch.stack(trials), prefix.select([p for p, _ in chains], k))
                    stopped = set()  # passes that kept an edge: the rest of their chain assumed its removal
                    for (p, i), loss in zip(chains, losses.tolist()):
                        if p in stopped:
                            continue
                        next_edge[p] = i + 1
                        if abs(loss - current[p]) < thresholds[p]:
                            ablated[p, tested[i]] = 1
                            current[p] = loss
                        else:
                            stopped.add(p)
            progress(k * len(edges))
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
         progress: bool = False, batch: int = 10, lookahead: int = 1, **_) -> Scores:
    """ACDC over a threshold sweep; ``batch`` passes run in lockstep, each with ``lookahead`` trials per
    forward pass (:func:`acdc_circuits`; ``batch=1``: one pass after the other, one trial per forward
    pass, with :func:`acdc_circuit`: the same scores).

    On the CPU, 16 rows of compiled programs, the 10 passes of the sweep in lockstep took 4–6× less
    time than one after the other (reverse 57 → 15 s, sort 29 → 5.8 s, frac_prevs 10.6 → 1.9 s
    on a loaded machine); chains of ``lookahead`` 4 or 8 trials per pass gave no further gain
    there (the larger batch costs what the saved passes save), so the default is 1."""
    thresholds = sorted(thresholds or default_thresholds(experiment, n_thresholds))
    scores = np.zeros(experiment.n_edges)
    with tqdm(total=len(thresholds) * experiment.n_edges, desc="acdc", disable=not progress, leave=False) as bar:
        if batch <= 1:
            for threshold in thresholds:
                kept = acdc_circuit(experiment, threshold, lambda: bar.update(1))
                scores[kept] = threshold
        else:
            for start in range(0, len(thresholds), batch):
                chunk = thresholds[start:start + batch]
                for threshold, kept in zip(chunk, acdc_circuits(experiment, chunk, bar.update, lookahead)):
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
    "acdc": acdc, "eap": eap, "eap-ig": eap_ig, "eap-gp": eap_gp, "edge-pruning": edge_pruning,
    "patch": node_patching, "random": random_scores,
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
