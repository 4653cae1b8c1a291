"""Reading a run's ``metrics.jsonl`` as curves: its training time, and curves thinned for a page.

Pure pandas (no torch), so that pages built from a run's files stay fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def training_seconds(metrics: pd.DataFrame) -> pd.Series:
    """Cumulative wall-clock seconds at each row of a run's ``metrics.jsonl``; a gap of over a minute
    between two steps (a resumed run's pause) is not training time.

    >>> training_seconds(pd.DataFrame({"time": [0.0, 2.0, 4.0, 1000.0, 1003.0]})).tolist()
    [0.0, 2.0, 4.0, 4.0, 7.0]
    """
    gaps = metrics["time"].diff().fillna(0)
    return gaps.where(gaps < 60, 0).cumsum()


def downsample(curve: pd.DataFrame, max_points: int, x: str = "step") -> pd.DataFrame:
    """At most ``max_points`` rows of ``curve``: consecutive rows in equal-sized buckets, each bucket one row
    holding the mean of every column and, as ``x``, the bucket's last ``x`` (so the last step stays the last).

    A 10,000-step loss curve drawn point by point weighs megabytes and shows noise; bucket means keep its shape.

    >>> downsample(pd.DataFrame({"step": [1, 2, 3, 4, 5, 6], "loss": [6., 4., 3., 3., 2., 0.]}), 3).values.tolist()
    [[2.0, 5.0], [4.0, 3.0], [6.0, 1.0]]
    """
    if len(curve) <= max_points:
        return curve.reset_index(drop=True)
    bucket = np.arange(len(curve)) * max_points // len(curve)
    means = curve.groupby(bucket).mean()
    means[x] = curve[x].groupby(bucket).last()
    return means.reset_index(drop=True)
