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
    every row gives (tests/test_data_dedup_decontam.py compares them). All rows are held in memory: the build
    uses `StreamingNearDedup`, which gives the same mask from rows on disk.
    """
    n = len(questions)
    duplicate = np.zeros(n, dtype=bool)
    if n == 0:
        return duplicate
    question_sig = minhash_signatures(questions, num_perm, seed=seed)
    keys = band_keys(question_sig, bands)
    rows = np.nonzero(shared_band_keys(keys).any(axis=1))[0]
    # Half the permutations for solutions: they only confirm candidates (std error ~0.06 at 64).
    solution_sig = minhash_signatures([solutions[i] for i in rows.tolist()], solution_perm(num_perm), seed=seed + 1)
    duplicate[rows] = greedy_pass(question_sig[rows], keys[rows], solution_sig, threshold, solution_threshold)
    return duplicate


def solution_perm(num_perm: int) -> int:
    return max(num_perm // 2, 16)


def greedy_pass(question_sig: np.ndarray, keys: np.ndarray, solution_sig: np.ndarray, threshold: float,
                solution_threshold: float) -> np.ndarray:
    """The near-duplicate decision over rows in priority order, given their question signatures (n, num_perm),
    band keys (n, bands) and solution signatures: a row is a duplicate when an earlier KEPT row shares one of
    its band keys (one that another row of this set also has) and both similarities reach their thresholds.
    Any set of rows closed under "shares a band key" gives the same verdicts as the whole input."""
    n = len(question_sig)
    duplicate = np.zeros(n, dtype=bool)
    shared = shared_band_keys(keys)
    # A bucket holds a bare row index until a second row joins it (one list per key cost ~0.8 GB at 700K rows).
    buckets: dict[int, int | list[int]] = {}
    for i in range(n):
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


def _same_question_pass(solution_sig: np.ndarray, solution_threshold: float) -> np.ndarray:
    """`greedy_pass` for rows that all have one question text: every question similarity is 1.0 (>= any
    threshold) and every row shares all its band keys, so an earlier kept row is a duplicate's witness exactly
    when the solutions reach `solution_threshold`."""
    n = len(solution_sig)
    duplicate = np.zeros(n, dtype=bool)
    if n <= 1:
        return duplicate
    similar = (solution_sig[:, None, :] == solution_sig[None, :, :]).mean(axis=2) >= solution_threshold \
        if n <= 64 else None
    kept: list[int] = []
    for i in range(n):
        if kept:
            if similar is not None:
                hit = bool(similar[kept, i].any())
            else:
                hit = bool(((solution_sig[kept] == solution_sig[i]).mean(axis=1) >= solution_threshold).any())
            if hit:
                duplicate[i] = True
                continue
        kept.append(i)
    return duplicate


# ---------------------------------------------------------------------------------------------------------
# the build's dedup: fingerprints on disk, grouped a part at a time (arithmo.data.spill.Partitions)

DIGEST_ROW = np.dtype([("h0", "<u8"), ("h1", "<u8"), ("row", "<i8")])  # a 16-byte digest and its row
KEY_HEAD = np.dtype([("key", "<u8"), ("head", "<i8")])  # a band key and the question (head rank) it is of


def digest_records(digests: np.ndarray, rows: np.ndarray) -> np.ndarray:
    records = np.empty(len(rows), dtype=DIGEST_ROW)
    records["h0"], records["h1"], records["row"] = digests[:, 0], digests[:, 1], rows
    return records


def _groups(records: np.ndarray, alive: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one part sorted by (digest, row) and the start index of each run of equal digests."""
    if alive is not None:
        records = records[alive[records["row"]]]
    order = np.lexsort((records["row"], records["h1"], records["h0"]))
    h0, h1, rows = records["h0"][order], records["h1"][order], records["row"][order]
    new = np.ones(len(rows), dtype=bool)
    new[1:] = (h0[1:] != h0[:-1]) | (h1[1:] != h1[:-1])
    return rows, np.nonzero(new)[0]


