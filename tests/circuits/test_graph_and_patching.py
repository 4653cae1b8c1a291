"""The edge graph's shape and the patching's exactness against hand-written hooks."""

import pytest
import torch

from workbench.circuits import Experiment, build_graph
from workbench.circuits.patching import prepare, run_graph
from workbench.errors import WorkbenchError
from workbench.models import load_model


@pytest.fixture(scope="module")
def tiny():
    model = load_model("tiny-gpt2", n_layers=3, device="cpu").model  # layer norm and biases, like real models
    gen = torch.Generator().manual_seed(0)
    return model, torch.randint(0, 1000, (4, 7), generator=gen), torch.randint(0, 1000, (4, 7), generator=gen)


@pytest.mark.parametrize("level", ["head", "layer"])
def test_graph_counts(tiny, level):
    model = tiny[0]
    graph = build_graph(model, level)
    n, h = model.cfg.n_layers, model.cfg.n_heads
    per_layer = h if level == "head" else 1
    reads = 3 * per_layer if level == "head" else 1
    assert len(graph.senders) == 1 + n * (per_layer + 1)
    assert len(graph.receivers) == n * (reads + 1) + 1
    # an attention receiver of layer L sees 1 + L (attention + MLP) senders, the MLP also its own attention
    expected = sum(reads * (1 + L * (per_layer + 1)) + 1 + L * (per_layer + 1) + per_layer for L in range(n))
    expected += len(graph.senders)  # output reads everything
    assert len(graph.edges) == expected
    assert str(graph).startswith(f"{level}-level graph: {len(graph.nodes)} nodes")


def test_bad_level_and_grouped_heads_are_refused(tiny):
    with pytest.raises(WorkbenchError, match="unknown graph level"):
        build_graph(tiny[0], "neuron")
    llama = load_model("tiny-llama", n_layers=2, device="cpu").model
    if llama.cfg.n_key_value_heads not in (None, llama.cfg.n_heads):
        with pytest.raises(WorkbenchError, match="layer-level graph"):
            build_graph(llama, "head")
    assert build_graph(llama, "layer").level == "layer"


@pytest.mark.parametrize("level", ["head", "layer"])
def test_no_ablation_is_the_model_and_full_resample_is_the_corrupt_run(tiny, level):
    model, clean, corrupt = tiny
    graph = build_graph(model, level)
    prepare(model, graph)
    with torch.no_grad():
        reference_clean, reference_corrupt = model(clean), model(corrupt)
        _, corrupt_outputs = run_graph(model, graph, corrupt)
        unpatched, _ = run_graph(model, graph, clean, torch.zeros(len(graph.edges)), corrupt_outputs)
        everything, _ = run_graph(model, graph, clean, torch.ones(len(graph.edges)), corrupt_outputs)
    assert torch.allclose(unpatched, reference_clean, atol=1e-4)
    assert torch.allclose(everything, reference_corrupt, atol=1e-4)


def test_one_zero_ablated_edge_equals_a_hand_written_hook(tiny):
    """Cutting m0 -> output (zero ablation) = subtracting MLP 0's output from the final residual only."""
    model, clean, _ = tiny
    graph = build_graph(model, "head")
    prepare(model, graph)
    last = model.cfg.n_layers - 1
    store = {}

    def keep(act, hook):
        store["mlp0"] = act

    def subtract(act, hook):
        return act - store["mlp0"]

    with torch.no_grad():
        expected = model.run_with_hooks(clean, fwd_hooks=[("blocks.0.hook_mlp_out", keep),
                                                          (f"blocks.{last}.hook_resid_post", subtract)])
        ablated = torch.zeros(len(graph.edges))
        ablated[graph.edge_names.index("m0->output")] = 1
        patched, _ = run_graph(model, graph, clean, ablated)
    assert torch.allclose(patched, expected, atol=1e-4)


def test_one_resampled_head_edge_equals_a_hand_written_hook(tiny):
    """Cutting a0.h1 -> a1.h0.v (resample) changes head 0's value input of layer 1 only."""
    model, clean, corrupt = tiny
    graph = build_graph(model, "head")
    prepare(model, graph)
    store = {}

    def keep(name):
        def hook(act, hook):
            store[name] = act
        return hook

    with torch.no_grad():
        model.run_with_hooks(corrupt, fwd_hooks=[("blocks.0.attn.hook_z", keep("corrupt"))])
        w_o = model.blocks[0].attn.W_O[1]

        def patch(act, hook):
            act = act.clone()
            act[:, :, 0] += (store["corrupt"][:, :, 1] - store["clean"][:, :, 1]) @ w_o
            return act

        expected = model.run_with_hooks(clean, fwd_hooks=[("blocks.0.attn.hook_z", keep("clean")),
                                                          ("blocks.1.hook_v_input", patch)])
        _, corrupt_outputs = run_graph(model, graph, corrupt)
        ablated = torch.zeros(len(graph.edges))
        ablated[graph.edge_names.index("a0.h1->a1.h0.v")] = 1
        patched, _ = run_graph(model, graph, clean, ablated, corrupt_outputs)
    assert torch.allclose(patched, expected, atol=1e-4)
    assert not torch.allclose(patched, model(clean), atol=1e-4)


def test_mean_ablation_averages_real_tokens_only(tiny):
    model, clean, corrupt = tiny
    graph = build_graph(model, "layer")
    mask = torch.ones_like(corrupt, dtype=torch.bool)
    mask[0, 4:] = False
    experiment = Experiment(model, graph, clean, corrupt, torch.ones_like(mask), "mean", corrupt_mask=mask)
    _, outputs = run_graph(model, graph, corrupt, mask=mask.long())
    assert torch.allclose(experiment.replacement[:, 0, 5], outputs[:, 1:, 5].mean(1), atol=1e-5)
    assert torch.allclose(experiment.replacement[:, 2, 1], outputs[:, :, 1].mean(1), atol=1e-5)


def test_bad_experiment_inputs_are_named(tiny):
    model, clean, corrupt = tiny
    graph = build_graph(model, "layer")
    with pytest.raises(WorkbenchError, match="unknown ablation"):
        Experiment(model, graph, clean, corrupt, torch.ones_like(clean, dtype=torch.bool), "noise")
    with pytest.raises(WorkbenchError, match="same shape"):
        Experiment(model, graph, clean, corrupt[:2], torch.ones_like(clean, dtype=torch.bool))
    with pytest.raises(WorkbenchError, match="no scored position"):
        Experiment(model, graph, clean, corrupt, torch.zeros_like(clean, dtype=torch.bool))


def test_a_resumed_forward_equals_the_full_one(tiny):
    """ACDC resumes from a cached prefix: exact while only receivers of later blocks change."""
    model, clean, corrupt = tiny
    graph = build_graph(model, "head")
    experiment = Experiment(model, graph, clean, corrupt, torch.ones_like(clean, dtype=torch.bool), "resample")
    gen = torch.Generator().manual_seed(0)
    for layer in range(graph.n_layers):
        later = torch.tensor([float(graph.receiver_layer(r) >= layer) for _, r in graph.edges])
        ablated = (torch.rand(len(graph.edges), generator=gen) < 0.3).float() * later
        prefix = experiment.prefix(torch.zeros(len(graph.edges)), layer)
        assert torch.allclose(experiment.loss(ablated, prefix), experiment.loss(ablated), atol=1e-5)
        assert len(prefix.outputs) == 1 + layer * (graph.n_heads + 1)
