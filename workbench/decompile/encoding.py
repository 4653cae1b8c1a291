"""The canonical program encoding (thesis §5.1.1): 5 tokens a line, one canonical order, and its inverse.

A line is ``op, arg1, arg2, arg3, out`` (NA pads):

    Map            LAM_xx   x        c:CONST|NA  out      (the constant; NA for ``not x``)
    SequenceMap    LAM_xx   x        y           out
    Select         PRED_xx  keys     queries     out
    Aggregate      selector sop      NA          out
    SelectorWidth  selector NA       NA          out

Lines are ordered by DAG depth (the longest path from tokens/indices); lines of equal depth
are ordered by (op, lambda/predicate, canonical argument names, constant), which is
deterministic because every argument sits at a smaller depth and is named already. Variables
are then renamed v1…vN in line order (tokens and indices keep their names), the two
arguments of a commutative lambda (+, *) are sorted, and the lines are framed by START and
END rows. The thesis drops Map constants from its tokens; here they are tokens
(``c:`` + the constant's repr), so that a decoded program computes what the original computed.
Its "Lambdas > Predicates > Variables" argument order is kept; the variables' own order is
kept too (it is the operation's meaning: keys vs queries, x − y).

>>> from workbench.decompile.program import Line, Program
>>> p = Program([0, 1, 2], 4, [Line("Map", "LAM_ADD", ("indices",), "a", 2),
...                            Line("Select", "PRED_LT", ("tokens", "tokens"), "b"),
...                            Line("Aggregate", None, ("b", "a"), "c")])
>>> for row in encode(p): print(" ".join(row))
START NA NA NA NA
Map LAM_ADD indices c:2 v1
Select PRED_LT tokens tokens v2
Aggregate v2 v1 NA v3
END NA NA NA NA
>>> decode(encode(p), p.vocab, p.max_seq_len).evaluate([2, 0, 1]) == p.evaluate([2, 0, 1])
True
"""

from __future__ import annotations

import ast
import hashlib
from typing import Any, Sequence

from workbench.decompile.program import COMMUTATIVE, INPUTS, Line, Program, variable_order
from workbench.decompile.generator import depths
from workbench.errors import WorkbenchError

NA, START, END = "NA", "START", "END"
ROW = 5


def const_token(value: Any) -> str:
    return NA if value is None else "c:" + repr(value)


def parse_const(token: str) -> Any:
    if token == NA:
        return None
    if not token.startswith("c:"):
        raise WorkbenchError(f"{token!r} is not a constant token (c:VALUE or NA)")
    try:
        return ast.literal_eval(token[2:])
    except (ValueError, SyntaxError) as error:
        raise WorkbenchError(f"constant token {token!r} does not hold a Python literal ({error})") from None


def canonical_lines(program: Program) -> list[Line]:
    """The program's lines in canonical order, renamed v1…vN (the output last)."""
    depth = depths(program.lines)
    names = {name: name for name in INPUTS}
    remaining = [line for line in program.lines if line.out != program.output]
    ordered: list[Line] = []

    def renamed(line: Line) -> Line:
        args = tuple(names[a] for a in line.args)
        if line.op == "SequenceMap" and line.fn in COMMUTATIVE:
            args = tuple(sorted(args, key=variable_order))
        return Line(line.op, line.fn, args, line.out, line.const)

    for level in sorted({depth[line.out] for line in remaining}):
        batch = [renamed(line) for line in remaining if depth[line.out] == level]
        batch.sort(key=lambda ln: (ln.op, ln.fn or "", [variable_order(a) for a in ln.args], const_token(ln.const)))
        for line in batch:
            names[line.out] = f"v{len(ordered) + 1}"
            ordered.append(Line(line.op, line.fn, line.args, names[line.out], line.const))
    last = renamed(program.lines[[ln.out for ln in program.lines].index(program.output)])
    ordered.append(Line(last.op, last.fn, last.args, f"v{len(ordered) + 1}", last.const))
    return ordered


def line_tokens(line: Line) -> list[str]:
    if line.op == "Map":
        row = [line.op, line.fn, line.args[0], const_token(line.const)]
    elif line.op in ("SequenceMap", "Select"):
        row = [line.op, line.fn, *line.args]
    else:
        row = [line.op, *line.args]
    return row + [NA] * (ROW - 1 - len(row)) + [line.out]


def encode(program: Program) -> list[list[str]]:
    """The token grid: START row, one 5-token row per line in canonical order, END row."""
    return [[START] + [NA] * 4] + [line_tokens(line) for line in canonical_lines(program)] + [[END] + [NA] * 4]


def decode(rows: Sequence[Sequence[str]], vocab: list, max_seq_len: int) -> Program:
    """The program a token grid describes (rows after END are ignored; raises WorkbenchError if malformed)."""
    rows = [list(r) for r in rows]
    if not rows or rows[0][0] != START:
        raise WorkbenchError("a program grid starts with a START row; encode a program with encode()")
    lines = []
    for number, row in enumerate(rows[1:], 1):
        if len(row) != ROW:
            raise WorkbenchError(f"row {number} has {len(row)} tokens; every row has {ROW}")
        op, a1, a2, a3, out = row
        if op == END:
            break
        if op == "Map":
            line = Line(op, a1, (a2,), out, parse_const(a3))
        elif op in ("SequenceMap", "Select"):
            line = Line(op, a1, (a2, a3), out)
        elif op == "Aggregate":
            line = Line(op, None, (a1, a2), out)
        elif op == "SelectorWidth":
            line = Line(op, None, (a1,), out)
        else:
            raise WorkbenchError(f"row {number}: unknown operation {op!r}")
        lines.append(line)
    else:
        raise WorkbenchError("the grid has no END row")
    program = Program(list(vocab), max_seq_len, lines)
    program.check()
    return program


def flat(rows: Sequence[Sequence[str]]) -> list[str]:
    return [token for row in rows for token in row]


def unflat(tokens: Sequence[str]) -> list[list[str]]:
    if len(tokens) % ROW:
        raise WorkbenchError(f"{len(tokens)} tokens do not make rows of {ROW}")
    return [list(tokens[i:i + ROW]) for i in range(0, len(tokens), ROW)]


def program_hash(rows: Sequence[Sequence[str]]) -> str:
    """SHA-256 (hex) of the canonical tokens: the zoo's dedup key and split key (never Python's hash())."""
    return hashlib.sha256("\n".join(" ".join(row) for row in rows).encode("utf-8")).hexdigest()
