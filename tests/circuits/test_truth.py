"""Ground truth from the compiled program's structure (tier 1) and through a layer map (tier 2)."""

import numpy as np
import pytest

from workbench.circuits import build_graph, tier1, tier2
from workbench.circuits.benchmark import check_target, compiled_target
from workbench.circuits.data import lib_data
from workbench.circuits.truth import check_truth
from workbench.compiled import compile_lib
from workbench.errors import WorkbenchError
from workbench.inject.hooks import layer_map
from workbench.models import load_model


@pytest.fixture(scope="module")
def reverse():
    return compile_lib("reverse")


def test_make_reverse_truth_by_hand(reverse):
    """reverse = Aggregate(Select(indices, length - indices - 1, EQ), tokens), with length = SelectorWidth(Select(tokens, tokens, TRUE)).

    Layer 0: the selector-width head (queries ``one``+tokens, keys BOS, value BOS) and its MLP
    (reads the head's output, ``one`` and BOS) give ``length``; MLPs 1 and 2 compute
    ``opp_idx = length - indices`` and ``opp_idx - 1``; head a3.h0 queries with ``opp_idx - 1``
    (and ``one`` for the BOS default), keys on indices and BOS, reads tokens as value.
    """
    graph = build_graph(reverse.model)
    truth = tier1(reverse, graph)
    expected = {"input->a0.h0.q", "input->a0.h0.k", "input->a0.h0.v", "input->m0", "a0.h0->m0", "input->m1",
                "m0->m1", "m1->m2", "input->a3.h0.q", "m2->a3.h0.q", "input->a3.h0.k", "input->a3.h0.v",
                "a3.h0->output"}
    assert {name for name, t in zip(graph.edge_names, truth.edges) if t} == expected
    assert [c for c, t in zip(truth.components, truth.nodes) if t] == ["a0.h0", "m0", "m1", "m2", "a3.h0"]
    assert truth.ablation == "zero" and truth.edge_domain.all()


def test_make_reverse_truth_per_ablation(reverse):
    """Mean and resample ablation leave the constant dims as they are: edges that carry only them are not true.

    ``one`` and BOS are constant under both: input -> a0.h0.v (the selector width's BOS value),
    input -> m0 (its MLP reads ``one`` and BOS from the input) and input -> a3.h0.q (``one``: the
    query's BOS default). The positions (``indices``) are constant under mean ablation only, so
    input -> m1 (length - indices) and input -> a3.h0.k (keys on indices and BOS) drop out there
    too; under resample a shorter corrupt input has no position embedding where the clean one has.
    """
    graph = build_graph(reverse.model)
    zero = tier1(reverse, graph, "zero")
    mean, resample = tier1(reverse, graph, "mean"), tier1(reverse, graph, "resample")
    assert (mean.ablation, resample.ablation) == ("mean", "resample")
    assert set(zero.edge_names(graph)) - set(mean.edge_names(graph)) == {
        "input->a0.h0.v", "input->m0", "input->a3.h0.q", "input->m1", "input->a3.h0.k"}
    assert set(zero.edge_names(graph)) - set(resample.edge_names(graph)) == {
        "input->a0.h0.v", "input->m0", "input->a3.h0.q"}
    assert set(mean.edge_names(graph)) <= set(resample.edge_names(graph)) <= set(zero.edge_names(graph))
    assert (zero.nodes == mean.nodes).all() and (zero.nodes == resample.nodes).all()
    # padding heads and empty MLPs write nothing; every component that writes something is in the circuit
    assert [c for c, w in zip(graph.components, zero.writing) if w] == ["a0.h0", "m0", "m1", "m2", "a3.h0"]
    with pytest.raises(WorkbenchError, match="unknown ablation"):
        tier1(reverse, graph, "noise")


@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_every_true_edge_of_make_reverse_changes_the_output_somewhere(reverse, ablation):
    """Each edge cut alone on 192 random inputs: every true edge changes some output, no other edge does --
    except, under zero ablation, input -> a3.h0.q, which carries only ``one`` into the query of
    Select(indices, length - indices - 1, EQ): the BOS default it adds never fires, because every query
    matches exactly one key. Reported, not hidden."""
    graph = build_graph(reverse.model)
    truth = tier1(reverse, graph, ablation)
    report = check_truth(reverse.model, graph, truth, lib_data(reverse, "reverse", 192, seed=1000), which="all",
                         batch=96)
    assert len(report) == len(graph.edges) and (report.inputs == 192).all()
    inert = set(report.edge[report.true & (report.changed == 0)])
    assert inert == ({"input->a3.h0.q"} if ablation == "zero" else set())
    assert not (~report.true & (report.changed > 0)).any(), report[~report.true & (report.changed > 0)]


