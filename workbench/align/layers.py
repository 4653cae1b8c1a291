"""Model layers ↔ compiled layers: which model block's residual lines up with the compiled residual
after i compiled blocks, and the TransformerLens hook names of both sides.

The other half of the alignment (``workbench.align`` maps tokens to compiled positions): injection
trains through these pairs, and decode, ablate and circuits read through them.
"""

from __future__ import annotations

from workbench.errors import WorkbenchError


def layer_map(compiled_layers: int, model_layers: int, kind: str = "paper") -> list[int]:
    """Model blocks m_0 < … < m_k whose ``hook_resid_pre`` aligns with the compiled residual after i blocks.

    ``paper``: m_i = i. ``spread``: the k + 1 points spread over the model's depth (the last
    one leaves a block for the roll). Or the blocks themselves, comma-separated and increasing
    (``"0,7,14,21"``: the roll after block 21 leaves the blocks above it to read the answer). The
    model needs m_k + 1 blocks (the roll sits at the output of block m_k).

    >>> layer_map(3, 12), layer_map(3, 12, "spread"), layer_map(3, 12, "0,2,5,8")
    ([0, 1, 2, 3], [0, 4, 7, 11], [0, 2, 5, 8])
    """
    k = compiled_layers
    if kind not in ("paper", "spread"):
        return _explicit_map(kind, k, model_layers)
    if model_layers < k + 1:
        raise WorkbenchError(f"the model has {model_layers} blocks but the compiled program has {k}: it needs at "
                             f"least {k + 1} (one per compiled block, plus the block the roll sits after); "
                             "use a deeper model or a shallower program")
    if kind == "paper":
        return list(range(k + 1))
    last = model_layers - 1
    return [round(i * last / k) if k else 0 for i in range(k + 1)]


def explicit_blocks(kind: str) -> list[int]:
    """The blocks of a layer map written as blocks (``"0,7,14,21"``); one clear error for anything else.

    >>> explicit_blocks("0, 7,14")
    [0, 7, 14]
    """
    parts = kind.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise WorkbenchError(f"layer_map must be 'paper', 'spread' or model blocks like '0,7,14,21', got {kind!r} "
                             "(not a layer map)")
    return [int(part) for part in parts]


def _explicit_map(kind: str, k: int, model_layers: int) -> list[int]:
    usage = (f"use 'paper', 'spread' or {k + 1} increasing model blocks separated by commas "
             f"(one per compiled layer boundary), each below {model_layers}")
    blocks = explicit_blocks(kind)
    if len(blocks) != k + 1 or blocks[0] < 0 or blocks[-1] >= model_layers \
            or any(a >= b for a, b in zip(blocks, blocks[1:])):
        raise WorkbenchError(f"layer map {kind!r} does not fit a {k}-layer program in a {model_layers}-block model; "
                             f"{usage}")
    return blocks


def model_hook(block: int) -> str:
    """The model residual entering ``block`` (what the map reads).

    >>> model_hook(2)
    'blocks.2.hook_resid_pre'
    """
    return f"blocks.{block}.hook_resid_pre"


def compiled_hook(layer: int, compiled_layers: int) -> str:
    """The compiled residual after ``layer`` compiled blocks.

    >>> [compiled_hook(i, 2) for i in range(3)]
    ['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']
    """
    if not 0 <= layer <= compiled_layers:
        raise ValueError(f"layer {layer} outside 0..{compiled_layers}")
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"
