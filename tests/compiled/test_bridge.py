"""The tracr → HookedTransformer bridge is exact, checked against tracr's own model and RASP."""

import math
import random

import numpy as np
import pytest
import torch
from tracr.compiler import test_cases
from tracr.rasp import rasp

from workbench import WorkbenchError
from workbench.compiled import LIB_PROGRAMS, compile_lib, compile_program, residual_hook_names

N_INPUTS = 8  # random inputs per program and mode (every residual compared with tracr's JAX model)

# Every program of tracr.compiler.lib is registered; none is left out (tracr compiles all of
# them). Each is checked both causal and bidirectional: the bridge must reproduce tracr's
# model either way. RASP semantics are checked where they hold: bidirectional always,
# causal only for the programs tracr's lib marks as working under causal evaluation.
CASES = [(name, causal) for name in LIB_PROGRAMS for causal in (False, True)]


def test_registry_covers_tracr_lib():
    from tracr.compiler import lib

    public = {n.removeprefix("make_") for n in dir(lib) if callable(getattr(lib, n)) and not n.startswith("_")
              and getattr(lib, n).__module__ == lib.__name__}
    assert public == set(LIB_PROGRAMS)


def _tracr_outputs_and_residuals(compiled, tokens):
    out = compiled.tracr.assembled.apply([compiled.bos, *tokens])
    residuals = [np.asarray(out.input_embeddings)[0]] + [np.asarray(r)[0] for r in out.residuals]
    return out, residuals


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, abs_tol=1e-4)
    return a == b


@pytest.mark.parametrize("name,causal", CASES, ids=[f"{n}-{'causal' if c else 'bidir'}" for n, c in CASES])
def test_lib_program_matches_tracr_exactly(name, causal):
    entry = LIB_PROGRAMS[name]
    compiled = compile_program(entry.program(), set(entry.vocab), entry.max_seq_len, causal=causal)
    unembed = compiled.model.W_U.detach().numpy()
    rng = random.Random(f"{name}:{causal}")  # str seeds are stable across processes (hash() is not)
    for _ in range(N_INPUTS):
        tokens = entry.random_input(rng)
        out, tracr_residuals = _tracr_outputs_and_residuals(compiled, tokens)
        ours = compiled.residuals(tokens)
        names = residual_hook_names(compiled.n_layers)
        assert len(names) == len(tracr_residuals)
        for hook, reference in zip(names, tracr_residuals):
            diff = np.abs(ours[hook].numpy() - reference).max()
            assert diff <= 1e-5, f"{hook}: max residual diff {diff:.2e} on {tokens}"
        decoded = compiled.run(tokens)
        tracr_decoded = out.decoded[1:]
        if compiled.is_categorical:
            # tracr takes an argmax even where the output one-hot is absent; compare where it is present.
            present = (tracr_residuals[-1] @ unembed).max(axis=-1)[1:] > 0.5
            for position, (mine, theirs) in enumerate(zip(decoded, tracr_decoded)):
                assert mine == (theirs if present[position] else None), (tokens, decoded, tracr_decoded)
        else:
            np.testing.assert_allclose(decoded, tracr_decoded, atol=1e-6)
        if not causal or entry.causal_valid:
            expected = rasp.evaluate(entry.program(), tokens)
            assert all(_same(a, b) for a, b in zip(decoded, expected)), (tokens, decoded, expected)


_TRACR_SUITE = [(c, False) for c in test_cases.TEST_CASES] + [(c, True) for c in test_cases.CAUSAL_TEST_CASES]


@pytest.mark.parametrize("case,causal", _TRACR_SUITE,
                         ids=[f"{c['testcase_name']}-{'causal' if k else 'bidir'}" for c, k in _TRACR_SUITE])
def test_tracr_integration_suite(case, causal):
    """tracr's own integration cases: the converted model gives tracr's expected outputs."""
    compiled = compile_program(case["program"], case["vocab"], case["max_seq_len"], causal=causal)
    got = compiled.run(case["test_input"])
    for position, (mine, expected) in enumerate(zip(got, case["expected_output"])):
        if expected is None:
            continue  # tracr's tests do not check undefined outputs either
        assert _same(mine, expected), (position, got, case["expected_output"])


def test_unembedding_is_recovered_not_identity():
    compiled = compile_lib("reverse", use_cache=False)
    w_u = compiled.model.W_U.detach()
    assert w_u.shape == (compiled.model.cfg.d_model, len(compiled.output_values))
    output_dims = compiled.dims_of(compiled.output_variable)
    # Each output column reads exactly its own labelled residual dim.
    for column, value in enumerate(compiled.output_values):
        (row,) = torch.nonzero(w_u[:, column]).flatten().tolist()
        assert row in output_dims and compiled.residual_dims[row].value == value


def test_labelled_basis_helpers():
    compiled = compile_lib("frac_prevs", causal=True, use_cache=False)
    assert compiled.is_numerical(compiled.output_variable)
    assert set(compiled.values_of("tokens")) == {"x", "y", "z", compiled.bos, compiled.pad}
    assert compiled.values_of("indices") == list(range(compiled.max_seq_len))
    assert len(compiled.residual_labels) == compiled.model.cfg.d_model
    with pytest.raises(WorkbenchError, match="unknown variable 'nope'.*tokens"):
        compiled.dims_of("nope")


def test_bad_inputs_have_clear_errors():
    compiled = compile_lib("reverse", use_cache=False)
    with pytest.raises(WorkbenchError, match=r"token 'z' at position 1 is not in the compiled vocab \['a', 'b', 'c'\]"):
        compiled.run(["a", "z"])
    with pytest.raises(WorkbenchError, match="input has 9 tokens .* max_seq_len=8"):
        compiled.run(list("abcabcabc"))
    with pytest.raises(WorkbenchError, match="compiled vocab"):
        compiled.parse_input("abz")
    with pytest.raises(WorkbenchError, match="unknown program 'nope'; available: length, reverse"):
        compile_lib("nope")
    with pytest.raises(WorkbenchError, match="must not be in the vocab"):
        compile_program(rasp.tokens, {"a", "compiler_bos"}, 4)
