"""Random RASP programs as the thesis's §4 draws them (seed 003; settings from its code, commit 839907d).

One draw: ``n_ops`` operations, each sampled with weights Map 4, Select 3, SequenceMap 2,
Aggregate 2, SelectorWidth 2 (the selector-consuming ops only once a selector exists; the
last operation returns an SOp). Arguments come from the variables in scope, later variables
preferred: the weights of tokens, indices, v1, v2, … are 1, 1, 1, 2, 4, 7, 11, …
(w_n = 2 w_{n-1} − w_{n-2} + 1). Values are typed numeric, categoric or boolean (the
tokens are numeric or categoric with probability ``numeric_share``): a Map draws a comparison
lambda (any variable, a constant from that variable's space, boolean result) or an
arithmetic lambda (a numeric variable, an integer constant from ``const_range``, a third of
the time plus a noise of k/100); a SequenceMap and an Aggregate take numeric variables; a
Select compares two variables of the same type. The program is then pruned to the ancestors
of its return variable, the SOp at the end of the longest path from the inputs (ties: the
later line), identical lines are merged, and the whole draw is repeated until at least
``min_length`` lines remain (rejection sampling).

Seeding: program ``index`` of seed ``seed`` is drawn from the generator of
``SeedSequence(seed, spawn_key=(index,))`` (the index-th child of ``SeedSequence(seed)``), so
a program depends on (seed, index, config) only: the same on any machine and any number of workers.

>>> from workbench.decompile.generator import GeneratorConfig, generate
>>> program = generate(GeneratorConfig(), seed=0, index=0)
>>> len(program) >= 7, program.max_seq_len
(True, 10)
>>> program.to_json() == generate(GeneratorConfig(), seed=0, index=0).to_json()
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from workbench.decompile.program import (
    ARITHMETIC_LAMBDAS,
    COMPARISON_LAMBDAS,
    INPUTS,
    OP_WEIGHTS,
    OPS,
    PREDICATES,
    Line,
    Program,
)
from workbench.errors import WorkbenchError, check_settings


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """The thesis-era settings by default (15 raw ops, ≥ 7 kept, vocab 1..10, numeric 50 %, max_seq_len 10)."""

    n_ops: int = 15
    min_length: int = 7
    vocab_min: int = 1
    vocab_max: int = 10
    numeric_share: float = 0.5
    const_min: int = 1
    const_max: int = 10
    float_share: float = 1 / 3  # arithmetic Map constants that get a noise k/100, k in 0..100
    max_seq_len: int = 10
    max_attempts: int = 10_000

    def __post_init__(self):
        checks = [("n_ops", self.n_ops >= 1, "at least 1"), ("min_length", 1 <= self.min_length <= self.n_ops,
                                                                "between 1 and n_ops"),
                  ("vocab_min", 1 <= self.vocab_min <= self.vocab_max, "between 1 and vocab_max"),
                  ("numeric_share", 0 <= self.numeric_share <= 1, "in [0, 1]"),
                  ("const_min", self.const_min <= self.const_max, "at most const_max"),
                  ("float_share", 0 <= self.float_share <= 1, "in [0, 1]"),
                  ("max_seq_len", self.max_seq_len >= 1, "at least 1"),
                  ("max_attempts", self.max_attempts >= 1, "at least 1")]
        check_settings("generator", self, checks)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def rng_for(seed: int, index: int) -> np.random.Generator:
    """The generator of program ``index``: the index-th child of ``SeedSequence(seed)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


def scope_weights(n: int) -> list[int]:
    """Sampling weights of the first ``n`` variables in scope: 1, 1, 1, 2, 4, 7, 11, 16, …"""
    weights = [1, 1, 1]
    while len(weights) < n:
        weights.append(2 * weights[-1] - weights[-2] + 1)
    return weights[:n]


def _pick(rng: np.random.Generator, weights) -> int:
    """Index drawn with the given weights (one uniform draw: the same on every platform)."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(cumulative) - 1))


def _choice(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))]


def draw_op(rng: np.random.Generator, has_selector: bool, last: bool = False) -> str:
    """One operation with the thesis's weights, among those that can be applied (and return an SOp if last)."""
    allowed = [op for op in OPS if (has_selector or op not in ("Aggregate", "SelectorWidth"))
               and not (last and op == "Select")]
    return allowed[_pick(rng, [OP_WEIGHTS[op] for op in allowed])]


class _Scope:
    """Variables in scope with their kind (sop / selector), type (numeric / categoric / boolean) and weight."""

    def __init__(self, tokens_type: str):
        self.names: list[str] = list(INPUTS)
        self.kinds = {"tokens": "sop", "indices": "sop"}
        self.types = {"tokens": tokens_type, "indices": "numeric"}

    def add(self, name: str, kind: str, value_type: str) -> None:
        self.names.append(name)
        self.kinds[name], self.types[name] = kind, value_type

    def pick(self, rng, kind: str, value_type: str | None = None) -> str:
        weights = scope_weights(len(self.names))
        candidates = [(n, w) for n, w in zip(self.names, weights)
                      if self.kinds[n] == kind and (value_type is None or self.types[n] == value_type)]
        return candidates[_pick(rng, [w for _, w in candidates])][0]

    def has(self, kind: str) -> bool:
        return any(k == kind for k in self.kinds.values())


