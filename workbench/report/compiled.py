"""The page of a compiled task, before any injection: its RASP program, where each operation sits in the
compiled model (what each head and MLP reads and writes), the residual stream of an example prompt, and
its tier-1 circuit (the structural truth, and the methods' scores when ``workbench circuits`` has run)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from workbench.report.page import Page, Section


def compiled_page(task_name: str, circuits_dir: str | Path | None = None) -> Page:
    from workbench.circuits import build_graph, tier1
    from workbench.compiled.figures import residual_figure
    from workbench.tasks import get_task, pieces

    task = get_task(task_name)
    compiled = task.compile()
    cfg = compiled.model.cfg
    program = Section("program", "RASP program")
    program.text(f"{task.description}. Example prompt: <code>{task.prompt_example}</code>.")
    program.text("Operations in the order they are computed (tokens and indices are the inputs).")
    program.table(program_table(task.program(), compiled.variables))

    structure = Section("structure", "Compiled structure")
    structure.text(f"{cfg.n_layers} blocks (attention + MLP), {cfg.n_heads} heads a block, residual width "
                   f"{cfg.d_model}, context {compiled.max_seq_len}; output variable <code>{compiled.output_variable}"
                   f"</code>. Padding heads and empty MLPs are left out.")
    structure.table(pd.DataFrame([
        (c.name, c.layer, ", ".join(c.operations), "; ".join(f"{k}: {' '.join(v)}" for k, v in c.reads.items()),
         " ".join(c.writes)) for c in compiled.components],
        columns=["component", "layer", "operations", "reads", "writes"]))

    residual = Section("residual", "Residual stream of the example prompt")
    tokens = task.compiled_tokens(pieces(task.prompt_example))
    residual.figure("residual-figure", residual_figure(compiled, tokens))

    circuits = Section("circuits", "Tier-1 circuit (head level)")
    graph = build_graph(compiled.model, "head")
    truth = tier1(compiled, graph, "zero")
    circuits.text(f"The structural truth for zero ablation: {int(truth.edges.sum())} of {len(graph.edges)} edges and "
                  f"{int(truth.nodes.sum())} of {len(truth.nodes)} components are in the circuit (a component is in it "
                  "iff what it writes is on a path to the output).")
    circuits.table(pd.DataFrame({"true edge": truth.edge_names(graph)}))
    folder = Path(circuits_dir or f"runs/circuits/{task.name}")
    summary = folder / "summary.csv"
    if summary.is_file():
        from workbench.plots import roc_figure

        scores = pd.read_csv(summary)
        circuits.text(f"Methods scored against it ({scores.ablation.iloc[0]} ablation, {int(scores.resamples.iloc[0])} "
                      f"resamples; from {folder}).")
        circuits.table(pd.DataFrame({
            "method": scores.method,
            "edge AUC": [f"{a:.3f} ± {s:.3f}" for a, s in zip(scores.edge_auc, scores.edge_auc_std)],
            "node AUC": [f"{a:.3f} ± {s:.3f}" for a, s in zip(scores.node_auc, scores.node_auc_std)],
            "seconds": scores.seconds.map(lambda v: f"{v:.1f}")}))
        if (folder / "roc.csv").is_file():
            circuits.figure("circuits-roc", roc_figure(pd.read_csv(folder / "roc.csv"), "ROC against the known circuit"))
    else:
        circuits.lacks("method scores", f"workbench circuits --compiled {task.name} --out {folder}")
    return Page(f"compiled {task.name}", f"The {task.name} task's RASP program compiled by tracr",
                [program, structure, residual, circuits])


def program_table(output, variables: list[str]) -> pd.DataFrame:
    """One row per RASP expression reachable from ``output``, inputs before what reads them.

    tracr numbers an expression's label when it is first read, so a fresh program's labels differ from those
    of the compiled (cached) one: each is shown under the compiled ``variables`` name of the same base name.
    """
    from tracr.rasp import rasp

    ordered, seen = [], set()

    def visit(expr) -> None:
        if expr.unique_id in seen:
            return
        seen.add(expr.unique_id)
        for child in expr.children:
            visit(child)
        ordered.append(expr)

    visit(output)
    by_base: dict[str, list[str]] = {}
    for variable in variables:
        by_base.setdefault(_base(variable), []).append(variable)

    def name(expr) -> str:
        same = by_base.get(_base(expr.label), [])
        return same[0] if len(same) == 1 else expr.label

    rows = []
    for expr in ordered:
        detail = _predicate_name(expr.predicate) if isinstance(expr, rasp.Select) else ""
        encoding = rasp.get_encoding(expr).value if isinstance(expr, rasp.SOp) else "selector"
        rows.append((name(expr), type(expr).__name__, ", ".join(name(c) for c in expr.children), detail, encoding))
    return pd.DataFrame(rows, columns=["expression", "operation", "reads", "predicate", "encoding"])


def _base(label: str) -> str:
    """``count_x_2`` -> ``count_x`` (tracr's number dropped)."""
    return re.sub(r"_\d+$", "", label)


def _predicate_name(predicate) -> str:
    """A tracr comparison's name (EQ, LT, ...); a predicate written as a Python function is "custom"."""
    name = getattr(predicate, "name", None) or getattr(predicate, "__name__", "")
    return "custom" if name in ("", "<lambda>") else name
