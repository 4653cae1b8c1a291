"""Scoring over the scored domain only: a method that ranks nothing scores like chance, and ACDC's
out-of-domain edges no longer tie every node (issue 18)."""

import math

import numpy as np
import pytest
import torch

from workbench.circuits import METHODS, Experiment, Scores, Truth, build_graph
from workbench.circuits.benchmark import Target, benchmark, compiled_target
from workbench.circuits.data import CircuitData
from workbench.circuits.scoring import FRACTIONS, auc, cpr_cmd, faithfulness, random_faithfulness, top_edges
from workbench.errors import WorkbenchError


def constant(experiment, **_):
    """Ranks nothing: the same score for every edge and every component."""
    return Scores(np.ones(experiment.n_edges), np.ones(len(experiment.graph.components)))


def _hand_built_target(model, true_edges, into_output_scored: bool) -> Target:
    """The hand-built model as a target; without ``into_output_scored`` the edges into the output are out of
    the scored domain, as the layers after the last aligned block are in tier 2."""
    graph = build_graph(model)
    names = graph.edge_names
    domain = np.array([into_output_scored or not n.endswith("->output") for n in names])
    edges = np.array([n in true_edges for n in names]) & domain
    nodes = np.array([c in ("a0.h0", "a1.h0") for c in graph.components])
    truth = Truth(graph.components, edges, nodes, domain, np.ones_like(nodes), "resample", 2,
                  np.ones_like(nodes))

    def draw(n, seed):
        gen = torch.Generator().manual_seed(seed)
        clean, corrupt = torch.randint(0, 4, (n, 6), generator=gen), torch.randint(0, 4, (n, 6), generator=gen)
        mask = torch.ones_like(clean, dtype=torch.bool)
        return CircuitData(clean, mask, corrupt, mask, mask)

    return Target("hand-built", model, graph, truth, draw, "resample")


@pytest.mark.parametrize("into_output_scored", [True, False])
def test_constant_scores_get_chance_auc_and_the_faithfulness_of_a_random_ranking(hand_built, true_edges,
                                                                                into_output_scored):
    target = _hand_built_target(hand_built, true_edges, into_output_scored)
    summary, per_resample, _ = benchmark(target, {"constant": constant}, resamples=2, n=16)
    assert summary.loc["constant", "edge_auc"] == 0.5
    assert summary.loc["constant", "node_auc"] == 0.5
    for seed in range(2):
        experiment = Experiment.from_data(target.model, target.graph, target.draw(16, seed), target.ablation,
                                          torch.from_numpy(target.truth.edge_domain))
        expected = cpr_cmd(random_faithfulness(experiment, seed=seed))
        row = per_resample[per_resample["resample"] == seed]
        assert (row.cpr.item(), row.cmd.item()) == expected


def test_constant_scores_on_a_compiled_program():
    """Tier 1 (reverse): AUC exactly 0.5 over all components; over the components that write something
    the AUC is undefined: every one of them is in the circuit (true of every compiled program)."""
    target = compiled_target("reverse")
    summary, per_resample, _ = benchmark(target, {"constant": constant}, resamples=1, n=8)
    row = summary.loc["constant"]
    assert row.edge_auc == 0.5 and row.node_auc == 0.5 and math.isnan(row.node_auc_writing)
    experiment = Experiment.from_data(target.model, target.graph, target.draw(8, 0), target.ablation)
    assert (row.cpr, row.cmd) == cpr_cmd(random_faithfulness(experiment, seed=0))


def test_random_faithfulness_is_the_expectation_over_random_orders(hand_built, hand_built_data):
    """On the hand-built model a circuit recovers the behaviour iff it keeps all 3 true edges, so the
    expected share of a random circuit of k of the E edges is C(E-3, k-3) / C(E, k): both the estimate
    (seeded draws) and an average over seeded random rankings agree with it, in CPR and in CMD."""
    graph = build_graph(hand_built)
    experiment = Experiment(hand_built, graph, *hand_built_data, ablation="resample")
    n = experiment.n_edges
    exact_curve = [math.comb(n - 3, k - 3) / math.comb(n, k) if k >= 3 else 0.0
                   for k in (round(f * n) for f in FRACTIONS)]
    exact = np.array(cpr_cmd(exact_curve))
    draws = 64
    estimate = cpr_cmd(random_faithfulness(experiment, draws=draws, seed=0))
    rankings = [cpr_cmd(faithfulness(experiment, np.random.default_rng(seed).random(n))) for seed in range(draws)]
    assert estimate == pytest.approx(exact, abs=0.05)
    assert np.mean(rankings, axis=0) == pytest.approx(exact, abs=0.05)
    # without ties a ranking costs one forward pass per size: the tie-break draws are not used
    assert faithfulness(experiment, np.arange(n, dtype=float), draws=1) == faithfulness(
        experiment, np.arange(n, dtype=float), draws=5, seed=3)


