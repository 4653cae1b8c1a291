"""The paper's Algorithm 1 (task ``dyck-paper``): same outputs and variables as the paper's program
compiled with plain tracr, Figure 6 reproduced cell by cell, and a cold compile within a minute."""

import random
import re
import time

import pytest
from tracr.rasp import rasp

from workbench.compiled import compile_program
from workbench.decode import compiled_table, decode_variables
from workbench.decode.views import view_compiled
from workbench.inject.hooks import compiled_hook
from workbench.tasks import get_task, programs
from workbench.tasks.dyck import is_shuffle_dyck

# Figure 6 of the paper (seed 000), as printed: variables × the 15 columns of
# "Are parentheses here correctly matched? [()]. Answer:" (model tokens in the header).
FIGURE_6 = """\
	Are	parent	hesis	here	correctly	matched	?		[	(	]	)		Answer	:
()_diffs_39	0	0	0	0	0	0	0	0	0	1	1	0	0	0	0
()_negative_counters_36	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
()_negative_counters_36_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
(_start_counts_45	0	0	0	0	0	0	0	0	0	1	1	1	1	1	1
(_start_counts_45_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
)_end_counts_46	0	0	0	0	0	0	0	0	0	0	0	1	1	1	1
)_end_counts_46_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
[]_diffs_35	0	0	0	0	0	0	0	0	1	1	0	0	0	0	0
[]_negative_counters_33	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
[]_negative_counters_33_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
[_start_counts_41	0	0	0	0	0	0	0	0	1	1	1	1	1	1	1
[_start_counts_41_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
[_end_counts_42	0	0	0	0	0	0	0	0	0	0	1	1	1	1	1
[_end_counts_42_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
aggregated_diffs_31	0	0	0	0	0	0	0	0	1	1	1	0	0	0	0
aggregated_diffs_tmp_0_34	0	0	0	0	0	0	0	0	0	1	1	0	0	0	0
aggregated_negatives_30	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
final_result_28	False	False	False	False	False	False	False	False	False	False	False	False	False	False	True
indices	0	1	2	3	4	5	6	7	8	9	10	11	12	13	16
one	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
sequence_map_32	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
tokens									[	(	]	)			compute
unfiltered_result_29	True	True	True	True	True	True	True	True	False	False	False	True	True	True	True
{_start_counts_47	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
{_start_counts_47_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
{_diffs_40	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
{_negative_counters_37	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
{_negative_counters_37_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
}_end_counts_48	0	0	0	0	0	0	0	0	0	0	0	0	0	0	0
}_end_counts_48_selector_width_attn_output	True	True	True	True	True	True	True	True	True	True	True	True	True	True	True
"""

# Figure 6 labels that name another variable of the same program: its "[_end_counts" counts
# "]" (the row rises at the "]" column), "{_diffs" / "{_negative_counters" are the {} family's,
# and "sequence_map_32" is tracr's default label of the unnamed first combination of the
# negative counters (Figure 6 itself names its diffs counterpart "aggregated_diffs_tmp_0").
FIGURE_NAMES = {"[_end_counts": "]_end_counts", "{_diffs": "{}_diffs", "{_negative_counters": "{}_negative_counters",
                "sequence_map": "aggregated_negatives_tmp_0"}
SELECTOR_WIDTH = "_selector_width_attn_output"


def base_name(label: str) -> str:
    """A tracr label without its global uid: "(_start_counts_45" → "(_start_counts"."""
    return re.sub(r"_\d+(?=(%s)?$)" % SELECTOR_WIDTH, "", label)


def _cell(text: str):
    return {"True": True, "False": False}.get(text, int(text) if text.isdigit() else text)


def figure_6() -> tuple[list[str], dict[str, list]]:
    header, *lines = FIGURE_6.splitlines()
    rows = {}
    for line in lines:
        name, *cells = line.split("\t")
        rows[base_name(name)] = [_cell(c) for c in cells]
    return header.split("\t")[1:], rows


def paper_as_written(pairs=programs.DYCK_PAIRS):
    """Algorithm 1 as the paper writes it (and its public code: compile_model/compile_dyck.py),
    with Figure 6's names: the reference that the task's program must reproduce."""
    all_diffs, all_negs = [], []
    for left, right in pairs:
        starts = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q, s=left: k == s))
        ends = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q, s=right: k == s))
        diffs = (starts.named(f"{left}_start_counts") - ends.named(f"{right}_end_counts")).named(f"{left}{right}_diffs")
        all_diffs.append(diffs)
        negs = rasp.SelectorWidth(rasp.Select(diffs, rasp.tokens, lambda k, q: k < 0))
        all_negs.append(negs.named(f"{left}{right}_negative_counters"))

    def combine(values, name):
        current = values[0]
        for index, value in enumerate(values[1:]):
            current = rasp.SequenceMap(lambda x, y: 1 if (x != 0 or y != 0) else 0, current, value).named(
                name if index == len(values) - 2 else f"{name}_tmp_{index}")
        return current

    result = rasp.SequenceMap(lambda x, y: x == 0 and y == 0, combine(all_negs, "aggregated_negatives"),
                              combine(all_diffs, "aggregated_diffs")).named("unfiltered_result")
    return rasp.SequenceMap(lambda x, t: x if t == programs.ANSWER else False, result, rasp.tokens
                            ).named("final_result")


