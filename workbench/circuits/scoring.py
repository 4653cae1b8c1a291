"""How well scores recover the truth (ROC, AUC) and how faithful the circuits they pick are.

Faithfulness follows the Mechanistic Interpretability Benchmark (MIB): keep the top-scoring
fraction f of the edges, ablate every other edge, and measure the share of the full model's
behaviour the circuit alone recovers, ``(L_empty − L_circuit) / (L_empty − L_full)``
(1 = the full model, 0 = the empty circuit); the area under that curve over f ∈ [0, 1] is
one number per method (higher is better).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from workbench.circuits.patching import Experiment

FRACTIONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def auc(truth: np.ndarray, scores: np.ndarray, domain: np.ndarray | None = None) -> float:
    """ROC AUC of ``scores`` against ``truth`` within ``domain`` (NaN when one class is absent)."""
    domain = np.ones_like(truth, dtype=bool) if domain is None else domain
    t, s = truth[domain], scores[domain]
    return float(roc_auc_score(t, s)) if 0 < t.sum() < len(t) else float("nan")


def roc(truth: np.ndarray, scores: np.ndarray, domain: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    domain = np.ones_like(truth, dtype=bool) if domain is None else domain
    if not 0 < truth[domain].sum() < domain.sum():
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = roc_curve(truth[domain], scores[domain])
    return fpr, tpr


def top_edges(edge_scores: np.ndarray, fraction: float) -> np.ndarray:
    """The circuit of the ``fraction`` best-scoring edges (ties: the earlier edge first)."""
    kept = np.zeros(len(edge_scores), dtype=bool)
    kept[np.argsort(-edge_scores, kind="stable")[: round(fraction * len(edge_scores))]] = True
    return kept


def faithfulness(experiment: Experiment, edge_scores: np.ndarray, fractions=FRACTIONS) -> tuple[list[float], float]:
    """Recovered share of the behaviour at each circuit size, and the area under that curve."""
    import torch

    full, empty = experiment.full_and_empty
    if empty == full:
        return [float("nan")] * len(fractions), float("nan")
    curve = [(empty - experiment.keep_only(torch.from_numpy(top_edges(edge_scores, f)))) / (empty - full)
             for f in fractions]
    return curve, float(np.trapezoid(curve, fractions))


def rank_stability(score_sets: list[np.ndarray]) -> float:
    """Mean Spearman correlation of the edge scores between every pair of resamples."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for i, a in enumerate(score_sets) for b in score_sets[i + 1:]]
    values = [spearmanr(a, b).statistic for a, b in pairs if np.ptp(a) > 0 and np.ptp(b) > 0]
    return float(np.mean(values)) if values else float("nan")
