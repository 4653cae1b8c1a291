"""Stage ``compress``: the residual compression of the tracr paper (§5).

One shared projection W (D × d) compresses the compiled residual: the compressed model keeps
ĥ = h_d Wᵀ, i.e. every write to the residual (embeddings, attention and MLP outputs) is
projected by P = W Wᵀ. W is trained so the compressed model keeps the compiled model's
outputs and per-layer residuals (MSE), with AdamW (weight decay 0.1) and a cosine schedule.
The result is folded into a ``HookedTransformer`` with d_model = d, decoded through Wᵀ.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from workbench.compiled import CompiledModel, residual_hook_names
from workbench.compiled.bridge import new_hooked_transformer
from workbench.padding import right_pad

WRITE_HOOKS = ("hook_embed", "hook_pos_embed")


def _write_hook_names(n_layers: int) -> list[str]:
    return [*WRITE_HOOKS] + [f"blocks.{l}.hook_{part}_out" for l in range(n_layers) for part in ("attn", "mlp")]


def projected_run(compiled: CompiledModel, ids: torch.Tensor, w: torch.Tensor):
    """Scores and residuals of the compressed model, computed in the original basis."""
    projection = w @ w.T
    hooks = [(name, lambda act, hook: act @ projection) for name in _write_hook_names(compiled.n_layers)]
    store = {}
    names = residual_hook_names(compiled.n_layers)
    hooks += [(name, lambda act, hook: store.__setitem__(hook.name, act)) for name in names]
    scores = compiled.model.run_with_hooks(ids, fwd_hooks=hooks)
    return scores, [store[name] for name in names]


@dataclasses.dataclass
class CompressionResult:
    w: torch.Tensor  # D × d
    model: object  # HookedTransformer with d_model = d
    losses: list[float]


def train_compression(compiled: CompiledModel, sample: Callable[[random.Random], Sequence], width: int,
                      steps: int = 2000, batch: int = 32, lr: float = 1e-2, weight_decay: float = 0.1,
                      seed: int = 0, progress: bool = False, batcher: Callable | None = None) -> CompressionResult:
    """Train W (D × ``width``) on inputs drawn by ``sample``; return it and the folded compressed model."""
    d_model = compiled.model.cfg.d_model
    _check_request(compiled, [width], steps)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    w = torch.nn.Parameter(torch.linalg.qr(torch.randn(d_model, width))[0])
    optimizer = torch.optim.AdamW([w], lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    compiled.model.requires_grad_(False)
    losses = []
    for _ in tqdm(range(steps), disable=not progress, desc=f"compress to d={width}"):
        ids = (batcher or (lambda b: _batch(compiled, b)))([sample(rng) for _ in range(batch)])
        with torch.no_grad():
            target_scores, cache = compiled.model.run_with_cache(ids, names_filter=lambda n: "resid" in n)
        scores, residuals = projected_run(compiled, ids, w)
        loss = F.mse_loss(scores, target_scores) + sum(
            F.mse_loss(r, cache[name]) for r, name in zip(residuals, residual_hook_names(compiled.n_layers)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    w = w.detach()
    return CompressionResult(w, fold(compiled, w), losses)


def _check_request(compiled: CompiledModel, widths: Sequence[int], steps: int, n_eval: int = 1) -> None:
    """Refuse widths outside 1..D (QR of a D × d matrix with d > D silently gives d = D) and empty runs."""
    from workbench.errors import WorkbenchError

    d_model = compiled.model.cfg.d_model
    wide = [w for w in widths if not 1 <= w <= d_model]
    if wide:
        raise WorkbenchError(f"cannot compress to width {wide[0]}: the compiled residual has {d_model} dims; "
                             f"give widths from 1 to {d_model} (--dims)")
    if steps < 1:
        raise WorkbenchError(f"steps must be at least 1 (got {steps}; --steps)")
    if n_eval < 1:
        raise WorkbenchError(f"the accuracy needs at least 1 input (got {n_eval}; --n)")


def _batch(compiled: CompiledModel, inputs: Sequence[Sequence]) -> torch.Tensor:
    """Inputs of one length per batch (the compiled lib programs are bidirectional)."""
    return torch.cat([compiled.encode(tokens) for tokens in inputs])


def fold(compiled: CompiledModel, w: torch.Tensor):
    """A HookedTransformer of width d whose residual is h_d with ĥ = h_d Wᵀ (weights folded with W)."""
    cfg = copy.deepcopy(compiled.model.cfg)
    cfg.d_model = w.shape[1]
    model = new_hooked_transformer(cfg)
    state = compiled.model.state_dict()
    folded = {}
    for name, value in state.items():
        if name in ("embed.W_E", "pos_embed.W_pos"):
            folded[name] = value @ w
        elif name.endswith(("attn.W_Q", "attn.W_K", "attn.W_V")):
            folded[name] = torch.einsum("Dd,hDk->hdk", w, value)
        elif name.endswith("attn.W_O"):
            folded[name] = value @ w
        elif name.endswith(("attn.b_O", "mlp.b_out")):
            folded[name] = value @ w
        elif name.endswith("mlp.W_in") or name == "unembed.W_U":
            folded[name] = w.T @ value
        elif name.endswith("mlp.W_out"):
            folded[name] = value @ w
        else:
            folded[name] = value
    model.load_state_dict(folded, strict=False)
    model.eval()
    return model


@torch.no_grad()
def output_accuracy(compiled: CompiledModel, compressed, inputs: Sequence[Sequence], tolerance: float = 0.02
                    ) -> float:
    """Share of inputs whose decoded outputs (all positions) equal the compiled model's
    (numerical outputs: within ``tolerance``)."""
    same = 0
    for tokens in inputs:
        ids = compiled.encode(tokens)
        ours, theirs = compiled.decode_outputs(compressed(ids)[0]), compiled.decode_outputs(compiled.model(ids)[0])
        if compiled.is_categorical:
            same += ours == theirs
        else:
            same += all(abs(a - b) <= tolerance for a, b in zip(ours, theirs))
    return same / len(inputs)


@torch.no_grad()
def layer_cosines(compiled: CompiledModel, w: torch.Tensor, inputs: Sequence[Sequence]) -> list[float]:
    """Mean cosine between the compressed residual (ĥ) and the original, per residual hook."""
    totals = None
    for tokens in inputs:
        ids = compiled.encode(tokens)
        _, cache = compiled.model.run_with_cache(ids, names_filter=lambda n: "resid" in n)
        _, residuals = projected_run(compiled, ids, w)
        values = [float(F.cosine_similarity(r, cache[n], dim=-1).mean())
                  for r, n in zip(residuals, residual_hook_names(compiled.n_layers))]
        totals = values if totals is None else [a + b for a, b in zip(totals, values)]
    return [t / len(inputs) for t in totals]


def program_sampler(name: str) -> tuple[CompiledModel, Callable[[random.Random], Sequence], Callable]:
    """The compiled model of a task or lib program, an input sampler, and the batcher for it."""
    from workbench.compiled import LIB_PROGRAMS, compile_lib
    from workbench.errors import WorkbenchError
    from workbench.tasks import TASKS, pieces

    if name in TASKS:
        task = TASKS[name]
        compiled = task.compile()
        pool = [task.compiled_tokens(pieces(e.text)) for e in task.split("train", 2000)]
        return compiled, lambda rng: rng.choice(pool), lambda batch: _padded(compiled, batch)
    key = name.removeprefix("make_")
    if key in LIB_PROGRAMS:
        entry = LIB_PROGRAMS[key]
        compiled = compile_lib(key)
        vocab = sorted(entry.vocab, key=str)
        if key == "sort_unique":  # defined for distinct keys only
            return compiled, lambda rng: rng.sample(vocab, len(vocab)), lambda batch: _batch(compiled, batch)
        return (compiled, lambda rng: [rng.choice(vocab) for _ in range(entry.max_seq_len)],
                lambda batch: _batch(compiled, batch))
    raise WorkbenchError(f"unknown program {name!r}: a task ({', '.join(TASKS)}) or a lib program "
                         f"({', '.join(LIB_PROGRAMS)})")


def _padded(compiled: CompiledModel, inputs: Sequence[Sequence]) -> torch.Tensor:
    """Right-padded with PAD (causal task programs: earlier positions are unaffected)."""
    return right_pad([compiled.encode(tokens)[0] for tokens in inputs], compiled.input_vocab.index(compiled.pad))


def sweep(name: str, widths: Sequence[int], steps: int = 1000, n_eval: int = 200, seed: int = 0,
          progress: bool = True):
    """Train one W per width; returns (table with accuracy and per-layer cosine, last result, compiled)."""
    compiled, sample, batcher = program_sampler(name)
    _check_request(compiled, widths, steps, n_eval)
    rng = random.Random(f"eval:{seed}")
    inputs = [sample(rng) for _ in range(n_eval)]
    rows, results = [], {}
    names = residual_hook_names(compiled.n_layers)
    for width in widths:
        result = train_compression(compiled, sample, width, steps=steps, seed=seed, progress=progress,
                                   batcher=batcher)
        cosines = layer_cosines(compiled, result.w, inputs[:50])
        rows.append({"program": name, "D": compiled.model.cfg.d_model, "width": width, "steps": steps,
                     "accuracy": output_accuracy(compiled, result.model, inputs), "final_loss": result.losses[-1],
                     **{f"cos {n}": round(c, 4) for n, c in zip(names, cosines)}})
        results[width] = result
    import pandas as pd

    return pd.DataFrame(rows), results, compiled, inputs
