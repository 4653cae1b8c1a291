"""Alignment round trips for both tokenizers over every generator of every task."""

import pytest

from workbench import WorkbenchError
from workbench.align import align, batch, compiled_answer
from workbench.models import adapt_tokenizer, gpt2_tokenizer, smollm2_tokenizer
from workbench.tasks import TASKS, get_task

N = 60
SINGLE = set("0123456789()[]{}<>")


@pytest.fixture(scope="module", params=["gpt2", "smollm2"])
def tokenizer(request):
    return adapt_tokenizer({"gpt2": gpt2_tokenizer, "smollm2": smollm2_tokenizer}[request.param]())


@pytest.fixture(scope="module")
def compiled_tasks():
    return {name: task.compile() for name, task in TASKS.items()}


def _groups(task):
    yield "train", True, task.split("train", N)
    yield "test", True, task.split("test", N)
    for name, suite in task.suites().items():
        yield name, suite.supported, task.suite(name, N)


@pytest.mark.parametrize("name", list(TASKS))
def test_round_trip_every_generator(name, tokenizer, compiled_tasks):
    task, compiled = get_task(name), compiled_tasks[name]
    for group, supported, examples in _groups(task):
        for example in examples:
            try:
                alignment = align(task, example, tokenizer)
            except WorkbenchError as error:  # only the 3x-length suites may exceed the compiled context
                assert group == "triple_length" and "compiled" in str(error) and "context" in str(error)
                continue
            assert alignment.model_ids[0] == tokenizer.bos_token_id
            assert alignment.compiled_tokens[0] == task.filler_token
            ids = alignment.model_ids[1:]
            assert tokenizer.decode(ids) == example.text
            assert tokenizer.decode(alignment.model_ids[alignment.n_prompt:]) == example.answer
            for token in alignment.model_tokens[1:]:
                if set(token) & SINGLE:
                    assert len(token.strip()) == 1, (group, token)
            assert len(alignment.compiled_tokens) == len(alignment.model_ids)
            if supported:
                assert compiled_answer(task, compiled, alignment) == example.label, (group, example.text)


def test_batch_lines_up_compiled_bos_first(tokenizer, compiled_tasks):
    task = get_task("sum")
    alignments = [align(task, e, tokenizer) for e in task.split("test", 4)]
    model_ids, compiled_ids, mask = batch(alignments, compiled_tasks["sum"], pad_id=0)
    bos = compiled_tasks["sum"].input_vocab.index(compiled_tasks["sum"].bos)
    assert (compiled_ids[:, 0] == bos).all() and compiled_ids.shape[1] == model_ids.shape[1] + 1
    assert mask.sum(1).tolist() == [len(a) for a in alignments]


def test_unalignable_prompts_are_clear_errors(tokenizer):
    task = get_task("dyck")
    with pytest.raises(WorkbenchError, match=r"token '( )?\[\]' merges a character the dyck program reads"):
        align(task, task.make("[]{()}"), gpt2_tokenizer())  # not adapted: '[]' is one token
    long = task.make("()" * 40)
    with pytest.raises(WorkbenchError, match=r"prompt is \d+ model tokens but the compiled dyck program has a "
                                             r"context of 48"):
        align(task, long, tokenizer)
    sum_task = get_task("sum")
    weird = sum_task.make(1, 2)
    weird = type(weird)("1 \U0001F99C+ 2 =", " 3", (1, 2))
    with pytest.raises(WorkbenchError, match="cannot be aligned"):
        align(sum_task, weird, tokenizer)


@pytest.mark.parametrize("name", list(TASKS))
def test_appended_end_token_is_one_more_answer_token_and_changes_no_program_answer(name, tokenizer,
                                                                                   compiled_tasks):
    task, compiled = get_task(name), compiled_tasks[name]
    for example in task.split("train", 20, seed=7):
        plain = align(task, example, tokenizer, compiled.max_seq_len)
        ended = align(task, example, tokenizer, compiled.max_seq_len, append_end=True)
        assert ended.model_ids == plain.model_ids + [tokenizer.eos_token_id]
        assert ended.compiled_tokens == plain.compiled_tokens + [task.filler_token]
        assert ended.answer_positions == plain.answer_positions
        assert ended.answer_token_positions == plain.answer_token_positions + [len(plain)]
        assert compiled_answer(task, compiled, ended) == compiled_answer(task, compiled, plain) == example.label
