"""Generators: distinct, disjoint splits, balanced labels, bounded lengths, labelled by the reference."""

import re
from decimal import Decimal

import pytest

from workbench import WorkbenchError
from workbench.tasks import TASKS, get_task, pieces
from workbench.tasks.count import CountX
from workbench.tasks.dyck import ShuffleDyck, is_shuffle_dyck
from workbench.tasks.sum import carries_all_the_way, cascading_overflow_pairs

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


def test_dyck_default_is_the_papers_half_balanced_half_random_incorrect():
    task = get_task("dyck")
    assert task.distribution == "paper"
    examples = task.split("train", N)
    yes = [e.question for e in examples if e.label == "Yes"]
    no = [e.question for e in examples if e.label == "No"]
    assert 0.45 < len(yes) / N < 0.55
    assert all(5 <= len(q) <= 30 and set(q) <= set("(){}[]") for q in yes + no)
    assert all(is_shuffle_dyck(q) for q in yes) and not any(is_shuffle_dyck(q) for q in no)
    # The negatives are uniform random strings, not near misses: odd lengths are as common as even
    # ones, every length 5..30 occurs, and each bracket is about 1/6 of the characters.
    assert 0.4 < sum(len(q) % 2 for q in no) / len(no) < 0.6
    assert {len(q) for q in no} == set(range(5, 31))
    chars = "".join(no)
    assert all(abs(chars.count(c) / len(chars) - 1 / 6) < 0.02 for c in "(){}[]")
    assert {len(q) for q in yes} == set(range(6, 31, 2))  # 3..15 pairs, as the paper's code rounds sizes up


def test_dyck_near_miss_option_labels_balanced_lengths_bounded_and_near_misses():
    task = ShuffleDyck("near_miss")
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
    for example in almost:  # the defining property on every prompt: one closer short of balanced
        assert example.label == "No" and not _families_balanced(example.question)
        assert any(_families_balanced(example.question + closer) for closer in ")]}")
    assert all(31 <= len(e.question) <= 90 for e in task.suite("triple_length", 100))
    assert all(set("<>") & set(e.question) for e in task.suite("new_family", 100))


def _families_balanced(brackets: str) -> bool:
    """Shuffle-dyck, written out independently: per family, no prefix closes more than it opened, and
    every opened bracket is closed."""
    for opener, closer in ("()", "[]", "{}"):
        depth = 0
        for char in brackets:
            depth += (char == opener) - (char == closer)
            if depth < 0:
                return False
        if depth:
            return False
    return True


def test_count_default_is_the_papers_fair_coin_per_character():
    task = get_task("count")
    assert task.distribution == "paper"
    examples = task.split("train", N)
    lengths = [len(e.question.split()) for e in examples]
    assert set(lengths) == set(range(5, 41))  # every length 5..40, nothing shorter or longer
    assert abs(sum(lengths) / N - 22.5) < 1  # uniform length
    assert all(set(e.question.split()) <= {"x", "y"} and "y" in e.question for e in examples)  # no x-only
    chars = [c for e in examples for c in e.question.split()]
    assert abs(chars.count("x") / len(chars) - 0.5) < 0.02  # each character a fair coin
    # ... so the count concentrates near half the length (binomial), unlike the uniform_count option.
    share = [int(e.label) / n for e, n in zip(examples, lengths)]
    assert sum(0.25 <= s <= 0.75 for s in share) / N > 0.85


def test_distributions_are_named_options():
    with pytest.raises(WorkbenchError, match="unknown count distribution"):
        CountX("nope")
    with pytest.raises(WorkbenchError, match="unknown dyck distribution"):
        ShuffleDyck("nope")


def test_count_bounds_and_suites():
    task = CountX("uniform_count")
    examples = task.split("train", N)
    assert all(1 <= len(e.question.split()) <= 40 and set(e.question.split()) <= {"x", "y"} for e in examples)
    assert all("y" in e.question for e in examples)  # x-only strings are reserved for their suite
    assert len({e.label for e in examples}) > 30  # answers cover the range, not just the middle
    task = get_task("count")
    x_only = task.suite("x_only", 40)
    assert [e.label for e in x_only] == [str(k) for k in range(1, 41)]
    assert all(41 <= len(e.question.split()) <= 120 for e in task.suite("triple_length", 50))
    assert all("y" not in e.question and "z" in e.question or set(e.question.split()) == {"x"}
               for e in task.suite("y_to_z", 50))


