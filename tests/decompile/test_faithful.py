"""Compile + faithfulness check: the craft model against RASP evaluation, per-program timeout and memory cap."""

import subprocess
import sys

import numpy as np

from workbench.decompile.faithful import (CompileWorker, CraftForward, compile_and_check, compile_craft,
                                          craft_input, craft_outputs, random_inputs)
from workbench.decompile.generator import GeneratorConfig, generate
from workbench.decompile.program import Line, Program

HIST = Program(["a", "b", "c"], 5, [Line("Select", "PRED_EQ", ("tokens", "tokens"), "same"),
                                    Line("SelectorWidth", None, ("same",), "hist")])


def _width(max_seq_len):
    return Program(["a"], max_seq_len, [Line("Select", "PRED_TRUE", ("tokens", "tokens"), "all"),
                                        Line("SelectorWidth", None, ("all",), "n")])


def test_a_faithful_program_is_kept_with_its_craft_weights_in_forward_order():
    result = compile_and_check(HIST, n_inputs=8, seed=0)
    assert result.status == "ok", result.detail
    assert [kind for kind, _ in result.weights] == ["w_qk", "w_ov", "fst", "snd"]  # head, then the MLP
    assert result.layer_types == ["HEAD", "MLP"] and result.n_layers == 1
    craft, basis = compile_craft(HIST)
    assert craft_outputs(craft, basis, list("abcab")) == [2, 2, 1, 2, 2]


def test_a_categorical_mean_is_unfaithful():
    """RASP averages the selected values; the compiled categorical Aggregate mixes their one-hots."""
    program = Program([0, 1, 2], 4, [Line("Select", "PRED_TRUE", ("tokens", "tokens"), "all"),
                                     Line("Aggregate", None, ("all", "indices"), "mean")])
    result = compile_and_check(program, n_inputs=4, seed=0)
    assert result.status == "unfaithful" and "RASP" in result.detail and not result.weights


