"""Generators: distinct, disjoint splits, balanced labels, bounded lengths, labelled by the reference."""

import re

import pytest

from workbench.tasks import TASKS, get_task, pieces
from workbench.tasks.dyck import is_shuffle_dyck
from workbench.tasks.sum import carries_all_the_way

N = 2000


@pytest.mark.parametrize("name", list(TASKS))
def test_splits_are_distinct_and_disjoint(name):
    task = get_task(name)
    train, test = task.split("train", N, seed=1), task.split("test", N // 4, seed=1)
    assert len({e.prompt for e in train}) == len(train)
    assert len({e.prompt for e in test}) == len(test)
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    other_seed = task.split("train", N // 4, seed=2)
    assert not {e.prompt for e in other_seed} & {e.prompt for e in test}
    assert task.split("test", 50, seed=1) == test[:50]  # deterministic for a seed


@pytest.mark.parametrize("name", list(TASKS))
def test_labels_come_from_the_reference_and_prompts_round_trip(name):
    task = get_task(name)
    for example in task.split("train", 300) + [e for s in task.suites() for e in task.suite(s, 50)]:
        assert example.label == task.reference(example.question)
        assert "".join(pieces(example.text)) == example.text
        assert example.text.startswith(example.prompt) and example.answer.startswith(" ")


def test_dyck_labels_balanced_lengths_bounded_and_near_misses():
    task = get_task("dyck")
    examples = task.split("train", N)
    yes = sum(e.label == "Yes" for e in examples)
    assert 0.45 < yes / N < 0.55
    assert all(1 <= len(e.question) <= 30 and set(e.question) <= set("(){}[]") for e in examples)
    # Unbalanced examples are one edit away from balanced, not noise: most have even length.
    unbalanced = [e.question for e in examples if e.label == "No"]
    same_counts = sum(all(q.count(l) == q.count(r) for l, r in ("()", "{}", "[]")) for q in unbalanced)
    assert same_counts > 0.1 * len(unbalanced)  # wrong order with right counts: the hard case
    assert re.fullmatch(r"Are parentheses here correctly matched\? \S+\.Answer:", examples[0].prompt)


def test_dyck_suites():
    task = get_task("dyck")
    almost = task.suite("almost_balanced", 100)
    assert all(e.label == "No" for e in almost)
    assert all(31 <= len(e.question) <= 90 for e in task.suite("triple_length", 100))
    assert all(set("<>") & set(e.question) for e in task.suite("new_family", 100))


def test_count_bounds_and_suites():
    task = get_task("count")
    examples = task.split("train", N)
    assert all(1 <= len(e.question.split()) <= 40 and set(e.question.split()) <= {"x", "y"} for e in examples)
    assert all("y" in e.question for e in examples)  # x-only strings are reserved for their suite
    assert len({e.label for e in examples}) > 30  # answers cover the range, not just the middle
    x_only = task.suite("x_only", 40)
    assert [e.label for e in x_only] == [str(k) for k in range(1, 41)]
    assert all(41 <= len(e.question.split()) <= 120 for e in task.suite("triple_length", 50))
    assert all("y" not in e.question and "z" in e.question or set(e.question.split()) == {"x"}
               for e in task.suite("y_to_z", 50))


def test_sum_bounds_and_suites():
    task = get_task("sum")
    examples = task.split("train", N)
    assert all(0 <= a <= 450 and 0 <= b <= 450 for a, b in (e.question for e in examples))
    assert all(carries_all_the_way(*e.question) for e in task.suite("cascading_overflow", 100))
    assert all(1000 <= a <= 9999 for a, _ in (e.question for e in task.suite("four_digits", 50)))
    assert all("." in e.prompt for e in task.suite("decimals", 50))


def test_references_on_hand_cases():
    assert is_shuffle_dyck("[]{()}") and is_shuffle_dyck("([)]") and is_shuffle_dyck("")
    assert not is_shuffle_dyck(")(") and not is_shuffle_dyck("(()") and not is_shuffle_dyck("<(>")
    assert get_task("dyck").make("[]{()}").text == "Are parentheses here correctly matched? []{()}.Answer: Yes"
    assert get_task("count").make("x y x x y".split()).text == \
        "What is the number of 'X' in this text? x y x x y. Answer: 3"
    sum_task = get_task("sum")
    assert sum_task.make(211, 123).text == "211 + 123 = 334"
    assert sum_task.reference(("12.5", "3.25")) == "15.75" and sum_task.reference(("0.5", "0.5")) == "1"
    assert carries_all_the_way(299, 1) and carries_all_the_way(99, 1) and not carries_all_the_way(211, 123)