def _column_carries(a, b):
    """Independent check: the carry out of each column of a + b, units first, by school addition."""
    digits_a, digits_b = str(a)[::-1], str(b)[::-1]
    carries, carry = [], 0
    for column in range(len(str(a + b))):
        total = sum(int(d[column]) for d in (digits_a, digits_b) if column < len(d)) + carry
        carry = total // 10
        carries.append(carry)
    return carries


def test_sum_bounds_and_suites():
    task = get_task("sum")
    examples = task.split("train", N)
    assert all(0 <= a <= 450 and 0 <= b <= 450 for a, b in (e.question for e in examples))
    assert all(1000 <= a <= 9999 and 1000 <= b <= 9999 for a, b in (e.question for e in task.suite("four_digits", 200)))


def test_cascading_overflow_is_every_in_range_pair_whose_carry_runs_through_every_column():
    pairs = cascading_overflow_pairs()
    # Brute force with the independent school addition: a carry out of every column but the top one.
    expected = [(a, b) for a in range(451) for b in range(451)
                if a + b >= 10 and all(_column_carries(a, b)[:-1]) and len(str(a + b)) <= 3]
    assert list(pairs) == expected and len(pairs) == 47025
    assert (299, 1) in pairs and (1, 299) in pairs and (5, 5) in pairs and (55, 45) in pairs
    assert (211, 123) not in pairs and (450, 450) not in pairs and (290, 10) not in pairs
    task = get_task("sum")
    suite = task.suite("cascading_overflow", 2000)
    assert len({e.prompt for e in suite}) == 2000 and str(len(pairs)) in task.suites()["cascading_overflow"].description
    for example in suite:  # the defining property on every prompt
        a, b = example.question
        assert 0 <= a <= 450 and 0 <= b <= 450 and len(example.label) <= 3
        assert all(_column_carries(a, b)[:-1]) and a + b >= 10
    from workbench.tasks.base import in_test_split
    assert all(in_test_split(e.prompt) for e in suite)  # enough test-split pairs: only those
    everything = task.suite("cascading_overflow", 10**6)  # more than exist: all of them, once each
    assert sorted(e.question for e in everything) == sorted(pairs)
    assert task.suite("cascading_overflow", 50, seed=3) == task.suite("cascading_overflow", 50, seed=3)


def test_decimals_suite_has_a_decimal_part_on_every_operand():
    task = get_task("sum")
    suite = task.suite("decimals", 2000)
    places = set()
    for example in suite:
        operands = example.prompt[: -len(" =")].split(" + ")
        assert len(operands) == 2
        for text in operands:
            whole, fraction = text.split(".")
            assert whole.isdigit() and fraction.isdigit() and 1 <= len(fraction) <= 2 and fraction[-1] != "0"
            assert 0 < Decimal(text) < 450 and Decimal(text) != Decimal(text).to_integral_value()
            places.add(len(fraction))
        assert Decimal(example.label) == sum(Decimal(t) for t in operands)
    assert places == {1, 2}


def test_continues_tells_an_answer_continuation_from_its_end():
    count, total, dyck = get_task("count"), get_task("sum"), get_task("dyck")
    assert count.continues("1") and count.continues("12") and not count.continues(" 1")
    assert not count.continues(".") and not count.continues("\n") and not count.continues("")
    assert not count.continues("<|endoftext|>") and not count.continues("x")
    assert total.continues("5") and total.continues(".") and total.continues(".5") and not total.continues(" 5")
    assert not total.continues("\n") and not total.continues(",")
    assert dyck.continues("terday") and dyck.continues("s") and not dyck.continues(" Yes")
    assert not dyck.continues(".") and not dyck.continues("\n") and not dyck.continues("!") and not dyck.continues("")


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
