"""How sure an accuracy is: 95% Wilson score intervals, and the spread of maj@k over sampling seeds.

    wilson_interval(45, 60)             # (0.6277..., 0.8422...): 45 of 60 right
    metric_intervals(metrics)           # metrics.json's `ci95`: every accuracy's interval, from its counts
    seed_spread({0: pass0, 1: pass1})   # metrics.json's `maj_k_seeds`: maj@k of each seed, mean/std/min/max

Why Wilson: a benchmark score is a binomial proportion, and the textbook interval p +- z*sqrt(p(1-p)/n)
(Wald) collapses to zero width at 0% and 100% and covers the true value far less than 95% of the time for
small n or extreme p (Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion",
Statistical Science 16(2), sec. 2); the score interval keeps close to its nominal coverage there (ibid.
sec. 4.1; Newcombe 1998, "Two-sided confidence intervals for the single proportion", Statistics in
Medicine 17, method 3). It is the interval of statsmodels' `proportion_confint(method="wilson")` and scipy's
`binomtest(...).proportion_ci(method="wilson")`, without continuity correction; tests/test_eval_metrics.py
checks it against Newcombe's Table II and against values transcribed from scipy 1.17.1.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

LEVEL = 0.95
# The two-sided normal quantile for LEVEL: Phi^-1(0.975) = 1.959963984540054 (from the standard library,
# not typed in, so that a different LEVEL stays correct).
Z95 = statistics.NormalDist().inv_cdf(1 - (1 - LEVEL) / 2)
METHOD = f"Wilson score interval (Wilson 1927), {LEVEL:.0%}, z = {Z95:.6f}"


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high), both in 0..1: the Wilson score interval of `correct` successes out of `n` trials.

    Wilson, E. B. (1927), "Probable inference, the law of succession, and statistical inference", JASA
    22(158), 209-212; in Newcombe's (1998) notation, with p = correct/n and q = 1 - p:
        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p q / n + z^2 / 4n^2)
    Raises ValueError when n < 1 or correct is outside 0..n (an interval of nothing is not defined).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive number of items, got {n!r}")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= n:
        raise ValueError(f"correct: expected an integer from 0 to n={n}, got {correct!r}")
    return _wilson(correct / n, n, z)


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    shrink = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 or 1 the bound is 0 or 1 exactly; rounding can leave 1e-17 on the wrong side.
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return low, high


def interval_of(accuracy: float | None, n: int) -> list[float] | None:
    """[low, high] of an accuracy (a share, 0..1) over n items, as metrics.json stores it; None without an
    accuracy or without items. The formula needs only p and n, so files of any age work. Raises ValueError
    for an accuracy outside 0..1."""
    if accuracy is None or not n:
        return None
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ValueError(f"accuracy: expected a share from 0 to 1, got {accuracy!r}")
    return list(_wilson(float(accuracy), int(n), Z95))


def metric_intervals(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's `ci95`: {method, accuracy, accuracy_flexible, accuracy_math_verify, maj_k: [low, high] or
    None, by_level / by_type: {group: [low, high]}}, each computed from that accuracy and its n.

    Works on files of any age (what is absent is None or {}), so `arithmo.report` and the app show an
    interval for results written before this key existed.
    """
    n = metrics["n"]
    maj = metrics.get("maj_k") or {}
    return {
        "method": METHOD,
        "accuracy": interval_of(metrics["accuracy"], n),
        "accuracy_flexible": interval_of(metrics.get("accuracy_flexible"), n),
        "accuracy_math_verify": interval_of(metrics.get("accuracy_math_verify"), n),
        "maj_k": interval_of(maj.get("accuracy"), n),
        **{key: {name: interval_of(group["accuracy"], group["n"]) for name, group in (metrics.get(key) or {}).items()}
           for key in ("by_level", "by_type")},
    }


def intervals_of(metrics: dict[str, Any]) -> dict[str, Any]:
    """The `ci95` a metrics.json holds, or the same computed from its counts when it predates the key."""
    return metrics.get("ci95") or metric_intervals(metrics)


def seed_spread(passes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's `maj_k_seeds` from {seed: that seed's metrics} (each with a maj_k), seeds in the order given.

    {seeds, k, n, accuracy: [per seed], correct: [per seed], ci95: [[low, high] per seed], mean, std, min,
    max}. std is the sample standard deviation (n - 1 in the denominator: the seeds are a sample of the
    seeds one could have drawn), None with a single seed. Raises ValueError naming a seed without maj@k.
    """
    if not passes:
        raise ValueError("seed_spread: no seed passes given")
    rows = []
    for seed, metrics in passes.items():
        maj = metrics.get("maj_k")
        if not maj:
            raise ValueError(f"seed {seed}: its metrics have no maj_k (seeds need k > 1)")
        rows.append((seed, maj, metrics["n"]))
    values = [maj["accuracy"] for _, maj, _ in rows]
    return {
        "seeds": [seed for seed, _, _ in rows],
        "k": rows[0][1]["k"],
        "n": rows[0][2],
        "accuracy": values,
        "correct": [maj["correct"] for _, maj, _ in rows],
        "ci95": [interval_of(maj["accuracy"], n) for _, maj, n in rows],
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }
