"""Shuffle-dyck over (), {}, []: is every bracket family balanced? (paper §4, Algorithm 1)."""

from __future__ import annotations

import random

from workbench.errors import WorkbenchError
from workbench.tasks import programs
from workbench.tasks.base import Example, Suite, Task, draw_unique, in_test_split

PAIRS = programs.DYCK_PAIRS
MAX_BRACKETS = 30
MIN_BRACKETS = 5  # the paper's code (data/dyck_3.py) draws sizes 5..30
PROMPT = "Are parentheses here correctly matched? {}.Answer:"
DISTRIBUTIONS = {
    "paper": "half balanced, half random incorrect strings of 5..30 uniform brackets (the paper's code)",
    "near_miss": "half balanced, half one-edit near misses of balanced strings (2..30 brackets)",
}
PROGRAMS = {
    "prefix": "this project's program: per-family states, Yes/No at every position (task 'dyck')",
    "paper": "the paper's Algorithm 1, Figure 6's variables, final_result at the answer marker (task 'dyck-paper')",
}


def is_shuffle_dyck(brackets: str, pairs=PAIRS + ("<>",)) -> bool:
    """Reference: each family's running balance never dips below 0 and ends at 0."""
    for left, right in pairs:
        balance = 0
        for char in brackets:
            balance += (char == left) - (char == right)
            if balance < 0:
                return False
        if balance:
            return False
    return True


def _dyck1(rng: random.Random, pairs: int) -> list[int]:
    """A random balanced word over one family: +1 open, -1 close."""
    word, depth, opens_left = [], 0, pairs
    while opens_left or depth:
        if opens_left and (depth == 0 or rng.random() < 0.5):
            word.append(1)
            opens_left -= 1
            depth += 1
        else:
            word.append(-1)
            depth -= 1
    return word


def balanced(rng: random.Random, n_pairs: int, pairs=PAIRS) -> str:
    """A random shuffle of per-family balanced words (order between families is free)."""
    counts = [0] * len(pairs)
    for _ in range(n_pairs):
        counts[rng.randrange(len(pairs))] += 1
    words = [[pair[0] if step > 0 else pair[1] for step in _dyck1(rng, count)] for pair, count in zip(pairs, counts)]
    out = []
    while any(words):
        word = rng.choice([w for w in words if w])
        out.append(word.pop(0))
    return "".join(out)


def unbalanced(rng: random.Random, n_pairs: int, pairs=PAIRS) -> str:
    """A near miss: one edit of a balanced string (dropped, moved, retyped or flipped bracket)."""
    while True:
        chars = list(balanced(rng, n_pairs, pairs))
        i = rng.randrange(len(chars))
        edit = rng.choice(("drop", "move_close_early", "retype", "flip"))
        if edit == "drop":
            del chars[i]
        elif edit == "move_close_early":
            closers = [j for j, c in enumerate(chars) if c in {p[1] for p in pairs}]
            j = rng.choice(closers)
            closer = chars.pop(j)
            chars.insert(rng.randrange(0, j + 1), closer)
        elif edit == "retype":
            same_side = [p[0] if chars[i] in {q[0] for q in pairs} else p[1] for p in pairs]
            chars[i] = rng.choice([c for c in same_side if c != chars[i]] or same_side)
        else:
            pair = next(p for p in pairs if chars[i] in p)
            chars[i] = pair[1] if chars[i] == pair[0] else pair[0]
        text = "".join(chars)
        if text and not is_shuffle_dyck(text, pairs):
            return text


def random_incorrect(rng: random.Random, low: int, high: int, pairs=PAIRS) -> str:
    """The paper's negatives (its code, data/dyck_3.py): length uniform in [low, high], each bracket
    uniform over the families' brackets, redrawn while the string happens to be balanced."""
    brackets = "".join(pairs)
    while True:
        text = "".join(rng.choice(brackets) for _ in range(rng.randint(low, high)))
        if not is_shuffle_dyck(text, pairs):
            return text


