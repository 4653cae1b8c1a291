"""Decoded tables of compiled models equal the program's own values (causal RASP evaluation)."""

import math

import pytest
from tracr.compiler import nodes

from workbench.compiled import compile_program
from workbench.decode import compiled_table, program_variables
from workbench.tasks import TASKS, get_task, pieces
from workbench.tasks.causal import causal_evaluate

N = 100


def _same(decoded, expected):
    if isinstance(expected, float) or isinstance(decoded, float):
        return expected is not None and math.isclose(decoded, expected, abs_tol=1e-3)
    return decoded == expected


@pytest.mark.parametrize("name", list(TASKS))
def test_decoded_table_equals_the_program_values(name):
    task = get_task(name)
    compiled = compile_program(task.program(), set(task.compiled_vocab), task.max_seq_len, causal=True,
                               mlp_exactness=task.mlp_exactness)
    graph = compiled.tracr.graph
    variables = [v for v in program_variables(compiled) if v in graph.nodes and v not in ("tokens", "indices")]
    assert len(variables) >= 4
    checked = 0
    for example in task.split("test", N, seed=3):
        tokens = task.compiled_tokens(pieces(example.text))
        table = compiled_table(compiled, tokens)
        assert list(table.loc["tokens"]) == tokens and list(table.loc["indices"]) == list(range(len(tokens)))
        for variable in variables:
            expected = causal_evaluate(graph.nodes[variable][nodes.EXPR], tokens)
            for position, (decoded, value) in enumerate(zip(table.loc[variable], expected)):
                assert _same(decoded, value), (name, variable, position, decoded, value, example.text)
                checked += 1
    assert checked > N * len(variables) * 5