def _constant(rng, value_type: str, vocab: list, config: GeneratorConfig) -> Any:
    if value_type == "numeric":
        return int(rng.integers(config.const_min, config.const_max + 1))
    if value_type == "boolean":
        return bool(rng.integers(2))
    return _choice(rng, vocab)


def draw_lines(rng: np.random.Generator, vocab: list, config: GeneratorConfig) -> list[Line]:
    """The raw draw: ``n_ops`` lines before pruning (thesis Figure 4.1)."""
    tokens_type = "numeric" if isinstance(vocab[0], int) else "categoric"
    scope, lines = _Scope(tokens_type), []
    for number in range(1, config.n_ops + 1):
        op = draw_op(rng, scope.has("selector"), last=number == config.n_ops)
        out, const, fn = f"v{number}", None, None
        if op == "Map":
            if rng.integers(2) == 0:  # comparison: any variable, a constant of its own type
                x = scope.pick(rng, "sop")
                fn = _choice(rng, COMPARISON_LAMBDAS)
                const = None if fn == "LAM_IV" else (_choice(rng, vocab) if x == "tokens" else
                                                     _constant(rng, scope.types[x], vocab, config))
                args, out_type = (x,), "boolean"
            else:  # arithmetic on a numeric variable
                x = scope.pick(rng, "sop", "numeric")
                fn = _choice(rng, ARITHMETIC_LAMBDAS)
                const = int(rng.integers(config.const_min, config.const_max + 1))
                if rng.random() < config.float_share:
                    const = round(const + int(rng.integers(0, 101)) / 100, 2)
                args, out_type = (x,), "numeric"
        elif op == "SequenceMap":
            x = scope.pick(rng, "sop", "numeric")
            y = scope.pick(rng, "sop", "numeric")
            fn, args, out_type = _choice(rng, ARITHMETIC_LAMBDAS), (x, y), "numeric"
        elif op == "Select":
            keys = scope.pick(rng, "sop")
            queries = scope.pick(rng, "sop", scope.types[keys])
            fn, args, out_type = _choice(rng, PREDICATES), (keys, queries), "boolean"
        elif op == "Aggregate":
            args, out_type = (scope.pick(rng, "selector"), scope.pick(rng, "sop", "numeric")), "numeric"
        else:
            args, out_type = (scope.pick(rng, "selector"),), "numeric"
        lines.append(Line(op, fn, args, out, const))
        scope.add(out, "selector" if op == "Select" else "sop", out_type)
    return lines


def depths(lines: list[Line]) -> dict[str, int]:
    """Depth of every variable: inputs 0, a line 1 + its deepest argument (the longest path from the inputs)."""
    depth = {name: 0 for name in INPUTS}
    for line in lines:
        depth[line.out] = 1 + max(depth[a] for a in line.args)
    return depth


def prune(lines: list[Line]) -> list[Line]:
    """The ancestors of the return variable (the deepest SOp, ties: the later line), identical lines merged."""
    depth = depths(lines)
    sops = [line for line in lines if line.op != "Select"]
    ret = max(sops, key=lambda line: (depth[line.out], lines.index(line))).out
    by_out = {line.out: line for line in lines}
    keep, stack = set(), [ret]
    while stack:
        name = stack.pop()
        if name in keep or name in INPUTS:
            continue
        keep.add(name)
        stack.extend(by_out[name].args)
    kept = [line for line in lines if line.out in keep]
    # merge identical lines (same operation on the same arguments): references go to the first
    alias, seen, merged = {}, {}, []
    for line in kept:
        line = dataclasses.replace(line, args=tuple(alias.get(a, a) for a in line.args))
        key = (line.op, line.fn, line.args, repr(line.const))
        if key in seen:
            alias[line.out] = seen[key]
        else:
            seen[key] = line.out
            merged.append(line)
    return merged


@dataclasses.dataclass
class Draw:
    """A generated program and what it took: raw draws rejected as too short before it."""

    program: Program
    too_short: int


def generate_with_stats(config: GeneratorConfig, seed: int, index: int) -> Draw:
    rng = rng_for(seed, index)
    vocab_size = int(rng.integers(config.vocab_min, config.vocab_max + 1))
    numeric = bool(rng.random() < config.numeric_share)
    vocab = list(range(vocab_size)) if numeric else [f"t{i}" for i in range(vocab_size)]
    for attempt in range(config.max_attempts):
        lines = prune(draw_lines(rng, vocab, config))
        if len(lines) >= config.min_length:
            return Draw(Program(vocab, config.max_seq_len, lines), attempt)
    raise WorkbenchError(f"no program of at least {config.min_length} lines in {config.max_attempts} draws of "
                         f"{config.n_ops} ops; lower min_length or raise n_ops")


def generate(config: GeneratorConfig, seed: int, index: int) -> Program:
    """Program ``index`` of ``seed`` (deterministic; see the module docstring)."""
    return generate_with_stats(config, seed, index).program
