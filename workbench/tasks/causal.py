"""RASP evaluated the way a causally compiled model computes it: a query sees only keys at or
before its own position, and an undefined (None) key or query selects nothing, as a zero
vector matches nothing in the compiled attention. (``rasp.evaluate`` lets every position see
the whole input.)"""

from __future__ import annotations

from typing import Sequence

from tracr.rasp import rasp


class CausalEvaluator(rasp.DefaultRASPEvaluator):
    def eval_select(self, sel: rasp.Select, xs: Sequence) -> list[list[bool]]:
        keys, queries = self.evaluate(sel.keys, xs), self.evaluate(sel.queries, xs)
        return [[j <= i and key is not None and query is not None and bool(sel.predicate(key, query))
                 for j, key in enumerate(keys)] for i, query in enumerate(queries)]


def causal_evaluate(expr: rasp.RASPExpr, xs: Sequence) -> list:
    """Values of ``expr`` at every position of ``xs`` under causal attention."""
    return CausalEvaluator().evaluate(expr, xs)
