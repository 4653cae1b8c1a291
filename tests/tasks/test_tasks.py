"""Each task's compiled program answers like the Python reference, on the test split and the suites."""

import pytest

from workbench.tasks import TASKS, get_task, pieces
from workbench import WorkbenchError

N_TEST = 1000
N_SUITE = 200


@pytest.fixture(scope="module", params=list(TASKS))
def task_and_model(request):
    task = get_task(request.param)
    return task, task.compile()


def _accuracy(task, compiled, examples):
    answers = task.compiled_answers(compiled, examples)
    wrong = [(e.text, a) for e, a in zip(examples, answers) if a != e.label]
    return 1 - len(wrong) / len(examples), wrong


def test_program_is_exact_on_the_test_split(task_and_model):
    task, compiled = task_and_model
    accuracy, wrong = _accuracy(task, compiled, task.split("test", N_TEST))
    assert accuracy == 1.0, wrong[:5]


def test_supported_suites_are_exact_and_unsupported_are_reported(task_and_model):
    task, compiled = task_and_model
    for name, suite in task.suites().items():
        examples = task.suite(name, N_SUITE)
        accuracy, wrong = _accuracy(task, compiled, examples)
        print(f"{task.name}/{name}: compiled accuracy {accuracy:.1%} on {len(examples)} "
              f"({'supported' if suite.supported else 'unsupported: ' + suite.why})")
        if suite.supported:
            assert accuracy == 1.0, wrong[:5]
        else:
            assert wrong, f"{name} is marked unsupported but the compiled program solves all of it"


def test_program_fits_the_models(task_and_model):
    task, compiled = task_and_model
    assert compiled.causal
    assert compiled.n_layers <= 12  # GPT-2 small can host it (and the 30-block default model)


def test_answer_is_read_where_the_model_predicts_it():
    task = get_task("count")
    example = task.make(list("xxyxxxxxxxxxxyy"))  # 12 x: two answer digits
    assert example.answer == " 12"
    positions = task.answer_positions(example)
    view = task.compiled_tokens(pieces(example.text))
    assert [view[p] for p in positions] == ["answer", "1"]  # ':' predicts '1', '1' predicts '2'
    assert task.compiled_answers(task.compile(), [example]) == ["12"]


def test_unknown_names_are_clear_errors():
    with pytest.raises(WorkbenchError, match="unknown task 'nope'; available: dyck, count, sum"):
        get_task("nope")
    with pytest.raises(WorkbenchError, match="unknown suite 'nope' for task sum; available: cascading_overflow"):
        get_task("sum").suite("nope", 3)
    with pytest.raises(WorkbenchError, match="unknown split"):
        get_task("sum").split("validation", 3)
