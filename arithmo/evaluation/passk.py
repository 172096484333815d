"""Scores over k sampled completions per item: avg@k, unbiased pass@k, and the metrics.json block they fill.

    pass_at_k(n=8, c=3, k=2)        # 0.6428...: the chance that 2 of the 8 samples drawn without replacement hold
                                    # a correct one
    sampled_metrics(items, samples, k=4)  # {"avg_k": {...}, "pass_k": {"1": .., "2": .., "4": ..}}

- avg@k: each item's share of correct samples, averaged over items: the "pass@1 as the mean over k samples"
  that reasoning-model papers report (DeepSeek-R1, sec. 3.1; SimpleRL-Zoo; NeMo-Skills). Its 95% interval
  is a percentile bootstrap over items (arithmo.evaluation.bootstrap), beside the accuracy of each of the k
  samples taken alone and their spread. The percentile bootstrap collapses to one point when every item has
  the same score (0% or 100%: [0, 0]), which claims a certainty 30 items cannot give; `avg_k_interval` then
  uses a Wilson score interval (arithmo.evaluation.intervals): over the n items when every item's score is 0
  or 1 (the items are the unit; at k=1 this is greedy accuracy's interval), else over the n*k samples.
- pass@k for k' <= k: Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", sec. 2.1, eq. 1)
  estimate it without bias from n >= k' samples with c correct as 1 - C(n-c, k')/C(n, k'); their numerically
  stable form is the product 1 - prod_{i=n-c+1}^{n} (1 - k'/i), used here (no large binomials).
Samples missing from predictions.jsonl (an interrupted run) count as wrong and unanswered, never dropped.
"""

from __future__ import annotations

import statistics
from typing import Any

from arithmo.evaluation.bootstrap import METHOD, mean_interval
from arithmo.evaluation.intervals import METHOD as WILSON_METHOD
from arithmo.evaluation.intervals import wilson_interval


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from `n` samples of which `c` are correct (Chen et al. 2021, eq. 1).

    Raises ValueError unless 0 <= c <= n and 1 <= k <= n (pass@k needs at least k samples)."""
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"pass_at_k: {name} must be an integer, got {value!r}")
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass_at_k: expected 0 <= c <= n and n >= 1, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: k={k} needs 1 <= k <= n={n} (at least k samples per item)")
    if n - c < k:  # every draw of k samples holds a correct one
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def reported_ks(k: int) -> list[int]:
    """The k' that pass@k' is reported for: powers of two below k, and k itself (k=4: 1, 2, 4; k=6: 1, 2, 4, 6)."""
    ks, step = [], 1
    while step < k:
        ks.append(step)
        step *= 2
    return [*ks, k]


def avg_k_interval(scores: list[float], k: int) -> tuple[list[float], str]:
    """([low, high], method) of avg@k's 95% interval from each item's share of correct samples (0..1, in
    steps of 1/k). Every score 0 or 1: Wilson over the items (right items of n); all scores the same but not
    binary: Wilson over the n*k samples; otherwise the percentile bootstrap over items, which does not
    collapse there. Raises ValueError for no scores or k < 1."""
    if not scores:
        raise ValueError("avg_k_interval: no item scores")
    if k < 1:
        raise ValueError(f"avg_k_interval: k must be >= 1, got {k}")
    n = len(scores)
    if all(score in (0, 1) for score in scores):
        return list(wilson_interval(int(sum(scores)), n)), f"{WILSON_METHOD}, over items (every item 0 or 1)"
    if len(set(scores)) == 1:
        right = round(scores[0] * k) * n
        return list(wilson_interval(right, n * k)), f"{WILSON_METHOD}, over the n*k samples (every item alike)"
    return mean_interval(scores), METHOD


def sampled_metrics(items: list[dict], samples: dict[str, dict[int, dict]], k: int) -> dict[str, Any]:
    """metrics.json's `avg_k` and `pass_k` from each item's k sampled prediction lines ({item id: {j: line}}).

    avg_k: {k, accuracy (the mean over items of each item's share of correct samples), correct (summed over
    items, a float), ci95 [low, high], ci_method, per_sample [accuracy of sample j over all items],
    std_over_samples (None for k = 1), no_answer_rate and truncated_rate (over all n*k sample lines; truncated
    is None when no line records it: files from before it was recorded)}. pass_k: {"k'": estimate}.
    Raises ValueError for k < 1 or no items.
    """
    if k < 1:
        raise ValueError(f"k: expected >= 1, got {k}")
    if not items:
        raise ValueError("sampled_metrics: no items")
    scores, counts = [], []
    per_sample = [0] * k
    no_answer = truncated = known_truncation = 0
    for item in items:
        lines = samples.get(item["id"], {})
        flags = []
        for j in range(k):
            line = lines.get(j)
            right = bool(line and line.get("correct"))
            flags.append(right)
            per_sample[j] += right
            no_answer += line is None or line.get("extracted") is None
            if line is not None and line.get("truncated") is not None:
                known_truncation += 1
                truncated += bool(line["truncated"])
        counts.append(sum(flags))
        scores.append(sum(flags) / k)
    n = len(items)
    accuracy = statistics.fmean(scores)
    per_sample_acc = [right / n for right in per_sample]
    interval, method = avg_k_interval(scores, k)
    return {
        "avg_k": {"k": k, "accuracy": accuracy, "correct": sum(scores), "ci95": interval,
                  "ci_method": method, "per_sample": per_sample_acc,
                  "std_over_samples": statistics.stdev(per_sample_acc) if k > 1 else None,
                  "no_answer_rate": no_answer / (n * k),
                  "truncated_rate": truncated / (n * k) if known_truncation else None},
        "pass_k": {str(kk): statistics.fmean(pass_at_k(k, c, kk) for c in counts) for kk in reported_ks(k)},
    }
