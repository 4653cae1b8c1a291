"""What every task is: a causal RASP program, a prompt format, seeded generators and a reference.

A prompt is read by the compiled program through its *compiled view*: the text is cut into
pieces (one per model token once a tokenizer is chosen; :func:`pieces` is the tokenizer-free
cut used here) and each piece becomes one compiled token.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import random
import re
from typing import Any, Callable, Sequence

from workbench.compiled import COMPILER_BOS, COMPILER_PAD, CompiledModel, compile_program, load_or_compile
from workbench.errors import WorkbenchError
from workbench.tasks.programs import END, FILLER, NONE

SPLITS = ("train", "test")
TEST_PERCENT = 10  # share of the example space (by hash of the prompt) reserved for the test split

_PIECE = re.compile(r"\s*(?:\d|[A-Za-z]+|[^\sA-Za-z\d])")


def pieces(text: str) -> list[str]:
    """Tokenizer-free cut of a prompt: single digits, words, single other characters (with their leading spaces)."""
    found = _PIECE.findall(text)
    if "".join(found) != text.rstrip():
        raise WorkbenchError(f"cannot cut {text!r} into pieces (trailing or unsupported whitespace)")
    return found


@dataclasses.dataclass(frozen=True)
class Example:
    """One prompt; ``prompt + answer`` is the full text, the answer is supervised."""

    prompt: str
    answer: str  # with its leading space, e.g. " Yes"
    question: Any  # the task's own description of the instance (brackets, text, operands)

    @property
    def text(self) -> str:
        return self.prompt + self.answer

    @property
    def label(self) -> str:
        return self.answer.strip()


@dataclasses.dataclass(frozen=True)
class Suite:
    """An out-of-distribution suite of the paper's appendix D."""

    name: str
    description: str
    supported: bool  # whether the compiled program is expected to solve it
    why: str  # why it is (not) supported
    generate: Callable[[random.Random, int], list[Example]]


def in_test_split(prompt: str) -> bool:
    """Split membership is a property of the prompt, so no seed can leak a test prompt into training."""
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % 100 < TEST_PERCENT


def draw_unique(sample: Callable[[random.Random], Example], rng: random.Random, n: int,
                accept: Callable[[Example], bool] = lambda e: True, max_tries: int | None = None) -> list[Example]:
    """``n`` distinct examples from ``sample`` that pass ``accept`` (raises if the space is too small)."""
    seen, out = set(), []
    tries = max_tries or 200 * n + 10_000
    for _ in range(tries):
        example = sample(rng)
        if example.prompt not in seen and accept(example):
            seen.add(example.prompt)
            out.append(example)
            if len(out) == n:
                return out
    raise WorkbenchError(f"could only draw {len(out)} distinct examples of the {n} requested; ask for fewer")


def predicting_positions(text_pieces: Sequence[str], n_prompt_pieces: int) -> list[int]:
    """Positions whose output predicts each answer piece that is not blank.

    A blank piece (a lone space some tokenizers emit before digits) is formatting: the
    model learns it from the text, the program's answer is read at the position that
    precedes the next non-blank piece.
    """
    return [j - 1 for j in range(n_prompt_pieces, len(text_pieces)) if text_pieces[j].strip()]


