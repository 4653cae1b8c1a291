"""Integer addition ``a + b = c`` with a, b ≤ 450 (paper appendix C)."""

from __future__ import annotations

import functools
import random
from decimal import Decimal

from workbench.tasks import programs
from workbench.tasks.base import Example, Suite, Task, draw_unique, in_test_split

MAX_OPERAND = 450
PROMPT = "{} + {} ="


def carries_all_the_way(a: int, b: int) -> bool:
    """Cascading overflow: in the column addition of ``a + b`` every column below the top column
    of the *result* produces a carry, so a carry born in the units column is pushed all the way to
    the result's leading digit (``299 + 1 = 300``, ``55 + 45 = 100``, ``5 + 5 = 10``).

    Precisely: with ``w`` the number of digits of ``a + b``, ``w >= 2`` and for every column
    ``c = 0 .. w-2`` (units first) ``a_c + b_c + carry_c >= 10``, where ``carry_0 = 0`` and
    ``carry_{c+1} = 1`` (every column carries). Equivalently the result's digits below the top are
    ``a_c + b_c + carry_c - 10``.
    """
    width = len(str(a + b))
    carry = 0
    for column in range(width - 1):
        carry = int(a // 10**column % 10 + b // 10**column % 10 + carry >= 10)
        if not carry:
            return False
    return width >= 2


@functools.lru_cache(maxsize=None)
def cascading_overflow_pairs(max_operand: int = MAX_OPERAND, max_digits: int = 3) -> tuple[tuple[int, int], ...]:
    """Every ordered pair ``(a, b)`` with both operands in ``0..max_operand`` (the training range), a
    sum of at most ``max_digits`` digits and a carry through every column (:func:`carries_all_the_way`),
    in increasing order of ``a`` then ``b``. With the defaults there are 47,025 (45,000 with a 3-digit
    sum, 2,025 with a 2-digit sum), 4,826 of them in the test split."""
    return tuple((a, b) for a in range(max_operand + 1) for b in range(max_operand + 1)
                 if len(str(a + b)) <= max_digits and carries_all_the_way(a, b))


@functools.lru_cache(maxsize=None)
def _cascading_by_split() -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """:func:`cascading_overflow_pairs` cut into (test split, train split)."""
    pairs = cascading_overflow_pairs()
    test = tuple(p for p in pairs if in_test_split(PROMPT.format(*p)))
    return test, tuple(p for p in pairs if not in_test_split(PROMPT.format(*p)))


def decimal_operand(rng: random.Random, max_operand: int = MAX_OPERAND) -> Decimal:
    """An operand below ``max_operand`` with a decimal part of 1 or 2 places whose last place is not
    zero, so the printed operand always shows its decimal part (``Decimal`` would print ``3.50`` and
    ``3.0`` as typed, and a normalised value as ``3.5`` / ``3``)."""
    places = rng.randint(1, 2)
    fraction = rng.randint(1, 10**places - 1)
    while fraction % 10 == 0:
        fraction = rng.randint(1, 10**places - 1)
    return Decimal(f"{rng.randint(0, max_operand - 1)}.{fraction:0{places}d}")


class IntegerSum(Task):
    name = "sum"
    description = "a + b for integers 0..450 (results of up to 3 digits)"
    compiled_vocab = frozenset({"+", "=", programs.FILLER, *programs.DIGITS})
    max_seq_len = 24
    symbol_characters = "0123456789+="
    prompt_example = "211 + 123 = 334"
    answer_continuation_characters = "0123456789."  # "3" then ".5" is the answer 3.5, not 3

    def program(self):
        return programs.integer_sum()

    def compiled_token(self, piece: str) -> str:
        piece = piece.strip()
        return piece if piece in self.compiled_vocab else programs.FILLER

    def reference(self, question: tuple) -> str:
        a, b = (Decimal(str(x)) for x in question)
        total = a + b
        return str(total.normalize()) if total != total.to_integral_value() else str(int(total))

    def make(self, a, b) -> Example:
        return Example(PROMPT.format(a, b), " " + self.reference((a, b)), (a, b))

    def sample(self, rng: random.Random) -> Example:
        return self.make(rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND))

    def train_space(self) -> list[Example]:
        """All 451² pairs but the test split's (the paper: "all the combinations of sums of values until 450")."""
        pairs = (self.make(a, b) for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1))
        return [e for e in pairs if not in_test_split(e.prompt)]

    def suites(self) -> dict[str, Suite]:
        test_pairs, other_pairs = _cascading_by_split()
        pairs = test_pairs + other_pairs
        n_test = len(test_pairs)

        def cascading(rng, n):
            # Test-split pairs first (a seeded shuffle), then, only when more are requested than the
            # test split holds, the others (another seeded shuffle): all of them when n >= len(pairs).
            test, other = list(test_pairs), list(other_pairs)
            rng.shuffle(test)
            rng.shuffle(other)
            return [self.make(a, b) for a, b in (test + other)[:n]]

        def four_digits(rng, n):
            return draw_unique(lambda r: self.make(r.randint(1000, 9999), r.randint(1000, 9999)), rng, n)

        def decimals(rng, n):
            return draw_unique(lambda r: self.make(decimal_operand(r), decimal_operand(r)), rng, n)

        return {
            "cascading_overflow": Suite(
                "cascading_overflow",
                f"operands 0..{MAX_OPERAND}, sums of at most 3 digits, a carry through every column below the "
                f"result's top digit (e.g. 299 + 1): {len(pairs)} such prompts exist, {n_test} in the test split "
                "(used first)", True, "the program adds column by column with carries", cascading),
            "four_digits": Suite("four_digits", "4-digit operands", False,
                                 "the program reads at most 3 digits per operand", four_digits),
            "decimals": Suite("decimals", "every operand with a decimal part of 1-2 places", False,
                              "the program has no decimal point", decimals),
        }
