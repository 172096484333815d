"""Deduplication: exact repeats, then near-duplicate questions whose solutions are also alike.

Rows arrive in priority order (recipe source order, then file order); the first of a group is kept.

- exact: same normalised question AND same normalised solution. A question repeated with a different
  solution is not an exact duplicate (MetaMathQA's AnsAug rows are several solutions of one question).
- near: MinHash/LSH on question word 3-grams finds candidate pairs; a row is a near-duplicate of a
  kept row when the estimated question Jaccard >= `threshold` AND the solution Jaccard >=
  `solution_threshold`. A near-identical question with a genuinely different solution is kept, as
  Arithmo kept a repeated question when its answer differed enough.
"""

from __future__ import annotations

import hashlib

import numpy as np

from arithmo.data.textsim import band_keys, minhash_signatures


def exact_duplicates(questions: list[str], solutions: list[str]) -> np.ndarray:
    """Boolean mask: True where (question, solution) already appeared earlier. Inputs are normalised."""
    seen: set[bytes] = set()
    duplicate = np.zeros(len(questions), dtype=bool)
    for i, (question, solution) in enumerate(zip(questions, solutions)):
        key = hashlib.blake2b(
            f"{question}\x00{solution}".encode(), digest_size=16
        ).digest()
        if key in seen:
            duplicate[i] = True
        else:
            seen.add(key)
    return duplicate


def near_duplicates(
    questions: list[str],
    solutions: list[str],
    threshold: float,
    solution_threshold: float,
    num_perm: int = 128,
    bands: int = 16,
    seed: int = 1,
) -> np.ndarray:
    """Boolean mask: True where a row nearly repeats an earlier kept row. Inputs are normalised."""
    n = len(questions)
    duplicate = np.zeros(n, dtype=bool)
    if n == 0:
        return duplicate
    question_sig = minhash_signatures(questions, num_perm, seed=seed)
    # Half the permutations for solutions: they only confirm candidates (std error ~0.06 at 64).
    solution_sig = minhash_signatures(solutions, max(num_perm // 2, 16), seed=seed + 1)
    keys = band_keys(question_sig, bands)
    # Most band keys occur once, so a bucket holds a bare row index until a second row joins it: one list
    # object per key cost ~0.8 GB at 700K rows x 16 bands (bench/bench_data.py), now only shared keys pay.
    buckets: dict[int, int | list[int]] = {}
    for i in range(n):
        row_keys = keys[i].tolist()
        candidates: set[int] = set()
        for key in row_keys:
            members = buckets.get(key)
            if members is None:
                continue
            if isinstance(members, int):
                candidates.add(members)
            else:
                candidates.update(members)
        if candidates:
            idx = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
            question_sim = (question_sig[idx] == question_sig[i]).mean(axis=1)
            solution_sim = (solution_sig[idx] == solution_sig[i]).mean(axis=1)
            if np.any((question_sim >= threshold) & (solution_sim >= solution_threshold)):
                duplicate[i] = True
                continue
        for key in row_keys:
            members = buckets.get(key)
            if members is None:
                buckets[key] = i
            elif isinstance(members, int):
                buckets[key] = [members, i]
            else:
                members.append(i)
    return duplicate
