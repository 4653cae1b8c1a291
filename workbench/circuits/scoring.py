"""How well scores recover the truth (ROC, AUC) and how faithful the circuits they pick are.

Everything is computed over the **scored domain** only (``Truth.edge_domain`` /
``node_domain``, ``Experiment.domain``): edges and nodes outside it carry no score (NaN) and
take part in no AUC and no ranking, so a method that ranks nothing (constant scores) gets
AUC exactly 0.5 and the faithfulness of a random ranking.

Faithfulness follows the Mechanistic Interpretability Benchmark (MIB, Mueller et al. 2025): keep
the top-scoring fraction x of the scored edges, ablate every other scored edge (the edges outside
the domain stay in every circuit), and measure the share of the full model's behaviour the
circuit recovers, ``f(C) = (m(C) − m(∅)) / (m(N) − m(∅))`` with m = −(the experiment's loss),
i.e. ``(L_empty − L_circuit) / (L_empty − L_full)`` (1 = the full model N, 0 = the empty circuit
∅, every scored edge ablated). Over MIB's circuit sizes (:data:`FRACTIONS`) the curve gives two
numbers per method (:func:`cpr_cmd`): CPR, the area under f (higher is better), and CMD, the
area under |1 − f| (lower is better).

Ties are broken at random: the circuit of size k keeps every edge scoring above the k-th
score and a uniformly random subset of the edges tied with it, and the recovered share is
averaged over ``draws`` seeded subsets (exact, one forward pass, when no tie straddles the
cut). So the faithfulness of **a random ranking** is defined as its expectation over uniformly
random orders of the scored edges (at each size k: over uniformly random circuits of k edges), and
:func:`random_faithfulness` estimates it with the same ``draws`` seeded subsets — exactly
what constant scores get.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from workbench.circuits.patching import Experiment
from workbench.errors import WorkbenchError

# MIB's circuit sizes (fractions of the scored edges kept), with the empty circuit in front so the area
# starts at 0
FRACTIONS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
DRAWS = 8  # random tie-breaks averaged where a tie straddles the cut


def _in_domain(truth: np.ndarray, scores: np.ndarray, domain: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    domain = np.ones(len(truth), dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    t, s = np.asarray(truth, dtype=bool)[domain], np.asarray(scores, dtype=float)[domain]
    if np.isnan(s).any():
        raise WorkbenchError(f"{int(np.isnan(s).sum())} scores inside the scored domain are missing (NaN): a "
                             "method must score every edge and node of the domain")
    return t, s


def auc(truth: np.ndarray, scores: np.ndarray, domain: np.ndarray | None = None) -> float:
    """ROC AUC of ``scores`` against ``truth`` within ``domain`` (NaN when one class is absent).

    Scores outside the domain are ignored (they may be NaN); inside it they must be numbers.
    """
    t, s = _in_domain(truth, scores, domain)
    return float(roc_auc_score(t, s)) if 0 < t.sum() < len(t) else float("nan")


def roc(truth: np.ndarray, scores: np.ndarray, domain: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    t, s = _in_domain(truth, scores, domain)
    if not 0 < t.sum() < len(t):
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = roc_curve(t, s)
    return fpr, tpr


def top_edges(edge_scores: np.ndarray, fraction: float, domain: np.ndarray | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """The circuit of the ``fraction`` best-scoring edges of ``domain`` plus every edge outside it.

    Of the edges tied with the last one kept, a uniformly random subset is kept (``rng``), or
    the earlier edges first without ``rng``.
    """
    domain = np.ones(len(edge_scores), dtype=bool) if domain is None else np.asarray(domain, dtype=bool)
    inside = np.flatnonzero(domain)
    scores = np.asarray(edge_scores, dtype=float)[inside]
    k = round(fraction * len(inside))
    kept = ~domain
    if k == 0:
        return kept
    order = np.argsort(-scores, kind="stable")
    if rng is None:
        kept[inside[order[:k]]] = True
        return kept
    boundary = scores[order[k - 1]]
    above = scores > boundary
    tied = np.flatnonzero(scores == boundary)
    kept[inside[above]] = True
    kept[inside[rng.choice(tied, k - int(above.sum()), replace=False)]] = True
    return kept


def _straddles(scores: np.ndarray, k: int) -> bool:
    """Whether the k-th best score is tied with the (k+1)-th (the circuit of size k is not unique)."""
    if k == 0 or k == len(scores):
        return False
    ordered = np.sort(scores)[::-1]
    return bool(ordered[k - 1] == ordered[k])


def faithfulness(experiment: Experiment, edge_scores: np.ndarray, fractions=FRACTIONS, draws: int = DRAWS,
                 seed: int = 0) -> list[float]:
    """The recovered share f of the behaviour at each circuit size (NaN where the empty circuit
    behaves like the full model: nothing to recover).

    The circuit at fraction x keeps the ``round(x · scored edges)`` best-scoring edges of the
    experiment's scored domain; where a tie straddles that cut the share is the mean over ``draws``
    random tie-breaks (seeded by ``seed``; see the module docstring). Each distinct circuit size is
    evaluated once (on a small graph several of MIB's fractions round to the same size).
    """
    import torch

    domain = experiment.domain.numpy()
    full, empty = experiment.full_and_empty
    if empty == full:
        return [float("nan")] * len(fractions)
    _, scores = _in_domain(np.zeros(len(edge_scores), dtype=bool), edge_scores, domain)
    rng = np.random.default_rng(seed)
    share_at: dict[int, float] = {}
    for f in fractions:
        k = round(f * len(scores))
        if k not in share_at:
            losses = [experiment.keep_only(torch.from_numpy(top_edges(edge_scores, f, domain, rng)))
                      for _ in range(draws if _straddles(scores, k) else 1)]
            share_at[k] = float(np.mean([(empty - loss) / (empty - full) for loss in losses]))
    return [share_at[round(f * len(scores))] for f in fractions]


def cpr_cmd(curve, fractions=FRACTIONS) -> tuple[float, float]:
    """MIB's two faithfulness numbers of a curve ``f`` (:func:`faithfulness`) measured at ``fractions``.

    - CPR (circuit performance ratio) = ∫ f dx, the area under the curve (higher is better; a
      circuit that does better than the full model, f > 1, adds to it);
    - CMD (circuit-model difference) = ∫ |1 − f| dx, the area between the curve and 1 (lower is
      better; a circuit that overshoots the full model counts against it as one that falls short).

    x is the fraction of the scored edges kept, on its linear axis from 0 to 1, and both areas are
    the trapezoid rule over the points of ``fractions`` (|1 − f| is taken at the points, not
    integrated exactly where the curve crosses 1 between two of them). NaN when the curve is.
    """
    curve, fractions = np.asarray(curve, dtype=float), np.asarray(fractions, dtype=float)
    return float(np.trapezoid(curve, fractions)), float(np.trapezoid(np.abs(1 - curve), fractions))


def random_faithfulness(experiment: Experiment, fractions=FRACTIONS, draws: int = DRAWS,
                        seed: int = 0) -> list[float]:
    """The faithfulness curve of a random ranking of the scored edges: its expectation over uniformly random
    orders, estimated with ``draws`` seeded random circuits per size (the same ones constant scores get)."""
    return faithfulness(experiment, np.zeros(experiment.n_edges), fractions, draws, seed)


def rank_stability(score_sets: list[np.ndarray], domain: np.ndarray | None = None) -> float:
    """Mean Spearman correlation of the edge scores (within ``domain``) between every pair of resamples."""
    from scipy.stats import spearmanr

    if domain is not None:
        score_sets = [np.asarray(s)[np.asarray(domain, dtype=bool)] for s in score_sets]
    pairs = [(a, b) for i, a in enumerate(score_sets) for b in score_sets[i + 1:]]
    values = [spearmanr(a, b).statistic for a, b in pairs if np.ptp(a) > 0 and np.ptp(b) > 0]
    return float(np.mean(values)) if values else float("nan")
