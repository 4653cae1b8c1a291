"""What tracr's compiler needs from us without torch: the names of the compiler's BOS and pad
tokens and a faster craft stage (the same weights). ``compiled`` (the bridge) and the
decompiler's compile workers (child processes that must start in milliseconds) share it.
"""

from __future__ import annotations

import contextlib

import numpy as np
from tracr.craft import bases, transformers, vectorspace_fns
from tracr.craft.chamber import categorical_mlp

COMPILER_BOS = "compiler_bos"
COMPILER_PAD = "compiler_pad"


def _one_hot(space: bases.VectorSpaceWithBasis, basis_direction: bases.BasisDirection) -> bases.VectorInBasis:
    """The vector of one basis direction: the same float64 one-hot as tracr's ``np.eye(d)[i]``, in O(d)."""
    magnitudes = np.zeros(space.num_dims)
    magnitudes[space.index_by_direction[basis_direction]] = 1.0
    return space.make_vector(magnitudes)


def _combine_in_parallel(cls, fns):
    """tracr's ``Linear.combine_in_parallel`` without its per-direction loop: each function's matrix is
    added into the joint matrix at its rows and columns, in the functions' order — the same sums in the
    same order as tracr's ``add_directions`` per input direction, so the same float64 matrix."""
    joint_input = bases.join_vector_spaces(*[fn.input_space for fn in fns])
    joint_output = bases.join_vector_spaces(*[fn.output_space for fn in fns])
    matrix = np.zeros((joint_input.num_dims, joint_output.num_dims))
    for fn in fns:
        rows = [joint_input.index_by_direction[d] for d in fn.input_space.basis]
        columns = [joint_output.index_by_direction[d] for d in fn.output_space.basis]
        matrix[np.ix_(rows, columns)] += fn.matrix
    return cls(joint_input, joint_output, matrix)


def _sequence_map_categorical_mlp(input1_space, input2_space, output_space, operation,
                                  one_space=categorical_mlp._ONE_SPACE, hidden_name="__hidden__"):
    """tracr's ``sequence_map_categorical_mlp`` (hidden unit (x, y) = ReLU(x + y − 1), then the lookup
    table of ``operation``) with its matrices filled in directly instead of one ``add_directions``
    copy of the hidden vector per entry: the same 0/±1 matrices over the same spaces."""
    bases.ensure_dims(one_space, num_dims=1, name="one_space")
    if not set(input1_space.basis).isdisjoint(input2_space.basis):
        raise ValueError("Input spaces to a SequenceMap must be disjoint. "
                         "If input spaces are the same, use Map instead!")
    input_space = bases.direct_sum(input1_space, input2_space, one_space)
    pairs = {bases.BasisDirection(hidden_name, (x.name, x.value, y.name, y.value)): (x, y)
             for x in input1_space.basis for y in input2_space.basis}
    hidden_space = bases.VectorSpaceWithBasis(list(pairs))
    rows, hidden = input_space.index_by_direction, hidden_space.index_by_direction
    first = np.zeros((input_space.num_dims, hidden_space.num_dims))
    first[rows[one_space.basis[0]], :] = -1.0
    second = np.zeros((hidden_space.num_dims, output_space.num_dims))
    outputs = output_space.index_by_direction
    for direction in hidden_space.basis:
        x, y = pairs[direction]
        first[rows[x], hidden[direction]] = 1.0
        first[rows[y], hidden[direction]] = 1.0
        output = operation(x, y)
        if output in output_space:
            second[hidden[direction], outputs[output]] = 1.0
    return transformers.MLP(vectorspace_fns.Linear(input_space, hidden_space, first),
                            vectorspace_fns.Linear(hidden_space, output_space, second))


@contextlib.contextmanager
def fast_craft():
    """Within the block, tracr's craft stage builds the same matrices without its O(d²)-per-vector loops.

    - Basis vectors in O(d): ``VectorSpaceWithBasis.vector_from_basis_direction`` materialises
      ``np.eye(d)`` for every call, and the craft stage calls it once per hidden direction of each MLP
      over that layer's joined space: O(d³) per layer (the paper's shuffle-dyck as written, max_seq_len
      28: 49 s of 63; the dyck task: 52 s CPU → 8 s).
    - Parallel blocks of a layer combined by placing each block's matrix (``_combine_in_parallel``)
      instead of applying every block to every basis direction of the joint space (half the decompiler
      zoo's compile time).
    - SequenceMap MLPs filled in directly (``_sequence_map_categorical_mlp``).

    The vectors and matrices are identical, so are the weights (tests/compiled/test_fast_compile.py).
    """
    one_hot = bases.VectorSpaceWithBasis.vector_from_basis_direction
    combine = vectorspace_fns.Linear.__dict__["combine_in_parallel"]  # the classmethod itself, not bound
    bases.VectorSpaceWithBasis.vector_from_basis_direction = _one_hot
    sequence_map = categorical_mlp.sequence_map_categorical_mlp
    vectorspace_fns.Linear.combine_in_parallel = classmethod(_combine_in_parallel)
    categorical_mlp.sequence_map_categorical_mlp = _sequence_map_categorical_mlp
    try:
        yield
    finally:
        bases.VectorSpaceWithBasis.vector_from_basis_direction = one_hot
        vectorspace_fns.Linear.combine_in_parallel = combine
        categorical_mlp.sequence_map_categorical_mlp = sequence_map
