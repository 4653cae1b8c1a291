"""Integer addition ``a + b = c`` with a, b ≤ 450 (paper appendix C)."""

from __future__ import annotations

import random
from decimal import Decimal

from workbench.tasks import programs
from workbench.tasks.base import Example, Suite, Task, draw_unique, in_test_split

MAX_OPERAND = 450
PROMPT = "{} + {} ="


def carries_all_the_way(a: int, b: int) -> bool:
    """Every column below the top digit of the longer operand carries into the next."""
    width = max(len(str(a)), len(str(b)))
    carry = 0
    for column in range(width - 1):
        carry = (a // 10**column % 10 + b // 10**column % 10 + carry) >= 10
        if not carry:
            return False
    return width >= 2


class IntegerSum(Task):
    name = "sum"
    description = "a + b for integers 0..450 (results of up to 3 digits)"
    compiled_vocab = frozenset({"+", "=", programs.FILLER, *programs.DIGITS})
    max_seq_len = 24
    symbol_characters = "0123456789+="
    prompt_example = "211 + 123 = 334"

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

    def suites(self) -> dict[str, Suite]:
        def cascading(rng, n):
            def sample(r):
                return self.make(r.randint(0, 999), r.randint(0, 999))
            return draw_unique(sample, rng, n, accept=lambda e: in_test_split(e.prompt) and
                               carries_all_the_way(*e.question))

        def four_digits(rng, n):
            return draw_unique(lambda r: self.make(r.randint(1000, 9999), r.randint(1000, 9999)), rng, n)

        def decimals(rng, n):
            def operand(r):
                places = r.randint(1, 2)
                return Decimal(r.randint(1, MAX_OPERAND * 10**places)) / 10**places

            return draw_unique(lambda r: self.make(operand(r), operand(r)), rng, n)

        return {
            "cascading_overflow": Suite("cascading_overflow", "carries through every column (e.g. 299 + 1)", True,
                                        "the program adds column by column with carries", cascading),
            "four_digits": Suite("four_digits", "4-digit operands", False,
                                 "the program reads at most 3 digits per operand", four_digits),
            "decimals": Suite("decimals", "operands with 1-2 decimal places", False,
                              "the program has no decimal point", decimals),
        }
