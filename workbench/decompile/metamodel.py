"""The meta-model of thesis §5.2: GPT-2 blocks, trained from scratch, that read weight tokens and write the program grid.

Input: a compiled model's weight tokens (:mod:`.weights`, 745 wide), zero-padded to
``max_weight_tokens``. Each token is (input dropout) → a linear projection → LayerNorm, then
GPT-2's learned positional encoding is added by ``GPT2Model`` itself (``inputs_embeds``). After the
weight tokens come ``rows`` learned query embeddings, one per row of the program grid (START,
up to 15 lines, END); the hidden state at query position r is read by five linear heads, one
per grid column (op, three arguments, return variable), each over its own column's classes.
Every slot is predicted at once (non-autoregressive). GPT-2 attention is causal, so, as the
thesis does (its Figure 5.5), the outputs come after every input: each row sees all weight
tokens. Padding weight tokens are masked out of attention.

The LayerNorm after the projection is ours: craft weights span 0 to 100 (MLP exactness), and
a projection of such raw values would put those scales into the residual stream.

>>> import torch
>>> model = MetaModel(MetaModelConfig(n_layers=1, d_model=32, n_heads=2, max_weight_tokens=4), [3, 4, 5, 6, 7])
>>> logits = model(torch.zeros(2, 4, 745), torch.ones(2, 4, dtype=torch.bool))
>>> [tuple(t.shape) for t in logits]
[(2, 17, 3), (2, 17, 4), (2, 17, 5), (2, 17, 6), (2, 17, 7)]
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterable, Sequence

import torch
from torch import nn

from workbench.decompile.encoding import END, NA, ROW, START
from workbench.decompile.program import INPUTS, LAMBDAS, OPS, PREDICATES
from workbench.decompile.weights import MAX_PROGRAM_LENGTH, MAX_WEIGHT_TOKENS, token_width
from workbench.errors import WorkbenchError

PAD = "PAD"  # the slots of the rows after END (trained, never scored)
UNKNOWN = "<unknown>"  # a class for tokens the training split never had (always scored wrong)


@dataclasses.dataclass(frozen=True)
class MetaModelConfig:
    """Sizes of the meta-model; the defaults are the CPU default (thesis: GPT-2 Large, 36 × 1280)."""

    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 4
    dropout: float = 0.1  # GPT-2's own (embedding, attention, residual)
    input_dropout: float = 0.05  # on the weight tokens' features (thesis: 5 %, then 30 %)
    max_weight_tokens: int = MAX_WEIGHT_TOKENS
    token_width: int = token_width()
    rows: int = MAX_PROGRAM_LENGTH + 2  # START, the lines, END

    def __post_init__(self):
        checks = [("n_layers", self.n_layers >= 1, "at least 1"), ("d_model", self.d_model >= 1, "at least 1"),
                  ("n_heads", self.n_heads >= 1 and self.d_model % self.n_heads == 0, "a divisor of d_model"),
                  ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
                  ("input_dropout", 0 <= self.input_dropout < 1, "in [0, 1)"),
                  ("max_weight_tokens", self.max_weight_tokens >= 1, "at least 1"),
                  ("rows", self.rows >= 3, "at least 3 (START, a line, END)")]
        for name, ok, rule in checks:
            if not ok:
                raise WorkbenchError(f"meta-model setting {name}={getattr(self, name)!r} must be {rule}")


class GridVocabulary:
    """The classes of each of the 5 grid columns, from the training grids (sorted: the same on every machine)."""

    def __init__(self, columns: Sequence[Sequence[str]]):
        if len(columns) != ROW:
            raise WorkbenchError(f"a grid vocabulary has {ROW} columns, got {len(columns)}")
        self.columns = [list(column) for column in columns]
        self.index = [{token: i for i, token in enumerate(column)} for column in self.columns]

    @classmethod
    def from_grids(cls, grids: Iterable[Sequence[Sequence[str]]]) -> "GridVocabulary":
        seen = [Counter() for _ in range(ROW)]
        for grid in grids:
            for row in grid:
                for column, token in enumerate(row):
                    seen[column][token] += 1
        return cls([[PAD, UNKNOWN, *sorted(counter)] for counter in seen])

    def sizes(self) -> list[int]:
        return [len(column) for column in self.columns]

    def encode(self, grid: Sequence[Sequence[str]], rows: int) -> torch.Tensor:
        """``[rows, 5]`` class ids of a grid, PAD rows after it, UNKNOWN for tokens not in the vocabulary."""
        if len(grid) > rows:
            raise WorkbenchError(f"a program grid of {len(grid)} rows does not fit the meta-model's {rows} rows")
        padded = [list(row) for row in grid] + [[PAD] * ROW for _ in range(rows - len(grid))]
        unknown = [self.index[c][UNKNOWN] for c in range(ROW)]
        return torch.tensor([[self.index[c].get(token, unknown[c]) for c, token in enumerate(row)] for row in padded])

    def decode(self, ids: torch.Tensor) -> list[list[str]]:
        """``[rows, 5]`` class ids → token grid (all rows, PAD rows included)."""
        return [[self.columns[c][int(i)] for c, i in enumerate(row)] for row in ids.tolist()]

    def to_json(self) -> dict:
        return {"columns": self.columns}

    @classmethod
    def from_json(cls, data: dict) -> "GridVocabulary":
        return cls(data["columns"])


class MetaModel(nn.Module):
    """Weight tokens ``[B, T, W]`` (T = max_weight_tokens) and their mask ``[B, T]`` → 5 × ``[B, rows, classes]``."""

    def __init__(self, config: MetaModelConfig, column_sizes: Sequence[int]):
        super().__init__()
        from transformers import GPT2Config, GPT2Model

        self.config = config
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.project = nn.Linear(config.token_width, config.d_model)
        self.input_norm = nn.LayerNorm(config.d_model)
        self.row_queries = nn.Parameter(torch.randn(config.rows, config.d_model) * 0.02)
        gpt = GPT2Config(vocab_size=1, n_positions=config.max_weight_tokens + config.rows, n_embd=config.d_model,
                         n_layer=config.n_layers, n_head=config.n_heads, resid_pdrop=config.dropout,
                         embd_pdrop=config.dropout, attn_pdrop=config.dropout, bos_token_id=None, eos_token_id=None)
        self.blocks = GPT2Model(gpt)
        # read through inputs_embeds only, so the token embedding never gets a gradient; frozen, or
        # torchrun's DistributedDataParallel waits for it and fails at the second step
        self.blocks.wte.weight.requires_grad_(False)
        self.heads = nn.ModuleList(nn.Linear(config.d_model, size) for size in column_sizes)

    def forward(self, weights: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        batch, length, _ = weights.shape
        if length != self.config.max_weight_tokens:
            raise WorkbenchError(f"weight tokens must be padded to {self.config.max_weight_tokens}, got {length}")
        tokens = self.input_norm(self.project(self.input_dropout(weights)))
        queries = self.row_queries.unsqueeze(0).expand(batch, -1, -1)
        attention = torch.cat([mask, torch.ones(batch, self.config.rows, dtype=mask.dtype, device=mask.device)], 1)
        hidden = self.blocks(inputs_embeds=torch.cat([tokens, queries], 1),
                             attention_mask=attention.long()).last_hidden_state[:, length:]
        return [head(hidden) for head in self.heads]


def predict_ids(logits: list[torch.Tensor]) -> torch.Tensor:
    """The argmax class of every slot: ``[B, rows, 5]``."""
    return torch.stack([column.argmax(-1) for column in logits], -1)


def constrained_grid(scores: Sequence[torch.Tensor], vocabulary: GridVocabulary) -> list[list[str]]:
    """One program's grid from its slot scores (``scores[c]``: ``[rows, classes of column c]``), read row by row
    and, in each slot, the best-scoring token that the grammar allows there.

    Independent argmaxes give lines no program has (a variable in a Map's constant slot, an
    argument not yet defined); here an op comes first (END only after an SOp line, selector ops only
    once a selector exists), then its arguments from the lambdas / predicates / constants it takes and
    the variables in scope of the kind it reads (sop or selector), the return variable ``v<row>`` (the
    canonical naming) and NA where the op has no argument. Rows after END are PAD.
    """
    rows = scores[0].shape[0]
    kinds = {name: "sop" for name in INPUTS}
    grid = [[START] + [NA] * (ROW - 1)]

    def best(column: int, row: int, allowed) -> str:
        tokens = vocabulary.columns[column]
        candidates = [i for i, token in enumerate(tokens) if allowed(token)]
        return tokens[max(candidates, key=lambda i: float(scores[column][row, i]))] if candidates else NA

    def sop(token: str) -> bool:
        return kinds.get(token) == "sop"

    def selector(token: str) -> bool:
        return kinds.get(token) == "selector"

    for row in range(1, rows):
        may_end = row > 1 and grid[-1][0] != "Select"
        if row == rows - 1:
            op = END
        else:
            op = best(0, row, lambda t: (t == END and may_end) or (
                t in OPS and (t not in ("Aggregate", "SelectorWidth") or "selector" in kinds.values())))
        if op == END:
            grid.append([END] + [NA] * (ROW - 1))
            break
        if op == "Map":
            fn = best(1, row, lambda t: t in LAMBDAS)
            line = [op, fn, best(2, row, sop), NA if fn == "LAM_IV" else best(3, row, lambda t: t.startswith("c:"))]
        elif op in ("SequenceMap", "Select"):
            known = LAMBDAS if op == "SequenceMap" else PREDICATES
            line = [op, best(1, row, lambda t: t in known), best(2, row, sop), best(3, row, sop)]
        elif op == "Aggregate":
            line = [op, best(1, row, selector), best(2, row, sop), NA]
        else:
            line = [op, best(1, row, selector), NA, NA]
        out = f"v{row}"
        kinds[out] = "selector" if op == "Select" else "sop"
        grid.append(line + [out])
    return grid + [[PAD] * ROW for _ in range(rows - len(grid))]


def grid_loss(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Thesis §5.1.1: the sum over the 5 columns of the cross-entropy, averaged over rows and programs."""
    return sum(nn.functional.cross_entropy(column.flatten(0, 1), targets[..., c].flatten())
               for c, column in enumerate(logits))