def test_cpr_and_cmd_of_a_hand_computed_curve():
    """Trapezoids over x = 0, 0.1, 0.5, 1 of f = 0, 0.5, 1.5, 1 (a circuit overshooting the full model):
    CPR = 0.1·(0 + 0.5)/2 + 0.4·(0.5 + 1.5)/2 + 0.5·(1.5 + 1)/2 = 0.025 + 0.4 + 0.625 = 1.05;
    |1 − f| = 1, 0.5, 0.5, 0: CMD = 0.1·0.75 + 0.4·0.5 + 0.5·0.25 = 0.075 + 0.2 + 0.125 = 0.4."""
    assert cpr_cmd([0.0, 0.5, 1.5, 1.0], [0.0, 0.1, 0.5, 1.0]) == pytest.approx((1.05, 0.4), abs=1e-12)
    assert all(math.isnan(v) for v in cpr_cmd([math.nan] * 4, [0.0, 0.1, 0.5, 1.0]))


def test_cpr_and_cmd_of_the_best_and_worst_rankings_on_the_hand_built_model(hand_built, hand_built_data,
                                                                              true_edges):
    """46 edges; MIB's sizes keep round(x·46) = 0, 0, 0, 0, 0, 1, 2, 5, 9, 23, 46 edges at x = 0, 0.1 %,
    0.2 %, 0.5 %, 1 %, 2 %, 5 %, 10 %, 20 %, 50 %, 100 %. The true edges ranked first: f = 1 from 5 edges
    (x = 0.1) on, so CPR = 0.05·(0 + 1)/2 + 0.9 = 0.925 and CMD = 0.05·1 + 0.05·(1 + 0)/2 = 0.075. Ranked
    last: f = 1 only at x = 1, so CPR = 0.5·(0 + 1)/2 = 0.25 and CMD = 0.5 + 0.25 = 0.75."""
    graph = build_graph(hand_built)
    experiment = Experiment(hand_built, graph, *hand_built_data, ablation="resample")
    assert experiment.n_edges == 46
    true = np.array([name in true_edges for name in graph.edge_names], dtype=float)
    best = faithfulness(experiment, true)
    assert best == pytest.approx([0.0] * 7 + [1.0] * 4, abs=1e-6)
    assert cpr_cmd(best) == pytest.approx((0.925, 0.075), abs=1e-6)
    assert cpr_cmd(faithfulness(experiment, 1 - true)) == pytest.approx((0.25, 0.75), abs=1e-6)


def test_acdc_node_scores_come_from_scored_edges_only(hand_built, true_edges):
    """Every component has an edge into the output; out of the domain, ACDC never tests it. Those edges
    get no score and do not make every component tie at the largest threshold."""
    target = _hand_built_target(hand_built, true_edges, into_output_scored=False)
    experiment = Experiment.from_data(target.model, target.graph, target.draw(16, 0), "resample",
                                      torch.from_numpy(target.truth.edge_domain))
    thresholds = [1e-4, 1e-2]
    scores = METHODS["acdc"](experiment, thresholds=thresholds)
    outside = ~target.truth.edge_domain
    assert np.isnan(scores.edges[outside]).all() and not np.isnan(scores.edges[~outside]).any()
    assert len(set(scores.nodes)) > 1
    assert auc(target.truth.nodes, scores.nodes) == 1.0
    assert auc(target.truth.edges, scores.edges, target.truth.edge_domain) == 1.0
    summary, _, _ = benchmark(target, "acdc,eap,eap-ig,patch", resamples=1, n=16,
                              options={"acdc": {"thresholds": thresholds}})
    assert (summary.loc[["acdc", "eap", "eap-ig", "patch"], "node_auc"] == 1.0).all()
    with pytest.raises(WorkbenchError, match="NaN"):
        auc(target.truth.edges, scores.edges)  # the whole graph is not the domain


def test_circuits_choose_among_scored_edges_and_keep_the_others():
    scores = np.array([np.nan, 3.0, 2.0, 2.0, 1.0])
    domain = np.array([False, True, True, True, True])
    assert top_edges(scores, 0.0, domain).tolist() == [True, False, False, False, False]
    assert top_edges(scores, 0.5, domain).tolist() == [True, True, True, False, False]
    kept = {tuple(top_edges(scores, 0.5, domain, np.random.default_rng(s))) for s in range(20)}
    assert kept == {(True, True, True, False, False), (True, True, False, True, False)}  # the tie, at random
