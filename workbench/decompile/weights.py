"""The weight encoding of a compiled model (thesis §5.1.2, Figure 5.4): one token per 512 parameters.

Parameters are read in forward order (craft level: per attention head ``w_qk`` then ``w_ov``,
per MLP ``fst`` then ``snd``), each flattened and cut into chunks of 512 (the last one
zero-padded). A token is

    [ parameter type one-hot | terminal flag | 512 parameters | architecture ]

where the terminal flag marks a parameter's last chunk and the architecture is the model's
block sequence (one HEAD/MLP one-hot per block, ``max_program_length × 5`` slots), repeated in
every token. With the thesis's types (PAD, w_qk, w_ov, fst, snd, PROGRAM_START, PROGRAM_END)
and max_program_length 15 a token is 7 + 1 + 512 + 225 = 745 wide (the width of the thesis
code's later version, whose architecture has 5 slots per line). Samples over
``MAX_WEIGHT_TOKENS`` (40, the thesis's ``max_timesteps``) are skipped by the zoo and counted.

The assembled level (:func:`assembled_weights`) reads tracr's assembled (haiku) parameters —
per layer query, key, value, linear (the attention output), then linear_1, linear_2 — with
an optional residual projection folded in (as the thesis folds a compressed model's embedding
into its weights), 9 types: a 747-wide token.

>>> import numpy as np
>>> tokens = encode_weights([("w_qk", np.ones((3, 3))), ("w_ov", np.ones((30, 20)))], ["HEAD"])
>>> tokens.shape, token_width()
((3, 745), 745)
>>> tokens[:, len(CRAFT_TYPES)].tolist()  # terminal flags: w_qk fits in one token, w_ov (600) in two
[1.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from workbench.errors import WorkbenchError

BLOCK = 512
MAX_WEIGHT_TOKENS = 40
MAX_PROGRAM_LENGTH = 15
ARCH_SLOTS_PER_LINE = 5
CRAFT_TYPES = ("PAD", "w_qk", "w_ov", "fst", "snd", "PROGRAM_START", "PROGRAM_END")
ASSEMBLED_TYPES = ("PAD", "key", "value", "query", "linear", "linear_1", "linear_2", "PROGRAM_START", "PROGRAM_END")
CRAFT_ARCH = ("PAD", "HEAD", "MLP")
ASSEMBLED_ARCH = ("PAD", "MHA", "MLP")
LEVELS = {"craft": (CRAFT_TYPES, CRAFT_ARCH), "assembled": (ASSEMBLED_TYPES, ASSEMBLED_ARCH)}


def _level(level: str):
    if level not in LEVELS:
        raise WorkbenchError(f"unknown weight level {level!r}; use one of {sorted(LEVELS)}")
    return LEVELS[level]


def token_width(level: str = "craft", max_program_length: int = MAX_PROGRAM_LENGTH) -> int:
    types, arch = _level(level)
    return len(types) + 1 + BLOCK + max_program_length * ARCH_SLOTS_PER_LINE * len(arch)


def n_weight_tokens(sizes: Sequence[int]) -> int:
    """Tokens needed for parameters of these sizes (each parameter starts a new token)."""
    return sum(max(1, math.ceil(size / BLOCK)) for size in sizes)


def encode_architecture(layer_types: Sequence[str], level: str = "craft",
                        max_program_length: int = MAX_PROGRAM_LENGTH) -> np.ndarray:
    _, arch = _level(level)
    slots = max_program_length * ARCH_SLOTS_PER_LINE
    if len(layer_types) > slots:
        raise WorkbenchError(f"{len(layer_types)} blocks do not fit the architecture's {slots} slots; "
                             f"raise max_program_length")
    encoding = np.zeros((slots, len(arch)), dtype=np.float32)
    for slot, name in enumerate(layer_types):
        encoding[slot, arch.index(name)] = 1
    return encoding.reshape(-1)


def encode_weights(weights: Sequence[tuple[str, np.ndarray]], layer_types: Sequence[str], level: str = "craft",
                   max_program_length: int = MAX_PROGRAM_LENGTH) -> np.ndarray:
    """``[n_tokens, token_width]`` float32 tokens of ``(type, matrix)`` parameters in forward order."""
    types, _ = _level(level)
    architecture = encode_architecture(layer_types, level, max_program_length)
    rows = []
    for kind, matrix in weights:
        if kind not in types[1:-2]:
            raise WorkbenchError(f"parameter type {kind!r} is not one of the {level} types {list(types[1:-2])}")
        flat = np.asarray(matrix, dtype=np.float32).reshape(-1)
        starts = range(0, max(len(flat), 1), BLOCK)
        for start in starts:
            chunk = np.zeros(BLOCK, dtype=np.float32)
            piece = flat[start:start + BLOCK]
            chunk[:len(piece)] = piece
            header = np.zeros(len(types) + 1, dtype=np.float32)
            header[types.index(kind)] = 1
            header[-1] = float(start + BLOCK >= len(flat))
            rows.append(np.concatenate([header, chunk, architecture]))
    if not rows:
        return np.zeros((0, token_width(level, max_program_length)), dtype=np.float32)
    return np.stack(rows)


def decode_weights(tokens: np.ndarray, sizes: Sequence[int] | None = None, level: str = "craft",
                   max_program_length: int = MAX_PROGRAM_LENGTH) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """The inverse: (type, flat parameters) in order and the block types. ``sizes`` trims the zero padding."""
    types, arch = _level(level)
    width = token_width(level, max_program_length)
    if tokens.ndim != 2 or tokens.shape[1] != width:
        raise WorkbenchError(f"weight tokens must be [n, {width}] for level {level!r}; got {list(tokens.shape)}")
    header = len(types) + 1
    found, pending = [], []
    for row in tokens:
        pending.append(row[header:header + BLOCK])
        if row[len(types)] == 1:
            found.append((types[int(row[:len(types)].argmax())], np.concatenate(pending)))
            pending = []
    if sizes is not None:
        found = [(kind, flat[:size]) for (kind, flat), size in zip(found, sizes)]
    arch_rows = tokens[0, header + BLOCK:].reshape(-1, len(arch)) if len(tokens) else np.zeros((0, len(arch)))
    layer_types = [arch[int(i)] for i, r in zip(arch_rows.argmax(axis=1), arch_rows) if r.any()]
    return found, layer_types


def assembled_weights(params: dict, projection: np.ndarray | None = None) -> tuple[list[tuple[str, np.ndarray]],
                                                                                  list[str]]:
    """(type, matrix) of tracr's assembled parameters, per layer attention then MLP, and the block types.

    ``projection`` ``[k, d_model]`` maps a k-dimensional basis into the residual (a compressed
    model's embedding, or the compiled basis of a model trained to hold it): it is folded in as
    the thesis does, reading weights (query, key, value, linear_1) become ``P @ W`` and writing
    weights (linear, linear_2) ``W @ P.T``.
    """
    layers = sorted({key.split("/")[1] for key in params if key.startswith("transformer/layer_")},
                    key=lambda name: int(name.split("_")[1]))
    weights, layer_types = [], []
    for layer in layers:
        for block, names, arch in (("attn", ("query", "key", "value", "linear"), "MHA"),
                                   ("mlp", ("linear_1", "linear_2"), "MLP")):
            found = [(name, np.asarray(params[f"transformer/{layer}/{block}/{name}"]["w"])) for name in names
                     if f"transformer/{layer}/{block}/{name}" in params]
            if not found:
                continue
            if projection is not None:
                found = [(name, w @ projection.T if name in ("linear", "linear_2") else projection @ w)
                         for name, w in found]
            weights += found
            layer_types.append(arch)
    return weights, layer_types
