"""The decompiler's metrics against hand-computed cases, the functional check, and the named lib programs."""

import random

import pytest

from workbench.compiled import get_lib_program
from workbench.decompile.encoding import encode, program_hash
from workbench.decompile.evaluate import NAMED_PROGRAMS
from workbench.decompile.faithful import CompileWorker
from workbench.decompile.metrics import (
    MajorityBaseline,
    accuracy_by_op,
    fixed_slots,
    functional_check,
    nonfixed_accuracy,
    summarize,
    token_accuracy,
)
from workbench.decompile.program import Line, Program

START = ["START", "NA", "NA", "NA", "NA"]
END = ["END", "NA", "NA", "NA", "NA"]
TRUE = [START, ["Select", "PRED_EQ", "tokens", "tokens", "v1"], ["SelectorWidth", "v1", "NA", "NA", "v2"], END]


def test_token_and_nonfixed_accuracy_by_hand():
    # wrong: the predicate (not fixed), v2's name (fixed), and the END row left as padding (END not fixed,
    # its four NA fixed): 7 of 20 tokens wrong; of the 9 non-fixed slots, 2 wrong
    predicted = [START, ["Select", "PRED_LT", "tokens", "tokens", "v1"], ["SelectorWidth", "v1", "NA", "NA", "v3"],
                 ["PAD"] * 5, ["PAD"] * 5]
    assert token_accuracy(TRUE, predicted) == pytest.approx(13 / 20)
    assert nonfixed_accuracy(TRUE, predicted) == pytest.approx(7 / 9)
    assert token_accuracy(TRUE, [START]) == pytest.approx(5 / 20)  # rows the prediction lacks are wrong
    assert sum(map(sum, fixed_slots(TRUE))) == 11  # START 5, END's NA 4, v1 and v2


def test_threshold_columns_by_hand():
    summary = summarize([1.0, 0.95, 0.65, 0.5, 0.49], prefix="m_")
    assert summary["m_token_accuracy"] == pytest.approx(3.59 / 5)
    assert [summary[f"m_programs_ge_{t}"] for t in (100, 90, 80, 70, 60, 50)] == [0.2, 0.4, 0.4, 0.4, 0.6, 0.8]
    assert summarize([19 / 20])["programs_ge_90"] == 1.0 and summarize([0.7 * 0.9 / 0.9])["programs_ge_70"] == 1.0


def test_majority_baseline_by_hand():
    map_line = ["Map", "LAM_ADD", "tokens", "c:1", "v1"]
    other = [START, map_line, ["Map", "LAM_NE", "v1", "c:2", "v2"], END]
    baseline = MajorityBaseline([TRUE, other, [START, map_line, ["Map", "LAM_SUB", "v1", "c:2", "v2"], END]], rows=5)
    # majorities: row 1 Map LAM_ADD tokens c:1 (2 of 3), row 2 Map v1 c:2 with LAM_NE/LAM_SUB/SelectorWidth's v1
    # tied 1:1:1 -> the first by text, LAM_NE; row 3 END; row 4 padding (no program has 5 rows)
    assert baseline.grid == [START, map_line, ["Map", "LAM_NE", "v1", "c:2", "v2"], END, ["PAD"] * 5]
    # wrong: row 1's op, predicate and c:1 (3), row 2's op and its three argument slots (4); all non-fixed
    assert token_accuracy(TRUE, baseline.grid) == pytest.approx(13 / 20)
    assert nonfixed_accuracy(TRUE, baseline.grid) == pytest.approx(2 / 9)
    # a longer program: the same grid; right are START (5), row 1's tokens and v1 (2), row 2's v2 (1): 8 of 25;
    # of its 13 non-fixed slots only row 1's tokens
    longer = [START, TRUE[1], TRUE[2], ["Map", "LAM_ADD", "v2", "c:1", "v3"], END]
    assert token_accuracy(longer, baseline.grid) == pytest.approx(8 / 25)
    assert nonfixed_accuracy(longer, baseline.grid) == pytest.approx(1 / 13)


def test_accuracy_by_op_by_hand():
    predicted = [START, ["Map", "PRED_EQ", "tokens", "tokens", "v1"], ["SelectorWidth", "v1", "NA", "NA", "v2"], END]
    rows = {r["op"]: r for r in accuracy_by_op([TRUE], [predicted])}
    assert rows["Select"] == {"op": "Select", "lines": 1, "op_accuracy": 0.0, "line_token_accuracy": 0.8}
    assert rows["SelectorWidth"]["op_accuracy"] == 1.0 and rows["SelectorWidth"]["line_token_accuracy"] == 1.0


@pytest.fixture(scope="module")
def worker():
    with CompileWorker(timeout_s=60) as w:
        yield w


def test_functional_check_tells_equal_different_and_invalid(worker):
    program = Program(["a", "b", "c"], 5, [Line("Select", "PRED_EQ", ("tokens", "tokens"), "s"),
                                            Line("SelectorWidth", None, ("s",), "w")])
    grid = encode(program)
    pid = program_hash(grid)
    assert functional_check(program, pid, grid, worker).status == "equal"
    same_meaning = [row[:] for row in grid] + [["PAD"] * 5]  # rows after END do not matter
    assert functional_check(program, pid, same_meaning, worker).equal
    lt = [row[:] for row in grid]
    lt[1][1] = "PRED_LT"
    assert functional_check(program, pid, lt, worker).status == "different"
    broken = [row[:] for row in grid]
    broken[2][1] = "v7"  # an argument that does not exist
    assert functional_check(program, pid, broken, worker).status == "invalid"
    assert functional_check(program, pid, grid[:2], worker).status == "invalid"  # no END
    assert not functional_check(program, pid, grid, worker).constant


def test_a_constant_program_is_flagged_and_matched_by_another_constant(worker):
    never = Program([0, 1, 2], 4, [Line("Map", "LAM_GT", ("tokens",), "a", const=5)])  # False everywhere
    other = Program([0, 1, 2], 4, [Line("Map", "LAM_LT", ("indices",), "b", const=0)])  # also False everywhere
    outcome = functional_check(never, program_hash(encode(never)), encode(other), worker)
    assert outcome.constant and outcome.equal


@pytest.mark.parametrize("name", sorted(NAMED_PROGRAMS))
def test_named_programs_compute_what_tracr_lib_computes(name):
    from tracr.rasp import rasp

    program = NAMED_PROGRAMS[name]()
    program.check()
    entry = get_lib_program(name)
    reference = entry.program()
    rng = random.Random(0)
    for _ in range(20):
        tokens = entry.random_input(rng)
        assert program.evaluate(tokens) == rasp.evaluate(reference, tokens), (name, tokens)
