"""Vectorised text fingerprints: normalised words, word n-gram hashes, MinHash signatures.

Everything after tokenising runs on numpy arrays over many documents at once, because the full
Arithmo mix is ~700K rows and a per-row Python loop over shingles would take minutes.

- Words: `arithmo.data.normalize.normalize_text` (notation rewrites meet: "\\dfrac"/"\\frac", "1,000"/"1000").
- A word's hash is the first 8 bytes of its blake2b digest (stable across processes and runs).
- An n-gram's hash is sum_j word[p+j] * C_j mod 2^64 with fixed odd C_j: order matters, and windows
  never cross a document boundary.
- MinHash uses the multiply-shift family h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32 with odd a_i
  (Dietzfelbinger et al. 1997), one min per permutation; P(sig_i(A) == sig_i(B)) ~ Jaccard(A, B).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os

import numpy as np

from arithmo.data.normalize import normalize_text

__all__ = ["normalize_text", "word_arrays", "ngram_hashes", "minhash_signatures", "band_keys"]

_WORD_CACHE: dict[str, int] = {}
# Fixed odd multipliers for n-gram position j (from a seeded generator, so they never change).
_POSITION_MULTIPLIERS = np.random.default_rng(20240101).integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)


def _word_hash(word: str) -> int:
    value = _WORD_CACHE.get(word)
    if value is None:
        value = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        # Bounded (~60 MB): a build's memory must not grow with its vocabulary (numbers are words; issue 30).
        if len(_WORD_CACHE) < 500_000:
            _WORD_CACHE[word] = value
    return value


def word_arrays(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All documents' word hashes concatenated, and each document's start offset (len = n + 1).

    `texts` are already normalised (`normalize_text`): callers normalise once and reuse it.
    """
    lengths = np.zeros(len(texts) + 1, dtype=np.int64)
    flat: list[int] = []
    cached = _WORD_CACHE.get
    for i, text in enumerate(texts):
        words = text.split()
        values = list(map(cached, words))  # a C-level loop over the cache; misses (None) are hashed below
        if None in values:
            values = [_word_hash(w) if v is None else v for w, v in zip(words, values)]
        flat.extend(values)
        lengths[i + 1] = len(words)
    return np.array(flat, dtype=np.uint64), np.cumsum(lengths)


