"""Percentile bootstrap over items: the interval of a mean, and of a paired mean difference.

    means = bootstrap_means([1, 0, 0.5, 1], resamples=2000, seed=0)   # 2000 resampled means, seeded
    low, high = percentile_interval(means)                            # the 95% interval

Resampling is over ITEMS (each resample draws n items with replacement and averages their scores), so the
interval answers "how much would this number move on another draw of items like these"; with k samples per
item, an item's score is its mean over the k (Efron & Tibshirani 1993, "An Introduction to the Bootstrap",
ch. 13, the percentile interval). Paired: the per-item differences are resampled together, which keeps the
correlation between two runs on the same items (ibid. ch. 8; MathArena and NeMo-Skills report spreads the
same way). Seeded, so a report prints the same interval every time.
"""

from __future__ import annotations

from collections.abc import Sequence

RESAMPLES = 2000
LEVEL = 0.95
_CHUNK_CELLS = 4_000_000  # resamples x items drawn at once: ~32 MB of indices, whatever the item count


def bootstrap_means(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0) -> list[float]:
    """`resamples` means of `values` resampled with replacement (numpy's PCG64, seeded). Raises ValueError for
    no values or resamples < 1."""
    import numpy as np

    if len(values) == 0:
        raise ValueError("bootstrap: no values (an interval of nothing is not defined)")
    if resamples < 1:
        raise ValueError(f"bootstrap: resamples must be >= 1, got {resamples}")
    data = np.asarray(values, dtype=float)
    n = len(data)
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        out[start:start + count] = data[rng.integers(0, n, size=(count, n))].mean(axis=1)
    return out.tolist()


def percentile_interval(means: Sequence[float], level: float = LEVEL) -> list[float]:
    """[low, high]: the (1-level)/2 and 1-(1-level)/2 quantiles of the resampled means (linear interpolation)."""
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level}")
    tail = (1 - level) / 2
    low, high = np.quantile(np.asarray(means, dtype=float), [tail, 1 - tail])
    return [float(low), float(high)]


def mean_interval(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0,
                  level: float = LEVEL) -> list[float]:
    """The percentile-bootstrap interval of the mean of `values` (one score per item)."""
    return percentile_interval(bootstrap_means(values, resamples=resamples, seed=seed), level)


METHOD = f"percentile bootstrap over items, {RESAMPLES} resamples, seed 0, {LEVEL:.0%}"
