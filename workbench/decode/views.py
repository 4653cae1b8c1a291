"""What a researcher opens first: one prompt's residual, mapped residual and decoded variables,
per aligned layer (the paper's Figures 4, 5 and 6), for a compiled program or an injected run."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pandas as pd
import torch

from workbench.align import align, compiled_hook, model_hook
from workbench.compiled import CompiledModel
from workbench.decode import decode_variables
from workbench.errors import WorkbenchError
from workbench.plots import prompt_figures, write_figure
from workbench.tasks import Example, Task, pieces


@dataclasses.dataclass
class PromptView:
    tokens: list[str]
    layers: list[str]  # one label per aligned layer
    raw: list[torch.Tensor]  # [positions, d_model] per layer
    mapped: list[torch.Tensor]  # [positions, compiled width] per layer
    tables: list[pd.DataFrame]  # decoded variables per layer


@functools.lru_cache(maxsize=None)
def _prompt_words(task: Task) -> frozenset[str]:
    """Every piece (spaces stripped) of the task's train/test prompts and supported suites, answers included."""
    examples = task.split("train", 200) + task.split("test", 200)
    examples += [e for name, suite in task.suites().items() if suite.supported for e in task.suite(name, 100)]
    return frozenset(piece.strip() for example in examples for piece in pieces(example.text))


def check_prompt(task: Task, prompt: str) -> None:
    """Refuse a prompt the compiled program cannot read as written: empty, or with a word or character
    that no prompt of the task holds (the compiled view would turn it into the filler token silently)."""
    if not prompt.strip():
        raise WorkbenchError(f"the prompt is empty; give a {task.name} prompt, e.g. {task.prompt_example!r}")
    known = _prompt_words(task)
    for position, piece in enumerate(pieces(prompt)):
        if piece.strip() and piece.strip() not in known:
            raise WorkbenchError(f"{piece.strip()!r} (piece {position} of the prompt) never occurs in {task.name} "
                                 "prompts, so the compiled program would read it as filler; use the task's "
                                 f"words and symbols, e.g. {task.prompt_example!r}")


@torch.no_grad()
def view_compiled(task: Task, compiled: CompiledModel, prompt: str) -> PromptView:
    check_prompt(task, prompt)
    tokens = task.compiled_tokens(pieces(prompt))
    residuals = compiled.residuals(tokens)
    k = compiled.n_layers
    mapped = [residuals[compiled_hook(i, k)][1:] for i in range(k + 1)]
    tables = [decode_variables(compiled, m, tokens, undefined_below=0.5) for m in mapped]
    return PromptView(tokens, [f"after {i} compiled blocks" for i in range(k + 1)], mapped, mapped, tables)


@torch.no_grad()
def view_run(task: Task, compiled: CompiledModel, model, linear_map, tokenizer, mapping, prompt: str) -> PromptView:
    alignment = align(task, Example(prompt, "", None), tokenizer, compiled.max_seq_len)
    ids = torch.tensor([alignment.model_ids], device=next(model.parameters()).device)
    names = [model_hook(block) for block in mapping]
    _, cache = model.run_with_cache(ids, names_filter=names, stop_at_layer=max(mapping) + 1)  # later blocks unused
    raw = [cache[name][0].float().cpu() for name in names]
    mapped = [linear_map(r.to(linear_map.weight)).cpu() for r in raw]
    tokens = [t.strip() or "␣" for t in alignment.model_tokens]
    tables = [decode_variables(compiled, m, tokens) for m in mapped]
    return PromptView(tokens, [f"layer {i} = {name}" for i, name in enumerate(names)], raw, mapped, tables)


VIEW_FILE = "view.json"  # the view's numbers, which ``workbench report`` draws again (figures are megabytes)


def save_view(view: PromptView, compiled: CompiledModel, path: Path) -> Path:
    """The view as JSON: tokens, layer labels, the compiled basis's labels, both residuals per layer
    (4 decimals) and the decoded tables (``DataFrame.to_dict(orient="split")``)."""
    data = {"tokens": view.tokens, "layers": view.layers, "compiled_labels": compiled.residual_labels,
            "raw": [r.numpy().round(4).tolist() for r in view.raw],
            "mapped": [m.numpy().round(4).tolist() for m in view.mapped],
            "tables": [table.to_dict(orient="split") for table in view.tables]}
    path.write_text(json.dumps(data, default=str))  # a compiled value that JSON lacks is shown as its text
    return path


def write_view(view: PromptView, compiled: CompiledModel, out: Path, png: bool = False) -> list[Path]:
    """Figures 4 (raw residual), 5 (mapped residual) and 6 (decoded variables) as HTML (and PNG), the
    last layer's table as CSV and the whole view as JSON."""
    raw, mapped, decoded = prompt_figures(view.tokens, view.layers, [r.numpy() for r in view.raw],
                                          [m.numpy() for m in view.mapped], compiled.residual_labels, view.tables)
    written = write_figure(raw, out / "residual", png) + write_figure(mapped, out / "mapped_residual", png)
    written += write_figure(decoded, out / "decoded_variables", png)
    view.tables[-1].to_csv(out / "decoded_variables.csv")
    return written + [out / "decoded_variables.csv", save_view(view, compiled, out / VIEW_FILE)]