VOCAB = {*"(){}[]", programs.FILLER, programs.ANSWER}


def _exactness(max_seq_len):
    return 4 * (max_seq_len + 2) ** 2  # as Task.mlp_exactness: SelectorWidth exact up to max_seq_len


def _random_inputs(rng, n, max_len):
    inputs = []
    for _ in range(n):
        length = rng.randint(1, max_len)
        alphabet = rng.choice(["(){}[]", "()", "(_)", "([", "_answer"])
        tokens = [rng.choice(["answer", "_"] if alphabet == "_answer" else list(alphabet)) for _ in range(length)]
        for _ in range(rng.randint(0, 2)):
            tokens[rng.randrange(length)] = programs.ANSWER
        inputs.append(tokens)
    inputs += [["("] * max_len, [")"] * max_len, list("()" * max_len)[:max_len], [programs.ANSWER] * max_len]
    return inputs


def _rows(compiled, table):
    """A decoded table by variable base name; a numerical variable (the counts) as the integer it holds."""
    rows = {}
    for name, row in table.iterrows():
        if compiled.is_numerical(name) and name not in ("one",) and not name.endswith(SELECTOR_WIDTH):
            assert all(abs(v - round(v)) < 1e-2 for v in row), (name, list(row))
            row = [round(v) for v in row]
        rows[base_name(name)] = list(row)
    return rows


def _decoded(compiled, tokens):
    """Final residual decoded by variable base name (the compiled program's own values)."""
    residual = compiled.residuals(tokens)[compiled_hook(compiled.n_layers, compiled.n_layers)][1:]
    return _rows(compiled, decode_variables(compiled, residual, tokens))


@pytest.fixture(scope="module")
def task_and_model():
    task = get_task("dyck-paper")
    wall, cpu = time.perf_counter(), time.process_time()
    compiled = task.compile()  # the session's own empty cache: a cold compile
    return task, compiled, (time.perf_counter() - wall, time.process_time() - cpu)


def test_same_outputs_and_variables_as_the_paper_program_under_plain_tracr():
    """The paper's program compiled by tracr itself (its own basis-vector code, its JAX model) vs
    the task's program as the task compiles it, at a length where plain tracr is quick."""
    n = 10
    paper = compile_program(paper_as_written(), VOCAB, n, causal=True, mlp_exactness=_exactness(n), fast=False)
    ours = compile_program(programs.shuffle_dyck_paper(), VOCAB, n, causal=True, mlp_exactness=_exactness(n))
    paper_variables = {base_name(v) for v in paper.variables} - {"indices", "one", "tokens"}
    paper_variables = {v for v in paper_variables if not v.endswith(SELECTOR_WIDTH)}
    assert paper_variables <= {base_name(v) for v in ours.variables}
    inputs = _random_inputs(random.Random("dyck-paper:plain"), 200, n)
    for tokens in inputs[-2:] + inputs[:2]:  # tracr's own JAX model (about 1 s a call)
        assert ours.run(tokens) == paper.tracr.assembled.apply([paper.bos, *tokens]).decoded[1:], tokens
    # all of them through the bridge, exact w.r.t. tracr's model (tests/compiled/test_bridge.py)
    assert ours.run_batch(inputs) == paper.run_batch(inputs)
    for tokens in inputs:
        mine, theirs = _decoded(ours, tokens), _decoded(paper, tokens)
        for variable in paper_variables:
            assert mine[variable] == theirs[variable], (variable, tokens)
    # the semantics, in Python: the answer position says whether the prefix is shuffle-dyck
    for tokens in inputs:
        brackets = ["".join(t for t in tokens[:i + 1] if t in "(){}[]") for i in range(len(tokens))]
        expected = [t == programs.ANSWER and is_shuffle_dyck(b, programs.DYCK_PAIRS) for t, b in zip(tokens, brackets)]
        assert ours.run(tokens) == expected, tokens


def test_cold_compile_within_a_minute_and_cached_load_within_a_second(task_and_model):
    """Times are CPU seconds of this process (wall time printed too): the machine may be shared."""
    task, compiled, (cold_wall, cold) = task_and_model
    wall, cpu = time.perf_counter(), time.process_time()
    task.compile()
    cached_wall, cached = time.perf_counter() - wall, time.process_time() - cpu
    cfg = compiled.model.cfg
    print(f"dyck-paper at max_seq_len {task.max_seq_len}: cold compile {cold:.1f} s CPU ({cold_wall:.1f} s wall), "
          f"cached load {cached:.2f} s CPU ({cached_wall:.2f} s wall), {cfg.n_layers} blocks, residual {cfg.d_model}, "
          f"MLP {cfg.d_mlp}, {cfg.n_heads} heads")
    assert task.max_seq_len == 48
    assert cold <= 60
    assert cached <= 1
    assert compiled.n_layers == 8  # the paper's 7 + 1: numerical counts, then categorical diffs
    assert base_name(compiled.output_variable) == "final_result"


