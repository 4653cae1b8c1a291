"""A zoo split as tensors for the meta-model: padded weight tokens, their noise scales, the target grids.

Read from the zoo's Parquet shards with PyArrow (:func:`~workbench.decompile.zoo.load_zoo`); each
program's craft weights become weight tokens (:func:`~workbench.decompile.weights.encode_weights`)
zero-padded to ``max_weight_tokens``. For the thesis's input noise (§5.5: Gaussian noise of
0.4 × the standard deviation) each token also records the standard deviation of the parameter
(weight matrix) it holds and how many of its 512 value slots are real, so noise goes onto the
parameter values only, scaled per parameter, never onto the type, flag and architecture
features or the zero padding.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from workbench.decompile.encoding import unflat
from workbench.decompile.metamodel import GridVocabulary
from workbench.decompile.program import Program
from workbench.decompile.weights import BLOCK, CRAFT_TYPES, encode_weights
from workbench.decompile.zoo import load_zoo, weights_of_row
from workbench.errors import WorkbenchError

VALUES_START = len(CRAFT_TYPES) + 1  # the 512 parameter values follow the type one-hot and the terminal flag
COLUMNS = ["id", "index", "tokens", "program", "weight_kinds", "weight_shapes", "weights", "layer_types",
           "n_weight_tokens", "causal"]


@dataclasses.dataclass
class Examples:
    """One split: ``weights [N, T, 745]``, ``mask [N, T]``, ``value_std`` and ``value_count`` ``[N, T]``."""

    ids: list[str]
    indices: list[int]
    grids: list[list[list[str]]]
    programs: list[Program]
    causal: list[bool]
    weights: torch.Tensor
    mask: torch.Tensor
    value_std: torch.Tensor
    value_count: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)

    def targets(self, vocabulary: GridVocabulary, rows: int) -> torch.Tensor:
        return torch.stack([vocabulary.encode(grid, rows) for grid in self.grids]) if self.grids else \
            torch.zeros(0, rows, len(vocabulary.columns), dtype=torch.long)


def weight_inputs(weights: list[tuple[str, np.ndarray]], layer_types: list[str], max_weight_tokens: int):
    """(tokens ``[T, 745]``, mask ``[T]``, value_std ``[T]``, value_count ``[T]``) of one model, padded to T."""
    tokens = encode_weights(weights, layer_types)
    if len(tokens) > max_weight_tokens:
        raise WorkbenchError(f"the model has {len(tokens)} weight tokens; the meta-model reads at most "
                             f"{max_weight_tokens}")
    stds, counts = [], []
    for _, matrix in weights:
        values = np.asarray(matrix, dtype=np.float32).reshape(-1)
        for start in range(0, max(len(values), 1), BLOCK):
            stds.append(float(values.std()) if len(values) else 0.0)
            counts.append(len(values[start:start + BLOCK]))
    padded = np.zeros((max_weight_tokens, tokens.shape[1]), dtype=np.float32)
    padded[:len(tokens)] = tokens
    mask = np.arange(max_weight_tokens) < len(tokens)
    std = np.zeros(max_weight_tokens, dtype=np.float32)
    std[:len(stds)] = stds
    count = np.zeros(max_weight_tokens, dtype=np.int64)
    count[:len(counts)] = counts
    return padded, mask, std, count


def load_examples(zoo: Path | str, split: str, max_weight_tokens: int, limit: int | None = None) -> Examples:
    """The split's programs in index order (the first ``limit`` of them), as tensors."""
    frame = load_zoo(zoo, split, columns=COLUMNS)
    if limit is not None:
        frame = frame.head(limit)
    parts = [weight_inputs(weights_of_row(row), list(row["layer_types"]), max_weight_tokens)
             for _, row in frame.iterrows()]
    width = parts[0][0].shape[1] if parts else 0

    def stacked(i, dtype, shape):
        return torch.from_numpy(np.stack([p[i] for p in parts])) if parts else torch.zeros(shape, dtype=dtype)

    return Examples(
        ids=list(frame["id"]), indices=[int(i) for i in frame["index"]],
        grids=[unflat(list(tokens)) for tokens in frame["tokens"]],
        programs=[Program.from_json(text) for text in frame["program"]], causal=[bool(c) for c in frame["causal"]],
        weights=stacked(0, torch.float32, (0, max_weight_tokens, width)),
        mask=stacked(1, torch.bool, (0, max_weight_tokens)),
        value_std=stacked(2, torch.float32, (0, max_weight_tokens)),
        value_count=stacked(3, torch.long, (0, max_weight_tokens)))


def add_noise(weights: torch.Tensor, value_std: torch.Tensor, value_count: torch.Tensor, scale: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``weights`` with N(0, (scale · std of the parameter)²) added to each real parameter value."""
    if not scale:
        return weights
    slots = torch.arange(BLOCK, device=weights.device)
    real = (slots < value_count.unsqueeze(-1)).to(weights.dtype)  # [B, T, 512]
    noise = torch.randn(real.shape, generator=generator, device=weights.device) * real
    noisy = weights.clone()
    noisy[..., VALUES_START:VALUES_START + BLOCK] += noise * (scale * value_std).unsqueeze(-1)
    return noisy