def ngram_hashes(words: np.ndarray, offsets: np.ndarray, n: int, short_docs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram and the document each belongs to.

    With `short_docs`, a document shorter than n words (but not empty) yields one hash of all its words,
    so it still has a fingerprint; otherwise it yields none.
    """
    if n > len(_POSITION_MULTIPLIERS):
        raise ValueError(f"n-gram length {n} is above the supported {len(_POSITION_MULTIPLIERS)}")
    total = len(words)
    n_docs = len(offsets) - 1
    doc_of_word = np.repeat(np.arange(n_docs), np.diff(offsets))
    hashes_parts, docs_parts = [], []
    if total >= n:
        starts = np.arange(total - n + 1)
        valid = starts + n <= offsets[doc_of_word[starts] + 1]
        starts = starts[valid]
        acc = np.zeros(len(starts), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                acc += words[starts + j] * _POSITION_MULTIPLIERS[j]
        hashes_parts.append(acc)
        docs_parts.append(doc_of_word[starts])
    if short_docs:
        lengths = np.diff(offsets)
        short = np.nonzero((lengths > 0) & (lengths < n))[0]
        if len(short):
            acc = np.zeros(len(short), dtype=np.uint64)
            with np.errstate(over="ignore"):
                for j in range(int(lengths[short].max())):
                    has = lengths[short] > j
                    acc[has] += words[offsets[short[has]] + j] * _POSITION_MULTIPLIERS[j]
            hashes_parts.append(acc)
            docs_parts.append(short)
    if not hashes_parts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes_parts), np.concatenate(docs_parts)


def minhash_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


# Shingles processed per numpy block: 4K shingles x 128 permutations x 8 bytes = 4 MiB, which stays in cache
# through the multiply, add and min passes; 64K (64 MiB) blocks ran ~1.5-2x slower on the 2-core machines
# (2026-11-29, 10K solutions x 128 permutations: 0.92 s at 64K, 0.44-0.70 s at 4K, under shared load).
_BLOCK_SHINGLES = 1 << 12
# Signature of a document with no words at all: matches only other empty documents.
_EMPTY = np.uint64(0xFFFFFFFF)


def _signature_block(texts: list[str], num_perm: int, shingle: int, seed: int) -> np.ndarray:
    a, b = minhash_params(num_perm, seed)
    # min(x >> 32) == min(x) >> 32 (the shift is monotone): the block keeps the raw 64-bit values and only the
    # per-document minima are shifted, one pass less over every shingle x permutation (bench/bench_data.py).
    signatures = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    words, offsets = word_arrays(texts)
    hashes, docs = ngram_hashes(words, offsets, shingle, short_docs=True)
    # Hashes come grouped by kind (full windows, then short docs); sort by document for reduceat.
    order = np.argsort(docs, kind="stable")
    hashes, docs = hashes[order], docs[order]
    values = np.empty((min(len(hashes), _BLOCK_SHINGLES), num_perm), dtype=np.uint64)
    for block_start in range(0, len(hashes), _BLOCK_SHINGLES):
        block_h = hashes[block_start : block_start + _BLOCK_SHINGLES]
        block_d = docs[block_start : block_start + _BLOCK_SHINGLES]
        out = values[: len(block_h)]
        with np.errstate(over="ignore"):
            np.multiply(block_h[:, None], a[None, :], out=out)
            out += b
        firsts = np.r_[0, np.nonzero(np.diff(block_d))[0] + 1]
        mins = np.minimum.reduceat(out, firsts, axis=0)
        rows = block_d[firsts]
        signatures[rows] = np.minimum(signatures[rows], mins)
    signatures >>= np.uint64(32)  # a document without words keeps 2^64-1 >> 32 = _EMPTY
    return signatures.astype(np.uint32)


_BLOCK_DOCS, _BLOCK_CHARS = 20_000, 4 << 20
# Set just before forking workers, so children read the texts without pickling them.
_FORK_TEXTS: list[str] = []


def _fork_block(args: tuple[int, int, int, int, int]) -> np.ndarray:
    start, stop, num_perm, shingle, seed = args
    return _signature_block(_FORK_TEXTS[start:stop], num_perm, shingle, seed)


def minhash_signatures(texts: list[str], num_perm: int, shingle: int = 3, seed: int = 1,
                       workers: int | None = None) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash signatures of each normalised text's word `shingle`-grams.

    Each distinct text is signed once (MetaMathQA repeats a question for each of its AnsAug answers) and
    copied to its rows. Blocks of 20K documents bound memory; with `workers` > 1 (default: all CPUs, on
    Linux) they run in forked processes, which read the texts from the parent's memory instead of a copy.
    """
    global _FORK_TEXTS
    first: dict[str, int] = {}
    inverse = np.fromiter((first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts))
    distinct = list(first) if len(first) < len(texts) else texts
    del first
    # Blocks of at most 20K documents and 4M characters: a block's word and shingle arrays stay a few tens of MB
    # however long the documents are (100 traces of 8K tokens are already ~3M characters).
    workers = workers or os.cpu_count() or 1
    # At least one block per worker, so a call with fewer than 20K documents still runs on every core; under
    # 2K documents one block (forking a pool costs more than signing them).
    block_docs = max(2_000, min(_BLOCK_DOCS, -(-len(distinct) // workers)))
    jobs, start, chars = [], 0, 0
    for i, text in enumerate(distinct):
        chars += len(text)
        if i + 1 - start >= block_docs or chars >= _BLOCK_CHARS:
            jobs.append((start, i + 1, num_perm, shingle, seed))
            start, chars = i + 1, 0
    if start < len(distinct):
        jobs.append((start, len(distinct), num_perm, shingle, seed))
    workers = min(workers, len(jobs))
    # Each block is copied into one preallocated array as it arrives: holding all blocks and then
    # concatenating them doubled the peak (700K rows x 128 permutations x 4 bytes = 358 MB, twice).
    signatures = np.empty((len(distinct), num_perm), dtype=np.uint32)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for start, stop, n, k, sd in jobs:
            signatures[start:stop] = _signature_block(distinct[start:stop], n, k, sd)
    else:
        _FORK_TEXTS = distinct
        try:
            with multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint) as pool:
                for (start, stop, *_), block in zip(jobs, pool.imap(_fork_block, jobs)):
                    signatures[start:stop] = block
        finally:
            _FORK_TEXTS = []
    return signatures if distinct is texts else signatures[inverse]


def _ignore_sigint() -> None:
    # A terminal's Ctrl-C reaches the pool's workers too: each printed its own KeyboardInterrupt traceback. The
    # parent stops the build (one error line) and the pool's exit terminates the workers. SIGTERM (`timeout`,
    # `kill` to the group, the pool's own terminate) ends a worker at once and silently: a forked worker would
    # otherwise inherit the CLI's handler (arithmo.data.__main__), which raises and prints a traceback.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def band_keys(signatures: np.ndarray, bands: int) -> np.ndarray:
    """(n, bands) uint64 keys: one hash per band of rows; equal keys = a candidate pair in that band."""
    n, num_perm = signatures.shape
    per_band = num_perm // bands
    keys = np.empty((n, bands), dtype=np.uint64)
    # Row chunks: widening the whole signature matrix to uint64 at once cost 2 x 717 MB at 700K rows.
    for start in range(0, n, 50_000):
        grouped = signatures[start : start + 50_000].reshape(-1, bands, per_band).astype(np.uint64)
        with np.errstate(over="ignore"):
            chunk = (grouped * _POSITION_MULTIPLIERS[:per_band]).sum(axis=2, dtype=np.uint64)
            # Mix the band index in so equal values in different bands do not collide in one dict.
            chunk += np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        keys[start : start + 50_000] = chunk
    return keys
