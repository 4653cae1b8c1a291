"""Right-padding of token-id rows, the one helper every stage batches with.

Causal models read a right-padded row like the unpadded one at every real position, so the
stages pad on the right and read only ``[:length]`` of each row.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence


def right_pad(rows: Sequence[Sequence[int] | torch.Tensor], value: int, device: str | torch.device | None = None
              ) -> torch.Tensor:
    """Id rows of different lengths as one ``[len(rows), longest]`` long tensor, filled with ``value``.

    >>> right_pad([[5, 6, 7], [8]], 0)
    tensor([[5, 6, 7],
            [8, 0, 0]])
    """
    tensors = [torch.as_tensor(row, dtype=torch.long).reshape(-1) for row in rows]
    return pad_sequence(tensors, batch_first=True, padding_value=value).to(device)


def length_mask(lengths: Sequence[int], width: int | None = None) -> torch.Tensor:
    """``[len(lengths), width]`` booleans, True on the first ``lengths[i]`` positions of row i.

    >>> length_mask([3, 1])
    tensor([[ True,  True,  True],
            [ True, False, False]])
    """
    lengths = torch.as_tensor(list(lengths), dtype=torch.long)
    width = int(lengths.max()) if width is None else width
    return torch.arange(width) < lengths[:, None]
