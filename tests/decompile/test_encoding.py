"""The canonical program encoding: 5 tokens a line, deterministic order, and its inverse."""

import dataclasses

import numpy as np
import pytest

from workbench.decompile.encoding import (
    decode,
    encode,
    flat,
    program_hash,
    unflat,
)
from workbench.decompile.faithful import random_inputs
from workbench.decompile.generator import GeneratorConfig, generate
from workbench.decompile.program import Line, Program
from workbench.errors import WorkbenchError


def _round_trip(n, seed):
    config = GeneratorConfig()
    for index in range(n):
        program = generate(config, seed, index)
        rows = encode(program)
        assert all(len(row) == 5 for row in rows) and rows[0][0] == "START" and rows[-1][0] == "END"
        decoded = decode(rows, program.vocab, program.max_seq_len)
        for causal in (False, True):
            for tokens in random_inputs(program, 4, index):
                assert decoded.outcome(tokens, causal) == program.outcome(tokens, causal), (index, tokens)
        assert encode(decoded) == rows  # the encoding of a decoded program is the same grid


def test_round_trip_computes_the_same_outputs_on_100_programs():
    _round_trip(100, seed=2024)


@pytest.mark.slow
def test_round_trip_computes_the_same_outputs_on_1000_programs():
    _round_trip(1000, seed=99)


def _shuffled_and_renamed(program: Program, rng) -> Program:
    """The same program written differently: another topological order, other variable names."""
    remaining, order, done = list(program.lines[:-1]), [], {"tokens", "indices"}
    while remaining:
        ready = [line for line in remaining if all(a in done for a in line.args)]
        pick = ready[int(rng.integers(len(ready)))]
        remaining.remove(pick)
        order.append(pick)
        done.add(pick.out)
    order.append(program.lines[-1])
    names = {line.out: f"x{int(n)}" for line, n in zip(order, rng.permutation(100)[:len(order)])}
    names.update(tokens="tokens", indices="indices")
    lines = []
    for line in order:
        args = tuple(names[a] for a in line.args)
        if line.fn in ("LAM_ADD", "LAM_MUL") and line.op == "SequenceMap" and rng.random() < 0.5:
            args = args[::-1]  # commutative: either order is the same program
        lines.append(dataclasses.replace(line, args=args, out=names[line.out]))
    return Program(program.vocab, program.max_seq_len, lines)


def test_the_order_is_canonical_for_any_way_of_writing_a_program():
    rng = np.random.default_rng(0)
    config = GeneratorConfig()
    for index in range(100):
        program = generate(config, 31, index)
        other = _shuffled_and_renamed(program, rng)
        assert encode(other) == encode(program), index


def test_lines_are_sorted_by_depth_and_renamed_in_order():
    program = Program([0, 1], 5, [
        Line("Select", "PRED_LT", ("tokens", "indices"), "s"),
        Line("Map", "LAM_IV", ("tokens",), "m"),
        Line("SelectorWidth", None, ("s",), "w"),
        Line("SequenceMap", "LAM_MUL", ("w", "indices"), "z")])
    assert encode(program) == [
        ["START", "NA", "NA", "NA", "NA"],
        ["Map", "LAM_IV", "tokens", "NA", "v1"],  # depth 1, ties by op name (Map < Select)
        ["Select", "PRED_LT", "tokens", "indices", "v2"],
        ["SelectorWidth", "v2", "NA", "NA", "v3"],
        ["SequenceMap", "LAM_MUL", "indices", "v3", "v4"],  # commutative: arguments sorted
        ["END", "NA", "NA", "NA", "NA"]]
    # equal depth and op: the lambda's name decides, and the renaming follows the new order
    rows = encode(Program([0, 1], 5, [Line("Map", "LAM_EQ", ("tokens",), "a", 1),
                                      Line("Map", "LAM_ADD", ("tokens",), "b", 2),
                                      Line("SequenceMap", "LAM_SUB", ("a", "b"), "c")]))
    assert [r[1] for r in rows[1:3]] == ["LAM_ADD", "LAM_EQ"] and rows[3][2:4] == ["v2", "v1"]


def test_constants_are_tokens_and_change_the_program():
    a = Program([0, 1, 2], 3, [Line("Map", "LAM_LT", ("tokens",), "v1", 2)])
    b = Program([0, 1, 2], 3, [Line("Map", "LAM_LT", ("tokens",), "v1", 1)])
    assert encode(a)[1] == ["Map", "LAM_LT", "tokens", "c:2", "v1"]
    assert program_hash(encode(a)) != program_hash(encode(b))
    c = Program(["t0", "t1"], 3, [Line("Map", "LAM_ADD", ("indices",), "v1", 2.47)])
    assert encode(c)[1][3] == "c:2.47"
    assert decode(encode(c), c.vocab, 3).lines[0].const == 2.47


def test_hash_is_sha256_of_the_tokens():
    import hashlib

    rows = [["START", "NA", "NA", "NA", "NA"], ["SelectorWidth", "v1", "NA", "NA", "v2"], ["END"] + ["NA"] * 4]
    text = "START NA NA NA NA\nSelectorWidth v1 NA NA v2\nEND NA NA NA NA"
    assert program_hash(rows) == hashlib.sha256(text.encode()).hexdigest()
    assert unflat(flat(rows)) == rows


@pytest.mark.parametrize("rows, message", [
    ([["Map", "LAM_LT", "tokens", "c:1", "v1"]], "START"),
    ([["START"] + ["NA"] * 4, ["Map", "LAM_LT", "tokens", "c:1", "v1"]], "no END"),
    ([["START"] + ["NA"] * 4, ["Loop", "NA", "NA", "NA", "v1"], ["END"] + ["NA"] * 4], "unknown operation"),
    ([["START"] + ["NA"] * 4, ["Map", "LAM_LT", "v7", "c:1", "v1"], ["END"] + ["NA"] * 4], "earlier sop"),
    ([["START"] + ["NA"] * 4, ["Map", "LAM_LT", "tokens", "c:(", "v1"], ["END"] + ["NA"] * 4], "literal"),
    ([["START"] + ["NA"] * 4, ["Select", "PRED_LT", "tokens", "tokens", "v1"], ["END"] + ["NA"] * 4], "SOp"),
])
def test_malformed_grids_are_refused_with_the_problem(rows, message):
    with pytest.raises(WorkbenchError, match=message):
        decode(rows, [0, 1], 4)
