"""Every method on circuits whose truth is known: a hand-built model and compiled tracr programs."""

import numpy as np
import pytest
import torch

from workbench.circuits import METHODS, Experiment, build_graph, get_methods, tier1
from workbench.circuits.benchmark import benchmark, compiled_target
from workbench.circuits.data import lib_data
from workbench.circuits.methods import eap, eap_ig
from workbench.circuits.scoring import auc
from workbench.compiled import compile_lib
from workbench.errors import WorkbenchError


@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
def test_edge_methods_rank_the_true_edges_first_on_the_hand_built_model(hand_built, hand_built_data, true_edges,
                                                                       ablation):
    graph = build_graph(hand_built)
    experiment = Experiment(hand_built, graph, *hand_built_data, ablation=ablation)
    for name in ("acdc", "eap", "eap-ig"):
        scores = METHODS[name](experiment)
        ranked = [graph.edge_names[i] for i in np.argsort(-scores.edges, kind="stable")]
        assert set(ranked[:3]) == true_edges, (name, ranked[:5])
        assert scores.edges[np.argsort(-scores.edges)[3]] < scores.edges[np.argsort(-scores.edges)[2]]


def test_node_patching_ranks_the_true_heads_first_on_the_hand_built_model(hand_built, hand_built_data):
    graph = build_graph(hand_built)
    scores = METHODS["patch"](Experiment(hand_built, graph, *hand_built_data, ablation="resample"))
    ranked = [graph.components[i] for i in np.argsort(-scores.nodes, kind="stable")]
    assert set(ranked[:2]) == {"a0.h0", "a1.h0"}
    assert sorted(scores.nodes)[-3] == 0  # the distractors change nothing
    # node patching cannot tell a head's query, key and value edges apart: they tie with its true edge
    by_name = dict(zip(graph.edge_names, scores.edges))
    assert by_name["input->a0.h0.q"] == by_name["input->a0.h0.v"] > 0


def test_eap_is_the_gradient_of_the_patched_metric(hand_built, hand_built_data, true_edges):
    """EAP's scores equal finite differences of the metric in each edge's coefficient."""
    graph = build_graph(hand_built)
    experiment = Experiment(hand_built, graph, *hand_built_data, ablation="resample")
    scores = eap(experiment).edges
    base, step = float(experiment.loss()), 1e-3
    for e in [graph.edge_names.index(name) for name in true_edges] + [0, 5]:
        a = torch.zeros(experiment.n_edges, dtype=torch.float64)
        a[e] = step
        finite = (float(experiment.loss(a.float())) - base) / step
        assert abs(abs(finite) - scores[e]) < 2e-2 * max(1.0, scores[e])


def test_eap_ig_averages_the_gradient_along_the_path(hand_built, hand_built_data):
    graph = build_graph(hand_built)
    experiment = Experiment(hand_built, graph, *hand_built_data, ablation="zero")
    assert np.allclose(eap_ig(experiment, steps=1).edges, eap(experiment).edges)  # one step: EAP
    total = 0
    for alpha in (0.0, 0.5):
        point = torch.full((experiment.n_edges,), alpha, requires_grad=True)
        experiment.loss(point).backward()
        total = total + point.grad
    two = eap_ig(experiment, steps=2)
    assert np.allclose(two.edges, (total / 2).abs().numpy())
    assert two.info["ig_steps"] == 2 and two.info["ig_nonzero_steps"] == 2


def test_eap_ig_is_eap_over_five_on_the_compiled_sum():
    """The degenerate case the docstring of ``eap_ig`` explains: along a = α·1 the compiled sum collapses
    to the empty circuit before α = 0.2, so only α = 0 has a nonzero gradient."""
    target = compiled_target("sum")
    experiment = Experiment.from_data(target.model, target.graph, target.draw(8, 0), "zero")
    ig = eap_ig(experiment)
    assert ig.info["ig_steps"] == 5 and ig.info["ig_nonzero_steps"] == 1
    assert np.allclose(ig.edges, eap(experiment).edges / 5)


def test_acdc_recovers_the_structural_truth_of_make_reverse():
    """The published ACDC result on tracr's reverse (zero ablation) is AUC 1.0."""
    compiled = compile_lib("reverse")
    graph = build_graph(compiled.model)
    truth = tier1(compiled, graph)
    experiment = Experiment.from_data(compiled.model, graph, lib_data(compiled, "reverse", 16, seed=0), "zero")
    scores = METHODS["acdc"](experiment)
    assert auc(truth.edges, scores.edges) == 1.0
    assert auc(truth.nodes, scores.nodes) == 1.0
    # at the smallest threshold ACDC keeps exactly the true edges
    assert np.array_equal(scores.edges > 0, truth.edges)


@pytest.mark.parametrize("program", ["reverse", "frac_prevs", "sort", "hist", "count"])
def test_every_method_beats_random_on_tier1(program):
    summary, _, _ = benchmark(compiled_target(program), "acdc,eap,eap-ig,patch,random", resamples=2, n=12)
    print(summary.round(3).to_string())
    for method in ("acdc", "eap", "eap-ig", "patch"):
        assert summary.loc[method, "edge_auc"] > summary.loc["random", "edge_auc"] + 0.2, method
    assert summary.loc["acdc", "edge_auc"] == 1.0
    # ACDC's smallest threshold keeps exactly the true edges: that circuit alone is the full model
    assert summary.loc["acdc", "faithfulness_at_truth_size"] == pytest.approx(1.0, abs=1e-6)


def test_unknown_method_is_named():
    with pytest.raises(WorkbenchError, match="unknown method 'acdcc'.*available: acdc"):
        get_methods("eap,acdcc")