class ShuffleDyck(Task):
    name = "dyck"
    description = "shuffle-dyck over (), {}, [] (up to 30 brackets): Yes if every family is balanced"
    compiled_vocab = frozenset({*"(){}[]", programs.FILLER, programs.ANSWER})
    max_seq_len = 48
    symbol_characters = "(){}[]<>"
    prompt_example = "Are parentheses here correctly matched? []{()}.Answer: Yes"

    def __init__(self, distribution: str = "paper", algorithm: str = "prefix"):
        """``distribution`` picks the training generator, one of :data:`DISTRIBUTIONS`; ``algorithm``
        the compiled program, one of :data:`PROGRAMS` ("paper" is the task ``dyck-paper``)."""
        if distribution not in DISTRIBUTIONS:
            raise WorkbenchError(f"unknown dyck distribution {distribution!r}; use one of {', '.join(DISTRIBUTIONS)}")
        if algorithm not in PROGRAMS:
            raise WorkbenchError(f"unknown dyck program {algorithm!r}; use one of {', '.join(PROGRAMS)}")
        self.distribution = distribution
        self.algorithm = algorithm
        if algorithm == "paper":
            self.name = "dyck-paper"
            self.description = self.description + ", compiled from the paper's Algorithm 1"

    def program(self):
        if self.algorithm == "paper":
            return programs.shuffle_dyck_paper(PAIRS)
        return programs.shuffle_dyck(PAIRS)

    def compiled_token(self, piece: str) -> str:
        piece = piece.strip()
        if piece in self.compiled_vocab - {programs.FILLER, programs.ANSWER}:
            return piece
        return programs.ANSWER if piece == ":" else programs.FILLER

    def output_text(self, value):
        return {True: "Yes", False: "No"}.get(value)

    def continues(self, piece: str) -> bool:
        """The answer word goes on while the next piece starts with a letter or digit and no space
        ("Yes" + "terday"); a space, newline or punctuation ends it."""
        return bool(piece) and piece[0].isalnum()

    def reference(self, question: str) -> str:
        return "Yes" if is_shuffle_dyck(question) else "No"

    def make(self, brackets: str) -> Example:
        return Example(PROMPT.format(brackets), " " + self.reference(brackets), brackets)

    def _sample_sized(self, rng: random.Random, low: int, high: int, pairs=PAIRS,
                      distribution: str | None = None) -> Example:
        """Half balanced (a random shuffle-dyck word, ``balanced``), half incorrect, by a fair coin.

        "paper": the incorrect half is ``random_incorrect`` (uniform random brackets, low..high of
        them, never balanced), the balanced half has low..high brackets rounded up to even, as the
        paper's code draws them. "near_miss": one-edit near misses (``unbalanced``) of 2..high brackets.
        ``distribution`` overrides the task's own.
        """
        if (distribution or self.distribution) == "paper":
            if rng.random() < 0.5:
                return self.make(balanced(rng, rng.randint(max(1, (low + 1) // 2), high // 2), pairs))
            return self.make(random_incorrect(rng, low, high, pairs))
        n_pairs = rng.randint(max(1, (low + 1) // 2), high // 2)
        if rng.random() < 0.5:
            return self.make(balanced(rng, n_pairs, pairs))
        return self.make(unbalanced(rng, n_pairs, pairs))

    def sample(self, rng: random.Random) -> Example:
        return self._sample_sized(rng, MIN_BRACKETS if self.distribution == "paper" else 1, MAX_BRACKETS)

    def suites(self) -> dict[str, Suite]:
        def almost_balanced(rng, n):
            # A balanced string missing its last bracket (drawn from the test half of the space).
            def sample(r):
                return self.make(balanced(r, r.randint(1, MAX_BRACKETS // 2))[:-1])
            return draw_unique(sample, rng, n, accept=lambda e: in_test_split(e.prompt))

        def triple_length(rng, n):
            return draw_unique(lambda r: self._sample_sized(r, MAX_BRACKETS + 1, 3 * MAX_BRACKETS), rng, n)

        def new_family(rng, n):
            # Near misses whatever the training distribution: uniform random negatives are almost
            # always unbalanced in (), {} or [] too, so a program blind to <> would still answer them.
            four = PAIRS + ("<>",)
            return draw_unique(lambda r: self._sample_sized(r, 2, MAX_BRACKETS, four, "near_miss"), rng, n,
                               accept=lambda e: "<" in e.question or ">" in e.question)

        return {
            "almost_balanced": Suite("almost_balanced", "balanced strings with their last bracket removed", True,
                                     "same lengths and families as training", almost_balanced),
            "triple_length": Suite("triple_length", "31 to 90 brackets (3x the training length)", False,
                                   f"longer than the compiled context ({self.max_seq_len})", triple_length),
            "new_family": Suite("new_family", "adds the unseen family <>", False,
                                "<> is not in the compiled vocab (read as filler)", new_family),
        }