def test_a_program_rasp_cannot_evaluate_is_rejected_before_compiling(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled although RASP's evaluation already fails")

    monkeypatch.setattr("workbench.decompile.faithful.compile_craft", no_compile)
    program = Program(["a", "b"], 4, [Line("Select", "PRED_TRUE", ("tokens", "tokens"), "all"),
                                      Line("Aggregate", None, ("all", "tokens"), "mean")])  # a mean of strings
    result = compile_and_check(program, n_inputs=4, seed=0)
    assert result.status == "unfaithful" and "RASP undefined" in result.detail


def test_a_selector_width_at_max_seq_len_is_unfaithful_in_tracr():
    """Found by the check: with max_seq_len 10, a selector of width 10 decodes as 9 (tracr's width MLP)."""
    assert compile_and_check(_width(5), n_inputs=4, seed=0).status == "ok"
    result = compile_and_check(_width(10), n_inputs=4, seed=0)
    assert result.status == "unfaithful" and "compiled [9" in result.detail


def test_causal_compilation_is_checked_against_causal_evaluation():
    program = _width(6)
    assert program.evaluate(["a"] * 4, causal=True) == [1, 2, 3, 4]
    assert compile_and_check(program, causal=True, n_inputs=6, seed=0).status == "ok"
    craft, basis = compile_craft(program, causal=True)
    assert craft_outputs(craft, basis, ["a"] * 4) == [1, 2, 3, 4]


def test_craft_outputs_equal_the_assembled_hooked_transformer():
    """The numpy craft run agrees with the project's exact tracr -> HookedTransformer conversion."""
    from workbench.compiled import compile_program

    checked = 0
    for index in range(40):
        program = generate(GeneratorConfig(max_seq_len=6, vocab_max=4), 8, index)
        if compile_and_check(program, n_inputs=4, seed=0, max_weight_tokens=40).status != "ok":
            continue
        try:
            model = compile_program(program.to_rasp(), set(program.vocab), program.max_seq_len)
        except Exception:  # the assembler's own limits (thesis §6.1): not what this test is about
            continue
        craft, basis = compile_craft(program)
        for tokens in (program.vocab[:1] * 6, (program.vocab * 6)[:5]):
            assert craft_outputs(craft, basis, tokens) == model.run(tokens), (index, tokens)
        checked += 1
        break
    assert checked == 1


def test_the_fast_craft_forward_is_tracrs_apply_bit_for_bit():
    """On generated programs of every op (the thesis's settings, causal and not), the residual after the
    last block equals tracr's ``craft_model.apply`` exactly, BOS and padding directions included."""
    from tracr.craft import bases

    from workbench.tracr_craft import fast_craft

    compared, causal_compared = 0, 0
    for index in range(60):
        program = generate(GeneratorConfig(), 3, index)
        causal = index % 2 == 1
        try:
            craft, basis = compile_craft(program, causal)
        except Exception:
            continue
        if craft.residual_space.num_dims > 150:  # tracr's own apply takes minutes on the largest
            continue
        forward = CraftForward(craft, basis)
        for tokens in random_inputs(program, 3, seed=index):
            with fast_craft():  # tracr's apply with its O(d) one-hots (the same vectors, tested in compiled/)
                rows = craft_input(craft.residual_space.index_by_direction, tokens)
                expected = craft.apply(bases.VectorInBasis(craft.residual_space.basis, rows))
            assert np.array_equal(forward.residual(tokens), expected.magnitudes), (index, tokens)
        compared += 1
        causal_compared += causal
    assert compared >= 12 and causal_compared >= 4, (compared, causal_compared)


# Large SequenceMap MLPs: tens of milliseconds of CPU to compile, above /proc's 10 ms resolution
# (HIST now compiles within one tick, so a timeout could not be seen on it).
WIDE = Program(list(range(10)), 10, [Line("Map", "LAM_MUL", ("tokens",), "a", 3.37),
                                     Line("SequenceMap", "LAM_MUL", ("a", "indices"), "b"),
                                     Line("SequenceMap", "LAM_ADD", ("b", "a"), "c")])


def test_the_worker_times_out_kills_and_recovers():
    with CompileWorker(timeout_s=0.001, memory_mb=0) as worker:
        assert worker.compile(WIDE).status == "timeout"
        worker.timeout_s = 120
        assert worker.compile(HIST, n_inputs=4).status == "ok"  # a fresh child after the kill


def test_the_memory_cap_is_applied_and_a_failure_counts_as_memory():
    """A cap below what the child already holds: its next allocation fails, the program is rejected
    for memory (not a timeout, not a crash of the caller), and the next child runs normally."""
    with CompileWorker(timeout_s=120, memory_mb=1) as worker:
        assert worker.compile(WIDE).status == "memory"  # MLPs of megabytes
        worker.memory_mb = 0
        assert worker.compile(HIST, n_inputs=4).status == "ok"


def test_importing_the_callers_main_script_is_not_charged_to_a_program(tmp_path):
    """A worker's child imports the parent's ``__main__`` first (forkserver); a script that spends CPU
    there (as one importing torch does) must not time out a program that compiles well inside its budget."""
    script = tmp_path / "slow_main.py"
    script.write_text(
        "import time\n"
        "start = time.process_time()\n"
        "while time.process_time() - start < 3:  # 3 CPU-seconds of imports, in the parent and in each child\n"
        "    pass\n"
        "if __name__ == '__main__':\n"
        "    from workbench.decompile.faithful import CompileWorker\n"
        "    from workbench.decompile.program import Line, Program\n"
        "    program = Program(['a', 'b', 'c'], 5, [Line('Select', 'PRED_EQ', ('tokens', 'tokens'), 'same'),\n"
        "                                         Line('SelectorWidth', None, ('same',), 'hist')])\n"
        "    with CompileWorker(timeout_s=2, memory_mb=0) as worker:\n"
        "        print(worker.compile(program, n_inputs=4).status)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout + done.stderr