def exact_duplicates_on_disk(parts, n: int) -> np.ndarray:
    """`exact_duplicates` over rows 0..n-1 whose (question, solution) digests are in `parts` (DIGEST_ROW): True
    where an earlier row has the same digest. Memory: one part's records at a time, and the mask."""
    duplicate = np.zeros(n, dtype=bool)
    for k in range(parts.parts):
        rows, starts = _groups(parts.load(k), None)
        first = np.zeros(len(rows), dtype=bool)
        first[starts] = True
        duplicate[rows[~first]] = True
    return duplicate


class StreamingNearDedup:
    """`near_duplicates` for the build, with rows on disk and compact state in memory.

    1. Rows with the same normalised question (by 16-byte digest, from `question_parts`) form one node, named
       by its first row (the head); only heads are signed. 4 bytes a row in memory (each row's head).
    2. Heads' band keys go to partition files; keys that two heads share join them into components
       (scipy's connected_components over the heads that share any key).
    3. Each component (a node with several rows, or heads joined by keys) is decided alone by `greedy_pass`
       on its rows in order: a row's candidates are rows sharing a band key, all of which are in its
       component, so the verdicts are those of the whole input. A node of one question needs no question
       signatures (`_same_question_pass`). Rows in no component have no candidate and are kept.
    Signatures and solution texts are read back from disk a batch of components at a time.
    """

    def __init__(self, folder, threshold: float, solution_threshold: float, num_perm: int, bands: int,
                 seed: int, parts: int = 16, batch_rows: int = 100_000, batch_chars: int = 64 << 20):
        self.folder = folder
        self.threshold, self.solution_threshold = threshold, solution_threshold
        self.num_perm, self.bands, self.seed, self.parts = num_perm, bands, seed, parts
        self.batch_rows, self.batch_chars = batch_rows, batch_chars

    def run(self, n: int, alive: np.ndarray, question_parts, questions, solutions) -> np.ndarray:
        """Mask over rows 0..n-1 (True: near duplicate). `alive`: rows still in (after exact dedup);
        `question_parts`: Partitions of DIGEST_ROW (each row's normalised-question digest); `questions()`: an
        iterator of every row's normalised question, in order; `solutions`: a `BlobSpill` of every row's dedup
        solution text (UTF-8)."""
        import os

        from arithmo.data.spill import Partitions

        duplicate = np.zeros(n, dtype=bool)
        if n == 0:
            return duplicate
        # 1. nodes: each alive row's head (the first alive row with its question), and heads with several rows
        head_of = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
        multi = np.zeros(n, dtype=bool)
        for k in range(question_parts.parts):
            rows, starts = _groups(question_parts.load(k), alive)
            if not len(rows):
                continue
            sizes = np.diff(np.append(starts, len(rows)))
            head_of[rows] = np.repeat(rows[starts], sizes)
            multi[rows[starts][sizes > 1]] = True
        is_head = alive & (head_of == np.arange(n))
        heads = np.nonzero(is_head)[0].astype(head_of.dtype)
        del is_head
        # 2. sign the heads; their signatures to disk (by head rank), their band keys to partition files
        sig_path = self.folder / "question_sig.u32"
        keys_parts = Partitions(self.folder, "band_keys", KEY_HEAD, self.parts)
        with open(sig_path, "wb") as sig_file:
            batch: list[str] = []
            rank = 0
            chars = 0

            def flush() -> None:
                nonlocal rank, chars
                if not batch:
                    return
                sig = minhash_signatures(batch, self.num_perm, seed=self.seed)
                sig.tofile(sig_file)
                keys = band_keys(sig, self.bands)
                records = np.empty(keys.size, dtype=KEY_HEAD)
                records["key"] = keys.ravel()
                records["head"] = np.repeat(np.arange(rank, rank + len(batch)), self.bands)
                keys_parts.add(records, records["key"] >> np.uint64(40))
                rank += len(batch)
                batch.clear()
                chars = 0

            next_head = iter(heads.tolist())
            want = next(next_head, -1)
            for p, text in enumerate(questions()):
                if p == want:
                    batch.append(text)
                    chars += len(text)
                    want = next(next_head, -1)
                    if len(batch) >= self.batch_rows or chars >= self.batch_chars:
                        flush()
            flush()
        keys_parts.close()
        # 3. heads joined by a shared band key -> components
        edges_a, edges_b = [], []
        for k in range(self.parts):
            records = keys_parts.load(k)
            order = np.argsort(records["key"], kind="stable")
            key, head = records["key"][order], records["head"][order]
            same = key[1:] == key[:-1]
            edges_a.append(head[:-1][same])
            edges_b.append(head[1:][same])
            os.unlink(keys_parts.paths[k])
        a, b = np.concatenate(edges_a), np.concatenate(edges_b)
        comp_of_rank = np.arange(len(heads), dtype=np.int64)
        linked_ranks = np.zeros(0, dtype=np.int64)
        if len(a):
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            linked_ranks, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
            m = len(linked_ranks)
            graph = coo_matrix((np.ones(len(a), dtype=np.int8), (inverse[:len(a)], inverse[len(a):])), shape=(m, m))
            _, labels = connected_components(graph, directed=False)
            comp_of_rank[linked_ranks] = len(heads) + labels  # above every lone head's own number
        del a, b, edges_a, edges_b
        # 4. rows in a component: a node with several rows, or a head joined to another
        candidate_head = multi
        candidate_head[heads[linked_ranks]] = True
        # int32 where rows fit (always below 2^31 rows): these arrays are the stage's memory that grows with n
        if 2 * n >= 2**32:  # rows and component numbers are packed into 32 bits each below
            raise ValueError(f"near dedup over {n:,} rows: at most 2^31 rows per build (split the recipe)")
        small = np.int32 if 2 * n < 2**31 else np.int64
        rows = np.nonzero(alive & candidate_head[head_of])[0].astype(small)
        del candidate_head, multi
        if not len(rows):
            return duplicate
        # Sort rows by (component, row) as one packed uint64 (component << 32 | row), in place: one 8-byte array
        # instead of lexsort's index and a reordered copy of each column.
        packed = comp_of_rank[np.searchsorted(heads, head_of[rows])].astype(np.uint64) << np.uint64(32)
        packed |= rows.astype(np.uint64)
        del comp_of_rank
        packed.sort()
        rows = (packed & np.uint64(0xFFFFFFFF)).astype(small)
        comp = (packed >> np.uint64(32)).astype(small)
        del packed
        rank_of_row = np.searchsorted(heads, head_of[rows]).astype(small)
        del head_of
        bounds = np.append(np.nonzero(np.r_[True, comp[1:] != comp[:-1]])[0], len(rows))
        lone = comp[bounds[:-1]] < len(heads)  # a component of one node: one question text
        del comp
        # 5. decide the components a batch at a time
        sig_fd = os.open(sig_path, os.O_RDONLY)
        width = self.num_perm * 4
        try:
            offsets = np.frombuffer(solutions.offsets, dtype=np.int64)
            c = 0
            while c < len(bounds) - 1:
                # whole components, up to batch_rows rows or batch_chars bytes of solution text (at least one);
                # text sizes from the offsets of this window only (no per-row array over every candidate)
                lo = bounds[c]
                window = rows[lo:lo + self.batch_rows].astype(np.int64)
                ends = np.cumsum(offsets[window + 1] - offsets[window])
                c_end = c + 1
                while (c_end < len(bounds) - 1 and bounds[c_end + 1] - lo <= self.batch_rows
                       and ends[bounds[c_end + 1] - 1 - lo] <= self.batch_chars):
                    c_end += 1
                hi = bounds[c_end]
                del window, ends
                texts = [solutions.get(i).decode("utf-8") for i in rows[lo:hi].tolist()]
                solution_sig = minhash_signatures(texts, solution_perm(self.num_perm), seed=self.seed + 1)
                del texts
                for g in range(c, c_end):
                    a, b = bounds[g] - lo, bounds[g + 1] - lo
                    if lone[g]:
                        verdict = _same_question_pass(solution_sig[a:b], self.solution_threshold)
                    else:
                        ranks = rank_of_row[lo + a:lo + b].tolist()
                        question_sig = np.frombuffer(b"".join(os.pread(sig_fd, width, r * width) for r in ranks),
                                                     dtype=np.uint32).reshape(len(ranks), self.num_perm)
                        verdict = greedy_pass(question_sig, band_keys(question_sig, self.bands), solution_sig[a:b],
                                              self.threshold, self.solution_threshold)
                    duplicate[rows[lo + a:lo + b][verdict]] = True
                c = c_end
        finally:
            os.close(sig_fd)
            os.unlink(sig_path)
        return duplicate