class Task(abc.ABC):
    """A task of the paper. Subclasses set the class attributes and implement the hooks below."""

    name: str
    description: str
    compiled_vocab: frozenset
    max_seq_len: int  # compiled context, enough for every in-distribution prompt with a model BOS
    prompt_example: str

    # ---- what a subclass provides -------------------------------------------------
    @abc.abstractmethod
    def program(self):
        """A fresh causal RASP program (tracr labels are global, so never reuse one)."""

    filler_token = FILLER
    symbol_characters: str  # characters the program reads; a token must hold at most one of them

    @abc.abstractmethod
    def compiled_token(self, piece: str) -> str:
        """The compiled token of one piece of text (a model token, spaces included)."""

    def checked_compiled_token(self, piece: str) -> str:
        """``compiled_token``, refusing a token that merges a program symbol with other text."""
        core = piece.strip()
        if len(core) > 1 and any(c in self.symbol_characters for c in core):
            raise WorkbenchError(
                f"token {piece!r} merges a character the {self.name} program reads with other text; "
                "use the adapted tokenizer (workbench.models.adapt_tokenizer) so each is its own token")
        return self.compiled_token(piece)

    @abc.abstractmethod
    def sample(self, rng: random.Random) -> Example:
        """One in-distribution example."""

    @abc.abstractmethod
    def suites(self) -> dict[str, Suite]:
        """The out-of-distribution suites of the paper's appendix D."""

    @abc.abstractmethod
    def reference(self, question: Any) -> str:
        """The correct answer (without leading space), computed in plain Python."""

    def output_text(self, value: Any) -> str | None:
        """The answer text the compiled output ``value`` stands for (None: no answer token)."""
        return None if value in (END, NONE, None) else str(value)

    def train_space(self) -> list[Example] | None:
        """Every train-split example, for a task whose prompt space is small enough to list (else None)."""
        return None

    answer_continuation_characters = "0123456789"  # what can extend a numeric answer (count, sum)

    def continues(self, piece: str) -> bool:
        """Whether a model token whose text is ``piece`` (leading space included) would continue the answer.

        Strict exact match needs it: the generated answer counts only when the token after it
        ends the answer, so " 3" followed by "1" (the text " 31") is not the answer 3. A piece
        continues the answer when it starts, with no leading space, with one of
        ``answer_continuation_characters`` (digits for the numeric tasks); anything with a
        leading space, a newline, punctuation or an empty text (special tokens) ends it.
        """
        return bool(piece) and piece[0] in self.answer_continuation_characters

    # ---- derived ------------------------------------------------------------------

    @property
    def mlp_exactness(self) -> int:
        """Sharp enough for SelectorWidth to tell 1/(n+1) from 1/(n+2) at n = max_seq_len."""
        return 4 * (self.max_seq_len + 2) ** 2

    def compile(self, use_cache: bool = True) -> CompiledModel:
        spec = {"task": self.name, "source": _source_digest(), "vocab": sorted(self.compiled_vocab),
                "max_seq_len": self.max_seq_len, "causal": True, "mlp_exactness": self.mlp_exactness,
                "bos": COMPILER_BOS, "pad": COMPILER_PAD}
        return load_or_compile(spec, lambda: compile_program(
            self.program(), set(self.compiled_vocab), self.max_seq_len, causal=True,
            mlp_exactness=self.mlp_exactness), use_cache)

    def compiled_tokens(self, text_pieces: Sequence[str]) -> list[str]:
        return [self.checked_compiled_token(piece) for piece in text_pieces]

    def answer_positions(self, example: Example) -> list[int]:
        """Compiled positions (BOS excluded) whose output predicts each answer piece."""
        text_pieces = pieces(example.text)
        return predicting_positions(text_pieces, len(text_pieces) - len(pieces(example.answer)))

    def read_answer(self, outputs: Sequence[Any], positions: Sequence[int]) -> str:
        """The answer text that compiled ``outputs`` give at the predicting ``positions``."""
        texts = [self.output_text(outputs[p]) for p in positions]
        return "".join(t for t in texts if t is not None)

    def compiled_answers(self, compiled: CompiledModel, examples: Sequence[Example]) -> list[str | None]:
        """The answer the compiled program gives for each example (teacher-forced on the answer pieces).

        ``None`` where the compiled view does not fit the compiled context.
        """
        views = [self.compiled_tokens(pieces(example.text)) for example in examples]
        fits = [len(view) <= compiled.max_seq_len for view in views]
        outputs = compiled.run_batch([view for view, fit in zip(views, fits) if fit])
        answers, next_output = [], iter(outputs)
        for example, fit in zip(examples, fits):
            answers.append(self.read_answer(next(next_output), self.answer_positions(example)) if fit else None)
        return answers

    def split(self, split: str, n: int, seed: int = 0) -> list[Example]:
        """``n`` distinct in-distribution examples of ``split`` ("train" or "test")."""
        if split not in SPLITS:
            raise WorkbenchError(f"unknown split {split!r}; use one of {SPLITS}")
        want_test = split == "test"
        rng = random.Random(f"{self.name}:{split}:{seed}")
        return draw_unique(self.sample, rng, n, accept=lambda e: in_test_split(e.prompt) == want_test)

    def suite(self, name: str, n: int, seed: int = 0) -> list[Example]:
        suites = self.suites()
        if name not in suites:
            raise WorkbenchError(f"unknown suite {name!r} for task {self.name}; available: {', '.join(suites)}")
        return suites[name].generate(random.Random(f"{self.name}:{name}:{seed}"), n)


def _source_digest() -> str:
    """Hash of the task programs' source: editing a program invalidates its cached compilation."""
    from workbench.tasks import programs

    with open(programs.__file__, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]
