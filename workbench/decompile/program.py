"""A straight-line RASP program: one operation per line, each stored in a fresh variable.

This is the representation the generator draws, the canonical encoding writes as tokens and
the zoo stores (as JSON). ``to_rasp`` builds the tracr RASP expression of the return variable;
``evaluate`` runs RASP's own evaluator on it (bidirectional or causal).

The primitives are the thesis's Table 4.1 (seed 003): a Map applies a lambda with a constant
(``x < c``), a SequenceMap applies a lambda to two variables (``x - y``), a Select compares
keys with queries through a predicate (tracr's ``Comparison``: ``key < query`` for LT).

>>> p = Program(vocab=[0, 1, 2], max_seq_len=4, lines=[
...     Line("Select", "PRED_LT", ("tokens", "tokens"), "v1"),
...     Line("SelectorWidth", None, ("v1",), "v2"),
...     Line("Map", "LAM_ADD", ("v2",), "v3", const=1)])
>>> p.evaluate([2, 0, 1])
[3, 1, 2]
>>> print(p.to_text())
v1 = Select(tokens, tokens, LT)
v2 = SelectorWidth(v1)
v3 = Map(lambda x: x + 1, v2)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Callable, Sequence

from workbench.errors import WorkbenchError

INPUTS = ("tokens", "indices")
OPS = ("Map", "Select", "SequenceMap", "Aggregate", "SelectorWidth")
OP_WEIGHTS = {"Map": 4, "Select": 3, "SequenceMap": 2, "Aggregate": 2, "SelectorWidth": 2}  # thesis §4 / its code

# Table 4.1. Comparison lambdas take the variable x and a constant c (``not x`` ignores c);
# arithmetic lambdas take x and a constant (Map) or x and a second variable y (SequenceMap).
COMPARISON_LAMBDAS: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "LAM_LT": (lambda x, y: x < y, "x < {}"),
    "LAM_LE": (lambda x, y: x <= y, "x <= {}"),
    "LAM_GT": (lambda x, y: x > y, "x > {}"),
    "LAM_GE": (lambda x, y: x >= y, "x >= {}"),
    "LAM_NE": (lambda x, y: x != y, "x != {}"),
    "LAM_EQ": (lambda x, y: x == y, "x == {}"),
    "LAM_IV": (lambda x, y: not x, "not x"),
}
ARITHMETIC_LAMBDAS: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "LAM_ADD": (lambda x, y: x + y, "x + {}"),
    "LAM_MUL": (lambda x, y: x * y, "x * {}"),
    "LAM_SUB": (lambda x, y: x - y, "x - {}"),
    "LAM_AND": (lambda x, y: x and y, "x and {}"),
    "LAM_OR": (lambda x, y: x or y, "x or {}"),
}
LAMBDAS = {**COMPARISON_LAMBDAS, **ARITHMETIC_LAMBDAS}
COMMUTATIVE = {"LAM_ADD", "LAM_MUL"}  # ``and`` / ``or`` return one operand, so their order matters
PREDICATES = ("PRED_EQ", "PRED_FALSE", "PRED_TRUE", "PRED_GEQ", "PRED_GT", "PRED_LEQ", "PRED_LT", "PRED_NEQ")


@dataclasses.dataclass(frozen=True)
class Line:
    """``out = op(fn, *args)``; ``const`` is the constant of a Map (``None`` for ``not x``).

    ``args``: Map (x,), SequenceMap (x, y), Select (keys, queries), Aggregate (selector, sop),
    SelectorWidth (selector,).
    """

    op: str
    fn: str | None
    args: tuple[str, ...]
    out: str
    const: Any = None

    def to_json(self) -> dict:
        return {"op": self.op, "fn": self.fn, "args": list(self.args), "out": self.out, "const": self.const}

    @classmethod
    def from_json(cls, data: dict) -> "Line":
        return cls(data["op"], data["fn"], tuple(data["args"]), data["out"], data.get("const"))

    def to_text(self) -> str:
        if self.op == "Map":
            body = LAMBDAS[self.fn][1].format(repr(self.const))
            return f"{self.out} = Map(lambda x: {body}, {self.args[0]})"
        if self.op == "SequenceMap":
            return f"{self.out} = SequenceMap(lambda x, y: {LAMBDAS[self.fn][1].format('y')}, {', '.join(self.args)})"
        if self.op == "Select":
            return f"{self.out} = Select({self.args[0]}, {self.args[1]}, {self.fn.removeprefix('PRED_')})"
        return f"{self.out} = {self.op}({', '.join(self.args)})"


@dataclasses.dataclass
class Program:
    """Lines in execution order; the last line's variable is the program's output."""

    vocab: list
    max_seq_len: int
    lines: list[Line]

    @property
    def output(self) -> str:
        return self.lines[-1].out

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def numeric_inputs(self) -> bool:
        return all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in self.vocab)

    def to_json(self) -> str:
        return json.dumps({"vocab": self.vocab, "max_seq_len": self.max_seq_len,
                           "lines": [line.to_json() for line in self.lines]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Program":
        data = json.loads(text)
        return cls(list(data["vocab"]), int(data["max_seq_len"]), [Line.from_json(d) for d in data["lines"]])

    def to_text(self) -> str:
        return "\n".join(line.to_text() for line in self.lines)

    def check(self) -> None:
        """Every argument is an input or an earlier variable of the right kind (raises WorkbenchError)."""
        kinds = {name: "sop" for name in INPUTS}
        for number, line in enumerate(self.lines, 1):
            if line.op not in OPS:
                raise WorkbenchError(f"line {number}: unknown operation {line.op!r}; use one of {list(OPS)}")
            wanted = {"Map": ("sop",), "SequenceMap": ("sop", "sop"), "Select": ("sop", "sop"),
                      "Aggregate": ("selector", "sop"), "SelectorWidth": ("selector",)}[line.op]
            if len(line.args) != len(wanted):
                raise WorkbenchError(f"line {number}: {line.op} takes {len(wanted)} variables, got {list(line.args)}")
            for arg, kind in zip(line.args, wanted):
                if kinds.get(arg) != kind:
                    raise WorkbenchError(f"line {number}: argument {arg!r} is not an earlier {kind} variable")
            known = PREDICATES if line.op == "Select" else LAMBDAS if line.op in ("Map", "SequenceMap") else (None,)
            if line.fn not in known:
                raise WorkbenchError(f"line {number}: {line.op} cannot take {line.fn!r}; use one of {list(known)}")
            if line.out in kinds:
                raise WorkbenchError(f"line {number}: variable {line.out!r} is assigned twice")
            kinds[line.out] = "selector" if line.op == "Select" else "sop"
        if not self.lines or kinds[self.output] != "sop":
            raise WorkbenchError("a program must end with a line that returns an SOp (not a Select)")

    # ---- RASP -------------------------------------------------------------------------
    def to_rasp(self):
        """The tracr RASP expression of the output (every variable named by its line's name)."""
        from tracr.rasp import rasp

        env: dict[str, Any] = {"tokens": rasp.tokens, "indices": rasp.indices}
        absl = logging.getLogger("absl")  # tracr warns on SequenceMap(f, x, x), which the generator may draw
        level = absl.level
        absl.setLevel(logging.ERROR)
        try:
            self._build(env, rasp)
        finally:
            absl.setLevel(level)
        return env[self.output]

    def _build(self, env: dict, rasp) -> None:
        for line in self.lines:
            args = [env[a] for a in line.args]
            if line.op == "Map":
                expr = rasp.Map(_bind(LAMBDAS[line.fn][0], line.const), args[0], simplify=False)
            elif line.op == "SequenceMap":
                expr = rasp.SequenceMap(LAMBDAS[line.fn][0], args[0], args[1])
            elif line.op == "Select":
                expr = rasp.Select(args[0], args[1], getattr(rasp.Comparison, line.fn.removeprefix("PRED_")))
            elif line.op == "Aggregate":
                expr = rasp.Aggregate(args[0], args[1])
            else:
                expr = rasp.SelectorWidth(args[0])
            env[line.out] = expr.named(line.out)

    def evaluate(self, tokens: Sequence[Any], causal: bool = False) -> list[Any]:
        """RASP's evaluation at each position; ``causal``: position i sees tokens[: i + 1] only."""
        from tracr.rasp import rasp

        expr = self.to_rasp()
        if not causal:
            return list(rasp.evaluate(expr, list(tokens)))
        return [rasp.evaluate(expr, list(tokens[: i + 1]))[i] for i in range(len(tokens))]

    def outcome(self, tokens: Sequence[Any], causal: bool = False) -> list[Any] | str:
        """``evaluate``'s outputs, or ``"undefined: <error type>"`` where RASP cannot evaluate the input
        (a Select comparing a None that an empty Aggregate produced, a mean of strings, ...)."""
        try:
            return self.evaluate(tokens, causal)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as error:
            return f"undefined: {type(error).__name__}"


def _bind(f: Callable[[Any, Any], Any], const: Any) -> Callable[[Any], Any]:
    return lambda x: f(x, const)


def variable_order(name: str) -> tuple[int, int]:
    """tokens < indices < v1 < v2 < … (the order arguments are sorted in)."""
    if name in INPUTS:
        return (0, INPUTS.index(name))
    return (1, int(name[1:])) if name[:1] == "v" and name[1:].isdigit() else (2, 0)
