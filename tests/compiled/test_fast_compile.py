"""The fast construction of tracr's basis vectors (``fast_one_hots``) gives the very same model."""

import pytest
import torch
from tracr.craft import bases

from workbench.compiled import LIB_PROGRAMS, compile_program
from workbench.tracr_craft import fast_one_hots
from workbench.tasks import programs

VOCAB = {*"(){}[]", programs.FILLER, programs.ANSWER}
CASES = {
    "dyck-paper": lambda: (programs.shuffle_dyck_paper(), VOCAB, 8, True),
    "dyck": lambda: (programs.shuffle_dyck(), VOCAB, 8, True),
    "count": lambda: (programs.count_x(), {"x", "y", programs.FILLER, programs.ANSWER, *programs.DIGITS}, 8, True),
    **{f"lib-{name}": (lambda entry=entry: (entry.program(), set(entry.vocab), entry.max_seq_len, False))
       for name, entry in LIB_PROGRAMS.items() if name in ("sort_freq", "frac_prevs", "shuffle_dyck2")},
}


@pytest.mark.parametrize("name", list(CASES))
def test_fast_and_plain_tracr_give_identical_weights(name):
    program, vocab, max_seq_len, causal = CASES[name]()  # one program object: same labels in both
    plain = compile_program(program, vocab, max_seq_len, causal=causal, mlp_exactness=400, fast=False)
    fast = compile_program(program, vocab, max_seq_len, causal=causal, mlp_exactness=400, fast=True)
    assert fast.residual_dims == plain.residual_dims and fast.output_values == plain.output_values
    plain_state, fast_state = plain.model.state_dict(), fast.model.state_dict()
    assert plain_state.keys() == fast_state.keys()
    for key, value in plain_state.items():
        assert torch.equal(value, fast_state[key]), key


def test_one_hots_match_and_the_patch_is_undone():
    original = bases.VectorSpaceWithBasis.vector_from_basis_direction
    space = bases.VectorSpaceWithBasis.from_values("x", range(5))
    expected = [space.vector_from_basis_direction(d) for d in space.basis]
    with fast_one_hots():
        assert bases.VectorSpaceWithBasis.vector_from_basis_direction is not original
        got = [space.vector_from_basis_direction(d) for d in space.basis]
    assert bases.VectorSpaceWithBasis.vector_from_basis_direction is original
    assert all(g == e and g.magnitudes.dtype == e.magnitudes.dtype for g, e in zip(got, expected))
    with pytest.raises(RuntimeError), fast_one_hots():
        raise RuntimeError("compile failed")
    assert bases.VectorSpaceWithBasis.vector_from_basis_direction is original
