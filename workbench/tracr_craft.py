"""What tracr's compiler needs from us without torch: the names of the compiler's BOS and pad
tokens and a faster construction of its basis vectors. ``compiled`` (the bridge) and the
decompiler's compile workers (child processes that must start in milliseconds) share it.
"""

from __future__ import annotations

import contextlib

import numpy as np
from tracr.craft import bases

COMPILER_BOS = "compiler_bos"
COMPILER_PAD = "compiler_pad"


def _one_hot(space: bases.VectorSpaceWithBasis, basis_direction: bases.BasisDirection) -> bases.VectorInBasis:
    """The vector of one basis direction: the same float64 one-hot as tracr's ``np.eye(d)[i]``, in O(d)."""
    magnitudes = np.zeros(space.num_dims)
    magnitudes[space.index_by_direction[basis_direction]] = 1.0
    return space.make_vector(magnitudes)


@contextlib.contextmanager
def fast_one_hots():
    """Within the block, tracr builds basis vectors in O(d) instead of O(d²).

    tracr's ``VectorSpaceWithBasis.vector_from_basis_direction`` materialises ``np.eye(d)`` for
    every call, and the craft stage calls it once per hidden direction of each MLP over that
    layer's joined space: O(d³) per layer, most of a large program's compile time (the paper's
    shuffle-dyck as written, max_seq_len 28: 49 s of 63; the dyck task: 52 s CPU → 8 s). The
    vectors are identical, so are the weights (tests/compiled/test_fast_compile.py).
    """
    original = bases.VectorSpaceWithBasis.vector_from_basis_direction
    bases.VectorSpaceWithBasis.vector_from_basis_direction = _one_hot
    try:
        yield
    finally:
        bases.VectorSpaceWithBasis.vector_from_basis_direction = original
