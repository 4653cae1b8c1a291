"""Count the 'x' in a string of 'x' and 'y' (paper appendix C)."""

from __future__ import annotations

import random

from workbench.errors import WorkbenchError
from workbench.tasks import programs
from workbench.tasks.base import Example, Suite, Task, draw_unique, in_test_split

MAX_CHARS = 40
MIN_CHARS = 5  # the paper's code (data/count.py) draws lengths 5..40
PROMPT = "What is the number of 'X' in this text? {}. Answer:"
DISTRIBUTIONS = {
    "paper": "length uniform in 5..40, each character a fair coin between 'x' and 'y' (the paper's code)",
    "uniform_count": "length uniform in 1..40, then the number of 'x' uniform in 0..length (every answer common)",
}


class CountX(Task):
    name = "count"
    description = "number of 'x' in a text of 'x' and 'y' (up to 40 characters)"
    compiled_vocab = frozenset({"x", programs.FILLER, programs.ANSWER, *programs.DIGITS})
    max_seq_len = 64
    symbol_characters = "0123456789"
    prompt_example = "What is the number of 'X' in this text? x y x x y. Answer: 3"

    def __init__(self, distribution: str = "paper"):
        """``distribution`` picks the training generator, one of :data:`DISTRIBUTIONS`."""
        if distribution not in DISTRIBUTIONS:
            raise WorkbenchError(f"unknown count distribution {distribution!r}; use one of {', '.join(DISTRIBUTIONS)}")
        self.distribution = distribution

    def program(self):
        return programs.count_x("x")

    def compiled_token(self, piece: str) -> str:
        piece = piece.strip()
        if piece == "x" or piece in programs.DIGITS:
            return piece
        return programs.ANSWER if piece == ":" else programs.FILLER

    def reference(self, question: str) -> str:
        return str(question.split().count("x"))

    def make(self, chars: list[str]) -> Example:
        text = " ".join(chars)
        return Example(PROMPT.format(text), " " + self.reference(text), text)

    def _sample_sized(self, rng: random.Random, low: int, high: int) -> Example:
        """Length uniform in [low, high], then the characters as ``self.distribution`` draws them:
        "paper": each a fair coin between x and y; "uniform_count": the number of x uniform, then shuffled."""
        length = rng.randint(low, high)
        if self.distribution == "paper":
            return self.make([rng.choice("xy") for _ in range(length)])
        n_x = rng.randint(0, length)
        chars = ["x"] * n_x + ["y"] * (length - n_x)
        rng.shuffle(chars)
        return self.make(chars)

    def sample(self, rng: random.Random) -> Example:
        # x-only strings are kept out of training: they are the x-only suite.
        low = MIN_CHARS if self.distribution == "paper" else 1
        while True:
            example = self._sample_sized(rng, low, MAX_CHARS)
            if "y" in example.question:
                return example

    def suites(self) -> dict[str, Suite]:
        def x_only(rng, n):
            return [self.make(["x"] * k) for k in range(1, MAX_CHARS + 1)][:n]

        def triple_length(rng, n):
            return draw_unique(lambda r: self._sample_sized(r, MAX_CHARS + 1, 3 * MAX_CHARS), rng, n)

        def y_to_z(rng, n):
            test = draw_unique(self.sample, rng, n, accept=lambda e: in_test_split(e.prompt))
            return [self.make(e.question.replace("y", "z").split()) for e in test]

        return {
            "x_only": Suite("x_only", "only 'x', 1 to 40 of them (never in training)", True,
                            "counting is the program", x_only),
            "triple_length": Suite("triple_length", "41 to 120 characters (3x the training length)", False,
                                   f"longer than the compiled context ({self.max_seq_len})", triple_length),
            "y_to_z": Suite("y_to_z", "test prompts with every 'y' replaced by 'z'", True,
                            "'y' and 'z' are both filler to the program", y_to_z),
        }
