import pytest
import torch
from transformer_lens import HookedTransformerConfig

from workbench.compiled.bridge import new_hooked_transformer

TRUE_EDGES = frozenset({"input->a0.h0.v", "a0.h0->a1.h0.v", "a1.h0->output"})


@pytest.fixture(scope="session")
def true_edges():
    """The edges of ``hand_built``'s only working path (a fixture: tests never import conftest by name)."""
    return TRUE_EDGES


@pytest.fixture(scope="session")
def hand_built():
    """A 2-layer model whose only working path is tokens 0/1 -> a0.h0 -> a1.h0 -> logits (``TRUE_EDGES``).

    Residual dims: 0-3 token one-hot, 4-5 written by a0.h0, 8-9 written by a1.h0 and read by
    the unembedding, 6-7 a junk space the distractors (a0.h1, a1.h1, both MLPs) write and
    nothing downstream of it reads. Queries and keys are zero: attention is uniform over the prefix.
    """
    cfg = HookedTransformerConfig(n_layers=2, d_model=10, d_head=2, n_heads=2, d_mlp=4, d_vocab=4, d_vocab_out=2,
                                  n_ctx=8, act_fn="relu", normalization_type=None, attention_dir="causal",
                                  default_prepend_bos=False, device="cpu", seed=0)
    model = new_hooked_transformer(cfg)
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    state.update({k: v for k, v in model.state_dict().items() if k.endswith(("mask", "IGNORE"))})
    state["embed.W_E"][:, :4] = torch.eye(4)
    gen = torch.Generator().manual_seed(0)

    def route(layer, head, reads, writes):
        for i, (r, w) in enumerate(zip(reads, writes)):
            state[f"blocks.{layer}.attn.W_V"][head, r, i] = 2.0
            state[f"blocks.{layer}.attn.W_O"][head, i, w] = 1.0

    route(0, 0, (0, 1), (4, 5))  # true
    route(0, 1, (2, 3), (6, 7))  # distractor
    route(1, 0, (4, 5), (8, 9))  # true
    route(1, 1, (6, 7), (6, 7))  # distractor
    for layer, reads in ((0, [2, 3]), (1, [0, 1, 2, 3])):
        state[f"blocks.{layer}.mlp.W_in"][reads] = torch.rand(len(reads), 4, generator=gen)
        state[f"blocks.{layer}.mlp.W_out"][:, 6:8] = torch.rand(4, 2, generator=gen)
    state["unembed.W_U"][8:10] = 3 * torch.eye(2)
    model.load_state_dict(state)
    return model


@pytest.fixture(scope="session")
def hand_built_data():
    gen = torch.Generator().manual_seed(1)
    clean, corrupt = torch.randint(0, 4, (32, 6), generator=gen), torch.randint(0, 4, (32, 6), generator=gen)
    return clean, corrupt, torch.ones_like(clean, dtype=torch.bool)
