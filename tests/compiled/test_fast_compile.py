"""The fast construction of tracr's basis vectors (``fast_craft``) gives the very same model."""

import numpy as np
import pytest
import torch
from tracr.craft import bases, vectorspace_fns

from workbench.compiled import LIB_PROGRAMS, compile_program
from workbench.tracr_craft import fast_craft
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


def test_one_hots_match_and_the_patches_are_undone():
    original = bases.VectorSpaceWithBasis.vector_from_basis_direction
    space = bases.VectorSpaceWithBasis.from_values("x", range(5))
    expected = [space.vector_from_basis_direction(d) for d in space.basis]
    with fast_craft():
        assert bases.VectorSpaceWithBasis.vector_from_basis_direction is not original
        got = [space.vector_from_basis_direction(d) for d in space.basis]
    assert bases.VectorSpaceWithBasis.vector_from_basis_direction is original
    assert all(g == e and g.magnitudes.dtype == e.magnitudes.dtype for g, e in zip(got, expected))
    combine = vectorspace_fns.Linear.__dict__["combine_in_parallel"]
    with pytest.raises(RuntimeError), fast_craft():
        raise RuntimeError("compile failed")
    assert bases.VectorSpaceWithBasis.vector_from_basis_direction is original
    assert vectorspace_fns.Linear.__dict__["combine_in_parallel"] is combine


@pytest.mark.parametrize("seed", range(5))
def test_parallel_blocks_combine_into_the_same_matrix(seed):
    """Overlapping input and output spaces, so that several blocks add into the same entries."""
    rng = np.random.default_rng(seed)

    def space(name):
        return bases.VectorSpaceWithBasis([bases.BasisDirection(name, int(v))
                                           for v in sorted(rng.choice(8, size=rng.integers(1, 6), replace=False))])

    fns = []
    for _ in range(rng.integers(2, 5)):
        source, target = space(str(rng.choice(["a", "b"]))), space(str(rng.choice(["h", "o"])))
        fns.append(vectorspace_fns.Linear(source, target, rng.normal(size=(source.num_dims, target.num_dims))))
    plain = vectorspace_fns.Linear.combine_in_parallel(fns)
    with fast_craft():
        fast = vectorspace_fns.Linear.combine_in_parallel(fns)
    assert fast.input_space == plain.input_space and fast.output_space == plain.output_space
    assert np.array_equal(fast.matrix, plain.matrix)


def test_sequence_map_mlp_is_tracrs():
    from tracr.craft.chamber import categorical_mlp

    first = bases.VectorSpaceWithBasis.from_values("a", [0, 1, 2])
    second = bases.VectorSpaceWithBasis.from_values("b", ["x", "yy"])
    output = bases.VectorSpaceWithBasis.from_values("c", range(4))

    def operation(x, y):  # 4 is outside the output space: that hidden unit writes nothing
        return bases.BasisDirection("c", x.value + len(y.value) + (x.value == 2))

    plain = categorical_mlp.sequence_map_categorical_mlp(first, second, output, operation)
    with fast_craft():
        fast = categorical_mlp.sequence_map_categorical_mlp(first, second, output, operation)
        with pytest.raises(ValueError, match="disjoint"):
            categorical_mlp.sequence_map_categorical_mlp(first, first, output, operation)
    for a, b in ((plain.fst, fast.fst), (plain.snd, fast.snd)):
        assert a.input_space == b.input_space and a.output_space == b.output_space
        assert np.array_equal(a.matrix, b.matrix) and a.matrix.dtype == b.matrix.dtype
    assert not plain.snd.matrix.sum(axis=1).all()  # the case of an output outside the space is exercised