@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
def test_every_true_edge_of_make_frac_prevs_changes_the_output_somewhere(ablation):
    target = compiled_target("frac_prevs", ablation)
    assert target.truth.ablation == ablation
    report = check_target(target, n=192, which="all")
    assert (report.changed[report.true] > 0).all(), report
    assert (report.changed[~report.true] == 0).all(), report


def test_tier1_needs_the_compiled_head_graph(reverse):
    tiny = load_model("tiny-gpt2", n_layers=4, device="cpu").model
    with pytest.raises(WorkbenchError, match="head-level graph of the compiled model"):
        tier1(reverse, build_graph(tiny, "layer"))


def _truth_sets(graph, truth):
    true_edges = {n for n, t in zip(graph.edge_names, truth.edges) if t}
    scored = {n for n, d in zip(graph.edge_names, truth.edge_domain) if d}
    return true_edges, scored


def test_tier2_paper_map_transports_block_by_block(reverse):
    graph = build_graph(load_model("tiny-gpt2", n_layers=6, device="cpu").model, "layer")
    truth = tier2(reverse, layer_map(4, 6, "paper"), graph)
    nodes = dict(zip(truth.components, truth.nodes))
    assert [c for c in truth.components if nodes[c]] == ["a0", "m0", "m1", "m2", "a3"]
    assert [c for c, d in zip(truth.components, truth.node_domain) if not d] == ["a4", "m4", "a5", "m5"]
    true_edges, scored = _truth_sets(graph, truth)
    assert true_edges == {"input->a0", "input->m0", "a0->m0", "input->m1", "m0->m1", "m1->m2", "input->a3",
                          "m2->a3"}
    assert "a3->output" not in scored and "m3->a4" not in scored and "input->a3" in scored
    assert truth.tier == 2 and truth.ablation == "zero"
    # under resample ablation m0 reads only constant dims (one, BOS) from the input
    resample = tier2(reverse, layer_map(4, 6, "paper"), graph, "resample")
    assert true_edges - _truth_sets(graph, resample)[0] == {"input->m0"} and resample.ablation == "resample"
    assert [c for c, w in zip(graph.components, truth.writing) if w] == ["a0", "m0", "m1", "m2", "a3"]


def test_tier2_spread_map_covers_the_model_blocks_of_each_compiled_block(reverse):
    graph = build_graph(load_model("tiny-gpt2", n_layers=6, device="cpu").model, "layer")
    mapping = layer_map(4, 6, "spread")
    assert mapping == [0, 1, 2, 4, 5]  # compiled block 2 spans model blocks 2 and 3
    truth = tier2(reverse, mapping, graph)
    nodes = dict(zip(truth.components, truth.nodes))
    assert nodes["m2"] and nodes["m3"] and not nodes["a3"] and nodes["a4"]
    true_edges, _ = _truth_sets(graph, truth)
    assert {"m1->m2", "m1->m3", "m2->m3", "m3->a4", "m2->a4"} <= true_edges
    assert "a2->m3" not in true_edges


def test_tier2_refuses_a_map_that_does_not_fit(reverse):
    graph = build_graph(load_model("tiny-gpt2", n_layers=4, device="cpu").model, "layer")
    with pytest.raises(WorkbenchError, match="does not fit"):
        tier2(reverse, [0, 1, 2, 3, 4], graph)
    with pytest.raises(WorkbenchError, match="layer-level graph"):
        tier2(reverse, [0, 1, 2, 3], build_graph(load_model("tiny-gpt2", n_layers=4, device="cpu").model))


def test_every_tier1_truth_reaches_the_output():
    for program in ("sort", "hist", "frac_prevs"):
        compiled = compile_lib(program)
        graph = build_graph(compiled.model)
        truth = tier1(compiled, graph)
        into_output = [t for (s, r), t in zip(graph.edges, truth.edges) if graph.receivers[r] == "output"]
        assert sum(into_output) >= 1 and np.any(truth.nodes)
