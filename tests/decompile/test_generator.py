"""The random program generator (thesis §4): op weights, scope weights, pruning, seeding, defaults."""

import collections

import numpy as np
import pytest
from scipy.stats import chisquare

from workbench.decompile.generator import (
    GeneratorConfig,
    depths,
    draw_lines,
    draw_op,
    generate,
    generate_with_stats,
    prune,
    rng_for,
    scope_weights,
)
from workbench.decompile.program import OP_WEIGHTS, OPS
from workbench.errors import WorkbenchError


def _chi2(counts, weights):
    observed = np.array([counts[op] for op in OPS], dtype=float)
    expected = np.array([weights[op] for op in OPS], dtype=float)
    return chisquare(observed, expected / expected.sum() * observed.sum()).pvalue


def test_op_distribution_matches_the_thesis_weights_on_10000_draws():
    rng = rng_for(123, 0)
    counts = collections.Counter(draw_op(rng, has_selector=True) for _ in range(10_000))
    assert _chi2(counts, OP_WEIGHTS) > 0.01, counts
    # the test has the power to see a wrong distribution: equal weights are rejected outright
    assert _chi2(counts, {op: 1 for op in OPS}) < 1e-6


def test_raw_programs_draw_ops_with_the_thesis_weights():
    """In generated programs: once a selector exists (and before the last op) ops follow 4/3/2/2/2."""
    config, counts = GeneratorConfig(), collections.Counter()
    for index in range(800):
        rng = rng_for(7, index)
        lines = draw_lines(rng, list(range(5)), config)
        first_select = next((i for i, line in enumerate(lines) if line.op == "Select"), len(lines))
        counts.update(line.op for line in lines[first_select + 1:-1])
    assert sum(counts.values()) > 5000
    assert _chi2(counts, OP_WEIGHTS) > 0.01, counts


def test_selector_ops_wait_for_a_selector_and_the_last_op_returns_an_sop():
    rng = rng_for(0, 0)
    assert {draw_op(rng, has_selector=False) for _ in range(500)} == {"Map", "Select", "SequenceMap"}
    assert "Select" not in {draw_op(rng, has_selector=True, last=True) for _ in range(500)}
    for index in range(200):
        lines = draw_lines(rng_for(1, index), ["t0", "t1"], GeneratorConfig())
        assert lines[-1].op != "Select"
        first_select = next(i for i, line in enumerate(lines + [None]) if line is None or line.op == "Select")
        assert all(line.op not in ("Aggregate", "SelectorWidth") for line in lines[:first_select])


def test_later_variables_are_preferred_with_the_thesis_weights():
    assert scope_weights(9) == [1, 1, 1, 2, 4, 7, 11, 16, 22]
    # the most recent variable is picked about as often as its weight says
    config, picks = GeneratorConfig(n_ops=6, min_length=1), collections.Counter()
    for index in range(3000):
        lines = draw_lines(rng_for(3, index), list(range(4)), config)
        if lines[1].op == "Map" and lines[1].fn in ("LAM_LT", "LAM_LE", "LAM_GT", "LAM_GE", "LAM_NE", "LAM_EQ",
                                                    "LAM_IV"):
            picks[lines[1].args[0]] += 1  # comparison Map: any SOp; scope tokens, indices, v1 (if an SOp)
    if picks["v1"]:
        share = picks["v1"] / sum(picks.values())
        assert 0.2 < share < 0.55, picks  # weights 1, 1, 2 -> v1 one half when v1 is an SOp, else absent


def test_programs_are_pruned_to_the_ancestors_of_the_deepest_sop():
    config = GeneratorConfig()
    for index in range(100):
        program = generate(config, 11, index)
        program.check()
        assert len(program) >= config.min_length
        used = {a for line in program.lines for a in line.args}
        assert all(line.out in used for line in program.lines[:-1])  # every line feeds the output
        depth = depths(program.lines)
        assert depth[program.output] == max(depth.values())


def test_prune_keeps_the_longest_path_and_merges_identical_lines():
    from workbench.decompile.program import Line

    lines = [Line("Map", "LAM_ADD", ("indices",), "a", 1), Line("Map", "LAM_ADD", ("indices",), "b", 1),
             Line("SequenceMap", "LAM_SUB", ("a", "b"), "c"), Line("Map", "LAM_LT", ("tokens",), "d", 3),
             Line("Select", "PRED_EQ", ("c", "c"), "e")]
    kept = prune(lines)  # the Select is deepest but not an SOp: c ends the longest SOp path; d is dropped
    assert [line.out for line in kept] == ["a", "c"] and kept[1].args == ("a", "a")


def test_the_same_seed_and_index_give_the_same_program_and_others_differ():
    config = GeneratorConfig()
    first = [generate(config, 42, i).to_json() for i in range(20)]
    assert first == [generate(config, 42, i).to_json() for i in range(20)]
    assert first[5] == generate(config, 42, 5).to_json()  # independent of which indices were drawn before
    assert len(set(first)) == 20
    assert first != [generate(config, 43, i).to_json() for i in range(20)]


def test_thesis_era_defaults_and_options():
    config = GeneratorConfig()
    assert (config.n_ops, config.min_length, config.vocab_min, config.vocab_max, config.max_seq_len) == (15, 7, 1, 10,
                                                                                                       10)
    programs = [generate_with_stats(config, 5, i) for i in range(400)]
    numeric = sum(d.program.numeric_inputs for d in programs)
    assert 150 < numeric < 250  # numeric or categorical inputs 50/50
    assert {len(d.program.vocab) for d in programs} == set(range(1, 11))
    assert sum(d.too_short for d in programs) > 0  # rejection sampling happened
    short = GeneratorConfig(n_ops=6, min_length=2, vocab_min=3, vocab_max=3, max_seq_len=5, numeric_share=1.0)
    program = generate(short, 0, 0)
    assert program.vocab == [0, 1, 2] and program.max_seq_len == 5 and 2 <= len(program) <= 6


@pytest.mark.parametrize("bad", [dict(n_ops=0), dict(min_length=20), dict(vocab_min=0), dict(numeric_share=2.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(WorkbenchError, match="generator setting"):
        GeneratorConfig(**bad)
