"""The compiled structure (which head/MLP reads and writes which dims) agrees with the weights tracr assembled.

A head reads a dim through its bilinear forms W_Q·W_Kᵀ (query/key) and W_V·W_O (value/output):
tracr's key matrix projects onto a whole space even where the query-key matrix ignores a dim.
"""

import pytest
import torch

from workbench.compiled import LIB_PROGRAMS, compile_lib, load_or_compile
from workbench.compiled.bridge import compile_program
from workbench.compiled.lib_programs import get_lib_program


def _nonzero_dims(matrix: torch.Tensor, dim: int) -> set[int]:
    return set((matrix.abs().sum(dim) > 0).nonzero().flatten().tolist())


@pytest.mark.parametrize("program", sorted(LIB_PROGRAMS))
def test_components_match_the_assembled_weights(program):
    compiled = compile_lib(program, use_cache=False)
    model, labels = compiled.model, compiled.residual_labels
    index = {label: i for i, label in enumerate(labels)}
    dims = lambda names: {index[n] for n in names}  # noqa: E731
    by_name = {c.name: c for c in compiled.components}
    for layer in range(model.cfg.n_layers):
        attn, mlp = model.blocks[layer].attn, model.blocks[layer].mlp
        for head in range(model.cfg.n_heads):
            component = by_name.get(f"a{layer}.h{head}")
            if component is None:  # a padding head is all zeros
                assert attn.W_Q[head].abs().sum() == attn.W_O[head].abs().sum() == 0
                continue
            qk = attn.W_Q[head] @ attn.W_K[head].T  # residual x residual: what the attention score reads
            ov = attn.W_V[head] @ attn.W_O[head]
            assert _nonzero_dims(qk, 1) == dims(component.reads["q"])
            assert _nonzero_dims(qk, 0) == dims(component.reads["k"])
            assert _nonzero_dims(ov, 1) == dims(component.reads["v"])
            assert _nonzero_dims(ov, 0) == dims(component.writes)
        component = by_name.get(f"m{layer}")
        if component is None:
            assert mlp.W_in.abs().sum() == mlp.W_out.abs().sum() == 0
            continue
        assert _nonzero_dims(mlp.W_in, 1) == dims(component.reads["in"])
        assert _nonzero_dims(mlp.W_out, 0) == dims(component.writes)
        assert component.operations


def test_structure_survives_the_disk_cache():
    entry = get_lib_program("sort")
    spec = {"test": "structure-roundtrip"}
    fresh = load_or_compile(spec, lambda: compile_program(entry.program(), set(entry.vocab), entry.max_seq_len))
    cached = load_or_compile(spec, lambda: pytest.fail("should load from the cache"))
    assert cached.tracr is None and cached.components == fresh.components
