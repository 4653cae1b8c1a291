"""Every program of ``tracr.compiler.lib`` with the arguments, vocab and lengths we compile it with.

Each entry builds a fresh RASP program (tracr labels carry global counters, so programs
are never shared between compilations) and draws valid random inputs for it.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Callable

from tracr.compiler import lib
from tracr.rasp import rasp

from workbench.errors import WorkbenchError


@dataclasses.dataclass(frozen=True)
class LibProgram:
    name: str
    build: Callable[[int], rasp.SOp]  # max_seq_len -> program
    vocab: frozenset
    max_seq_len: int
    causal_valid: bool  # whether the program's RASP meaning holds under causal attention
    sample: Callable[[random.Random, "LibProgram"], list[Any]]
    description: str

    def program(self) -> rasp.SOp:
        return self.build(self.max_seq_len)

    def random_input(self, rng: random.Random) -> list[Any]:
        return self.sample(rng, self)


def _any_tokens(rng: random.Random, p: LibProgram) -> list[Any]:
    length = rng.randint(1, p.max_seq_len)
    vocab = sorted(p.vocab, key=str)
    return [rng.choice(vocab) for _ in range(length)]


def _distinct_tokens(rng: random.Random, p: LibProgram) -> list[Any]:
    """make_sort_unique is only defined for distinct keys."""
    length = rng.randint(1, min(p.max_seq_len, len(p.vocab)))
    return rng.sample(sorted(p.vocab, key=str), length)


_PROGRAMS = [
    LibProgram("length", lambda n: lib.make_length(), frozenset("abc"), 8, False, _any_tokens,
               "length of the input at every position"),
    LibProgram("reverse", lambda n: lib.make_reverse(rasp.tokens), frozenset("abc"), 8, False, _any_tokens,
               "the input reversed"),
    LibProgram("pair_balance", lambda n: lib.make_pair_balance(rasp.tokens, "(", ")"), frozenset("()a"), 8, True,
               _any_tokens, "running balance (#open - #close) / position of one bracket pair"),
    LibProgram("shuffle_dyck", lambda n: lib.make_shuffle_dyck(["()", "{}"]), frozenset("(){}"), 8, False,
               _any_tokens, "1 if each of () and {} is balanced, else 0"),
    LibProgram("shuffle_dyck2", lambda n: lib.make_shuffle_dyck2(), frozenset("(){}"), 8, False, _any_tokens,
               "make_shuffle_dyck for the pairs () and {}"),
    LibProgram("hist", lambda n: lib.make_hist(), frozenset("abc"), 8, False, _any_tokens,
               "how often each position's token occurs in the input"),
    LibProgram("sort_unique", lambda n: lib.make_sort_unique(rasp.tokens, rasp.tokens), frozenset({1, 2, 3, 4, 5}),
               5, False, _distinct_tokens, "distinct numbers sorted ascending"),
    LibProgram("sort", lambda n: lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=n, min_key=1),
               frozenset({1, 2, 3, 4}), 5, False, _any_tokens, "numbers sorted ascending (repeats allowed)"),
    LibProgram("sort_freq", lambda n: lib.make_sort_freq(max_seq_len=n), frozenset("abc"), 5, False, _any_tokens,
               "tokens sorted by decreasing frequency"),
    LibProgram("frac_prevs", lambda n: lib.make_frac_prevs(rasp.tokens == "x"), frozenset("xyz"), 8, True,
               _any_tokens, "fraction of tokens so far that are 'x'"),
    LibProgram("shift_by", lambda n: lib.shift_by(1, rasp.tokens), frozenset("abc"), 8, True, _any_tokens,
               "the input shifted right by one"),
    LibProgram("detect_pattern", lambda n: lib.detect_pattern(rasp.tokens, "abc"), frozenset("abc"), 8, True,
               _any_tokens, "1 where the pattern 'abc' ends, else 0"),
    LibProgram("count_less_freq", lambda n: lib.make_count_less_freq(2), frozenset("abc"), 8, False, _any_tokens,
               "number of tokens occurring at most 2 times"),
    LibProgram("count", lambda n: lib.make_count(rasp.tokens, "a"), frozenset("abc"), 8, False, _any_tokens,
               "number of 'a' in the input"),
    LibProgram("nary_sequencemap",
               lambda n: lib.make_nary_sequencemap(lambda x, y, z: f"{x}{y}{z}", rasp.tokens,
                                                   lib.shift_by(1, rasp.tokens), lib.shift_by(2, rasp.tokens)),
               frozenset("ab"), 6, True, _any_tokens, "each token with its two predecessors, as one string"),
]

LIB_PROGRAMS: dict[str, LibProgram] = {p.name: p for p in _PROGRAMS}


def get_lib_program(name: str) -> LibProgram:
    key = name.removeprefix("make_")
    if key not in LIB_PROGRAMS:
        raise WorkbenchError(f"unknown program {name!r}; available: {', '.join(LIB_PROGRAMS)}")
    return LIB_PROGRAMS[key]
