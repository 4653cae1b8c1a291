"""Property-based fuzzing (Hypothesis) of ``CompiledModel.parse_input`` and ``encode``: any text or
token list either becomes valid ids or raises a ``WorkbenchError`` (never a KeyError, TypeError, ...)."""

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import WorkbenchError
from workbench.compiled import compile_lib

FUZZ = settings(max_examples=50, deadline=None)


@pytest.fixture(scope="module", params=["reverse", "sort_unique"])  # characters, integers
def program(request):
    """The program's name (Hypothesis prints its arguments; a compiled model's repr runs to 50 kB)."""
    return request.param


@functools.cache
def _compiled(name):
    return compile_lib(name)


def _texts(compiled):
    names = sorted(map(str, compiled.vocab))
    near = st.sampled_from([*names, " ", "\t", "\n", "\u2028", "\x00", "0", "6", "10", "-1", "1.0", "ab", "compiler_bos",
                            str(compiled.bos), str(compiled.pad)])
    return st.one_of(st.text(max_size=20), st.lists(near, max_size=12).map("".join),
                     st.lists(st.sampled_from(names), min_size=1, max_size=12).map(" ".join))


def _token_lists(compiled):
    token = st.one_of(st.sampled_from(sorted(compiled.vocab, key=str)), st.sampled_from([compiled.bos, compiled.pad]),
                      st.text(max_size=3), st.integers(-3, 9), st.floats(allow_nan=True), st.none(),
                      st.lists(st.integers(), max_size=2), st.booleans())
    return st.lists(token, max_size=12)


def _check_ids(compiled, ids, n_tokens: int) -> None:
    assert ids.shape == (1, n_tokens + 1)
    assert ids[0, 0] == compiled.input_vocab.index(compiled.bos)
    assert ((0 <= ids) & (ids < len(compiled.input_vocab))).all()
    pad = compiled.input_vocab.index(compiled.pad)
    assert (ids[0, 1:] != pad).all() and (ids[0, 1:] != ids[0, 0]).all()


@FUZZ
@given(data=st.data())
def test_parse_input_gives_vocab_tokens_or_a_workbench_error(program, data):
    compiled = _compiled(program)
    text = data.draw(_texts(compiled))
    try:
        tokens = compiled.parse_input(text)
    except WorkbenchError as error:
        assert "\n" not in str(error)  # the offending token is quoted (repr), never printed raw
        return
    assert tokens and all(t in compiled.vocab for t in tokens)
    assert [str(t) for t in tokens] == (text.split() if any(c.isspace() for c in text.strip()) else list(text.strip()))
    try:
        ids = compiled.encode(tokens)
    except WorkbenchError as error:
        assert len(tokens) > compiled.max_seq_len, error  # the only reason valid tokens are refused
        return
    _check_ids(compiled, ids, len(tokens))


@FUZZ
@given(data=st.data())
def test_encode_gives_valid_ids_or_a_workbench_error(program, data):
    compiled = _compiled(program)
    tokens = data.draw(_token_lists(compiled))
    try:
        ids = compiled.encode(tokens)
    except WorkbenchError:
        return
    body = tokens[1:] if tokens and tokens[0] == compiled.bos else tokens
    _check_ids(compiled, ids, len(body))
    assert [compiled.input_vocab[i] for i in ids[0, 1:].tolist()] == body
