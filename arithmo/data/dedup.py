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


def shared_band_keys(keys: np.ndarray) -> np.ndarray:
    """(n, bands) bool: True where a row's band key also belongs to another row (a possible candidate pair)."""
    flat = keys.ravel()
    unique, counts = np.unique(flat, return_counts=True)
    repeated = unique[counts > 1]
    position = np.minimum(np.searchsorted(repeated, flat), max(len(repeated) - 1, 0))
    shared = (repeated[position] == flat) if len(repeated) else np.zeros(len(flat), dtype=bool)
    return shared.reshape(keys.shape)


def near_duplicates(
    questions: list[str],
    solutions: list[str],
    threshold: float,
    solution_threshold: float,
    num_perm: int = 128,
    bands: int = 16,
    seed: int = 1,
) -> np.ndarray:
    """Boolean mask: True where a row nearly repeats an earlier kept row. Inputs are normalised.

    Only rows with a band key that another row also has can be, or have, a candidate; every other row is
    kept without further work, and its solution is never fingerprinted. The mask is the one a pass over
    every row gives (tests/test_data_dedup_decontam.py compares them).
    """
    n = len(questions)
    duplicate = np.zeros(n, dtype=bool)
    if n == 0:
        return duplicate
    question_sig = minhash_signatures(questions, num_perm, seed=seed)
    keys = band_keys(question_sig, bands)
    shared = shared_band_keys(keys)
    rows = np.nonzero(shared.any(axis=1))[0]
    # Half the permutations for solutions: they only confirm candidates (std error ~0.06 at 64).
    solution_sig = minhash_signatures([solutions[i] for i in rows.tolist()], max(num_perm // 2, 16), seed=seed + 1)
    slot = np.full(n, -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    # A bucket holds a bare row index until a second row joins it (one list per key cost ~0.8 GB at 700K rows).
    buckets: dict[int, int | list[int]] = {}
    for i in rows.tolist():
        row_keys = keys[i][shared[i]].tolist()
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
            solution_sim = (solution_sig[slot[idx]] == solution_sig[slot[i]]).mean(axis=1)
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