def test_figure_6_cell_by_cell(task_and_model):
    """Figure 6's own compiled-token row through the compiled program: every row of a variable the
    program defines equals the figure, cell by cell (under the names FIGURE_NAMES maps)."""
    _, compiled, _ = task_and_model
    header, figure = figure_6()
    tokens = [{"": programs.FILLER, "compute": programs.ANSWER}.get(t, t) for t in figure["tokens"]]
    assert len(tokens) == len(header) == 15
    ours = _rows(compiled, compiled_table(compiled, tokens))
    compared = []
    for name, cells in figure.items():
        if name.endswith(SELECTOR_WIDTH) or name in ("indices", "one", "tokens"):
            continue
        mine = ours[FIGURE_NAMES.get(name, name)]
        assert mine == cells, (name, mine, cells)
        compared.append(name)
    # 6 counts, 3 diffs, 3 negative counters, 2 + 2 aggregates (one is sequence_map), 2 results
    assert len(compared) == 18
    assert ours["tokens"] == tokens and ours["one"] == [1.0] * 15
    # Differences the paper's table cannot avoid, stated as facts:
    # (1) indices: 15 consecutive positions have consecutive indices, 0..14 (RASP's indices; the
    #     compiler's BOS is not one of them). The figure's agree up to 13, then jump to 16 at ":".
    assert ours["indices"] == list(range(15))
    assert figure["indices"][:14] == ours["indices"][:14] and figure["indices"][14] == 16
    # (2) the *_selector_width_attn_output rows are tracr's auxiliary 1-dim direction holding
    #     1/(w+1) for a selector of width w (not a program variable, so the table leaves it out);
    #     the figure prints True for it at every position, i.e. only "non-zero".
    residual = compiled.residuals(tokens)[compiled_hook(compiled.n_layers, compiled.n_layers)][1:]
    widths = decode_variables(compiled, residual, tokens, [v for v in compiled.variables if v.endswith(SELECTOR_WIDTH)])
    assert len(widths) == len([name for name in figure if name.endswith(SELECTOR_WIDTH)]) == 9
    for name, row in widths.iterrows():
        counted = ours[base_name(name).removesuffix(SELECTOR_WIDTH)]
        assert list(row) == [pytest.approx(1 / (w + 1), abs=1e-3) for w in counted], name
    assert all(cells == [True] * 15 for name, cells in figure.items() if name.endswith(SELECTOR_WIDTH))
    # (3) the caption's prompt has "[()]" but the figure's token row and every value in it are
    #     those of "[(])" (the ")" and "]" columns are swapped): the caption's prompt gives other diffs.
    assert header[8:12] == ["[", "(", "]", ")"]
    caption = _rows(compiled, compiled_table(compiled, tokens[:8] + list("[()]") + tokens[12:]))
    assert caption["()_diffs"][8:12] == [0, 1, 0, 0] and figure["()_diffs"][8:12] == [0, 1, 1, 0]
    assert caption["final_result"][-1] is True  # both are balanced


def test_figure_6_prompt_through_the_task(task_and_model):
    """`workbench decode --compiled dyck-paper` on the figure's prompt in the task's format: the
    bracket and answer columns equal the figure's; the words before them read as filler (the
    task cuts the prompt into 6 pieces before "[", the figure's tokenizer into 8)."""
    task, compiled, _ = task_and_model
    _, figure = figure_6()
    view = view_compiled(task, compiled, "Are parentheses here correctly matched? [(]).Answer:")
    assert view.tokens == [programs.FILLER] * 6 + list("[(])") + [programs.FILLER] * 2 + [programs.ANSWER]
    ours = _rows(compiled, view.tables[-1])
    for name, cells in figure.items():
        if name.endswith(SELECTOR_WIDTH) or name in ("indices", "one", "tokens"):
            continue
        # the figure's columns 6-7 ("?", " ") are filler like the columns before them
        assert ours[FIGURE_NAMES.get(name, name)] == cells[:6] + cells[8:], name
    assert task.compiled_answers(compiled, [task.make("[(])")]) == ["Yes"]


def test_task_is_selectable_and_answers_like_the_reference(task_and_model):
    task, compiled, _ = task_and_model
    assert task.name == "dyck-paper" and task.algorithm == "paper" and get_task("dyck").algorithm == "prefix"
    for examples in (task.split("test", 200), task.suite("almost_balanced", 200)):
        answers = task.compiled_answers(compiled, examples)
        assert answers == ["Yes" if is_shuffle_dyck(e.question) else "No" for e in examples]
