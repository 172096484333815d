"""Decontamination: find training questions that repeat an evaluation question, by three checks.

After normalisation (`arithmo.data.normalize`: LaTeX variants, digit groups, Unicode forms, case, spacing),
a training text matches a benchmark question by
- `exact`: the normalised texts are equal (catches questions shorter than n words);
- `ngram`: they share a word n-gram (default n = 10, see DecontamConfig.ngram);
- `near`: the Jaccard similarity of their word sets is >= `near_threshold` AND every number of the test
  question appears in the training question. Word sets, not n-grams: a swapped sentence order or one
  replaced word keeps a word set whole but breaks 10-grams and 3-grams (measured in DecontamConfig); the
  numbers rule keeps apart template siblings that only differ in a number (a different answer: "Compute
  $\\cos 120^\\circ$" / "Compute $\\cos 150^\\circ$"). Candidates come from MinHash/LSH (120 permutations in
  20 bands of 6: a pair at J = 0.8 becomes a candidate with probability 1 - (1 - 0.8^6)^20 = 0.998, at 0.7
  with 0.92); the verdict uses the exact Jaccard of the two sets, so it does not depend on the hash draw.
Both the row's question and, where the source records it, the question it was rewritten from (MetaMathQA's
`original_question`) are checked. A benchmark named in the recipe (`benchmark: gsm8k`) is read through
`arithmo.benchmarks`, which knows its hub id, configs, split and question column.

`match_benchmarks` returns, per benchmark, each row's strongest check with the test question it matched
and their similarity: what the build drops, counts in the manifest and shows in contamination.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arithmo.benchmarks import load_questions
from arithmo.data.recipe import BenchmarkConfig
from arithmo.data.textsim import band_keys, minhash_signatures, ngram_hashes, normalize_text, word_arrays
from arithmo.io import DataError, read_file_rows, read_hub_rows, resolve_path, sha256_file

QUESTION_FIELDS = ("question", "problem", "query", "input")
CHECKS = ("exact", "ngram", "near")  # strongest first: a row is filed under the first that fires
NONE, EXACT, NGRAM, NEAR = 0, 1, 2, 3
# The near check's index. Fixed, not the recipe seed: whether a row is contaminated must not depend on it.
NEAR_PERM, NEAR_BANDS, NEAR_SEED, SHINGLE = 120, 20, 20241129, 1
# Pairs at or above this Jaccard are kept for the report's "closest pairs" even when below the threshold.
REPORT_FLOOR = 0.5
_CHUNK = 100_000  # texts signed at a time: bounds the signatures held (100K x 128 x 4 bytes = 51 MB)


@dataclass
class Benchmark:
    name: str
    questions: list[str]  # as the benchmark writes them (the report shows these)
    source: dict  # manifest record: path + sha256, or hub id, configs and split
    ngrams: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # sorted, unique
    ngram_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # question of each
    exact: dict[str, int] = field(default_factory=dict)  # normalised question -> its index
    normalised: list[str] = field(default_factory=list)


@dataclass
class Matches:
    """One benchmark's verdict on every checked row: check (NONE/EXACT/NGRAM/NEAR), test index, Jaccard."""

    check: np.ndarray  # int8
    test_index: np.ndarray  # int64, -1 when no pair
    similarity: np.ndarray  # float32 word-set Jaccard of the pair (near misses >= REPORT_FLOOR too)
    via_original: np.ndarray  # bool: the pair is the row's original_question, not its question
    numbers_differ: np.ndarray  # bool: a near pair above the threshold kept because a test number is missing


def _questions(cfg: BenchmarkConfig, base_dir: str) -> tuple[list[str], dict]:
    """The benchmark's questions and its manifest record (path + sha256, or hub id, configs and split)."""
    path = resolve_path(cfg.path, base_dir) if cfg.path is not None else None
    if cfg.benchmark is not None:
        questions, source = load_questions(cfg.benchmark, path=path, hub=cfg.hub, config=cfg.config,
                                           split=cfg.split)
        source = {"benchmark": cfg.benchmark, **source}
    else:  # a custom set: any file or hub dataset with a question column
        loaded: dict = {}
        rows = read_file_rows(path) if path is not None else read_hub_rows(
            cfg.hub, cfg.config, cfg.split, revision=cfg.revision, resolved=loaded)
        questions = []
        for where, row in rows:
            key = cfg.question_field or next((k for k in QUESTION_FIELDS if k in row), None)
            if key is None or key not in row:
                wanted = cfg.question_field or " or ".join(QUESTION_FIELDS)
                raise DataError(f"{where}: benchmark {cfg.name} row has no question field ({wanted})")
            questions.append(str(row[key]))
        source = {} if path is not None else {"hub": cfg.hub, "configs": [cfg.config], "split": cfg.split,
                                               "revision": loaded.get("revision")}
    if path is not None:
        source = {**source, "path": str(path), "sha256": sha256_file(path)}
    return questions, source


def fingerprint(name: str, questions: list[str], source: dict, n: int) -> Benchmark:
    """A Benchmark with its normalised questions, sorted n-gram hashes (and their owners) and exact keys."""
    bench = Benchmark(name, questions, source)
    bench.normalised = [normalize_text(q) for q in questions]
    words, offsets = word_arrays(bench.normalised)
    hashes, docs = ngram_hashes(words, offsets, n, short_docs=False)
    bench.ngrams, first = np.unique(hashes, return_index=True)
    bench.ngram_owner = docs[first].astype(np.int64)
    for index, text in enumerate(bench.normalised):
        if text:
            bench.exact.setdefault(text, index)
    return bench


def load_benchmark(cfg: BenchmarkConfig, base_dir: str, n: int) -> Benchmark | str:
    """The benchmark's questions and fingerprints, or (when not required) why it was skipped."""
    try:
        questions, source = _questions(cfg, base_dir)
    except DataError as err:
        if cfg.required:
            raise DataError(f"decontaminate.benchmarks[{cfg.name}]: {err}") from err
        return f"not loaded: {err}"
    return fingerprint(cfg.name, questions, source, n)


def benchmarks_for(cfgs: list[BenchmarkConfig], base_dir: str, n: int) -> tuple[list[Benchmark], dict]:
    """Load every benchmark; the manifest entry lists each with its source, size or skip reason."""
    loaded, record = [], {}
    for cfg in cfgs:
        result = load_benchmark(cfg, base_dir, n)
        if isinstance(result, str):
            record[cfg.name] = {"skipped": result}
        else:
            loaded.append(result)
            record[cfg.name] = {**result.source, "questions": len(result.questions),
                                "ngrams": int(len(result.ngrams))}
    return loaded, record


# ---------------------------------------------------------------------------------------------------------
# the checks


def shingle_sets(texts: list[str]) -> list[frozenset[int]]:
    """Each normalised text's set of word hashes (SHINGLE = 1: single words)."""
    words, offsets = word_arrays(texts)
    hashes, docs = ngram_hashes(words, offsets, SHINGLE, short_docs=True)
    order = np.argsort(docs, kind="stable")
    hashes, docs = hashes[order], docs[order]
    bounds = np.searchsorted(docs, np.arange(len(texts) + 1))
    return [frozenset(hashes[bounds[i]:bounds[i + 1]].tolist()) for i in range(len(texts))]


def jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def numbers(text: str) -> frozenset[str]:
    """The numbers of a normalised text (its all-digit words)."""
    return frozenset(w for w in text.split() if w.isdigit())


def _exact_and_ngram(texts: list[str], benchmarks: list[Benchmark], n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per benchmark, (check, test index) per text for the exact and n-gram checks.

    The texts' n-grams are hashed once, in chunks, and looked up in every benchmark.
    """
    out = {b.name: (np.zeros(len(texts), dtype=np.int8), np.full(len(texts), -1, dtype=np.int64))
           for b in benchmarks}
    for start in range(0, len(texts), 20_000):
        part = texts[start:start + 20_000]
        words, offsets = word_arrays(part)
        hashes, docs = ngram_hashes(words, offsets, n, short_docs=False)
        for bench in benchmarks:
            check, owner = out[bench.name]
            if len(bench.ngrams) and len(hashes):
                pos = np.minimum(np.searchsorted(bench.ngrams, hashes), len(bench.ngrams) - 1)
                hit = bench.ngrams[pos] == hashes
                hit_docs, first = np.unique(docs[hit], return_index=True)  # each doc's first shared n-gram
                check[start + hit_docs] = NGRAM
                owner[start + hit_docs] = bench.ngram_owner[pos[hit][first]]
            for i, text in enumerate(part):
                index = bench.exact.get(text) if text else None
                if index is not None:
                    check[start + i], owner[start + i] = EXACT, index
    return out


def _test_index(bench: Benchmark) -> tuple[np.ndarray, dict[int, list[int]], np.ndarray]:
    """A benchmark's near-check signatures, its band-key -> questions index, and the sorted keys."""
    test_sig = minhash_signatures(bench.normalised, NEAR_PERM, SHINGLE, seed=NEAR_SEED, workers=1)
    index: dict[int, list[int]] = {}
    for t, row in enumerate(band_keys(test_sig, NEAR_BANDS).tolist()):
        for key in row:
            index.setdefault(key, []).append(t)
    return test_sig, index, np.sort(np.fromiter(index, dtype=np.uint64, count=len(index)))


def prepare(benchmarks: list[Benchmark], near: bool) -> dict:
    """What `match_benchmarks` builds from the benchmarks alone (word sets, the near check's index): built once
    and passed to every call when the rows come a chunk at a time."""
    return {"sets": {bench.name: shingle_sets(bench.normalised) for bench in benchmarks},
            "indexes": {bench.name: _test_index(bench) for bench in benchmarks} if near else {}}


def _near(unique: list[str], benchmarks: list[Benchmark], bench_sets: dict[str, list[frozenset]],
          threshold: float, unique_sets: dict[int, frozenset],
          indexes: dict | None = None) -> dict[str, dict[int, tuple[int, float]]]:
    """Per benchmark, {unique text index: (test index, exact word-set Jaccard)} for each text's best pair at
    or above REPORT_FLOOR. The texts are signed once, in chunks, and looked up in every benchmark's index."""
    floor = min(REPORT_FLOOR, threshold)
    indexes = indexes or {bench.name: _test_index(bench) for bench in benchmarks}
    best: dict[str, dict[int, tuple[int, float]]] = {bench.name: {} for bench in benchmarks}
    for start in range(0, len(unique), _CHUNK):
        part = unique[start:start + _CHUNK]
        sig = minhash_signatures(part, NEAR_PERM, SHINGLE, seed=NEAR_SEED)
        keys = band_keys(sig, NEAR_BANDS)
        for bench in benchmarks:
            test_sig, index, all_keys = indexes[bench.name]
            found = best[bench.name]
            for i in np.nonzero(np.isin(keys, all_keys).any(axis=1))[0].tolist():
                candidates = sorted({t for key in keys[i].tolist() for t in index.get(key, ())})
                estimate = (test_sig[candidates] == sig[i]).mean(axis=1)
                # The estimate's standard error at 120 permutations is <= 0.046: 0.15 below the floor loses
                # no pair that reaches it.
                for t in (c for c, e in zip(candidates, estimate.tolist()) if e >= floor - 0.15):
                    u = start + i
                    if u not in unique_sets:
                        unique_sets[u] = shingle_sets([unique[u]])[0]
                    similarity = jaccard(unique_sets[u], bench_sets[bench.name][t])
                    if similarity >= floor and (u not in found or similarity > found[u][1]):
                        found[u] = (t, similarity)
    return best


def match_benchmarks(questions: list[str], originals: list[str], benchmarks: list[Benchmark], n: int,
                     near_threshold: float | None, prepared: dict | None = None) -> dict[str, Matches]:
    """Each benchmark's Matches over rows given by normalised `questions` and `originals` ("" for none).

    `near_threshold` None turns the near check off. For each row the strongest check over its question and
    its original question is kept (exact > ngram > near); on a tie, the question. Each row's verdict depends
    on that row alone, so rows may be checked a chunk at a time (`prepared`: `prepare(benchmarks, near)`).
    """
    if not benchmarks:  # every benchmark skipped (required: false): nothing to hash or sign
        return {}
    texts = questions + originals
    unique_of: dict[str, int] = {}
    inverse = np.fromiter((unique_of.setdefault(t, len(unique_of)) for t in texts), dtype=np.int64,
                          count=len(texts))
    unique = list(unique_of)  # each distinct text is checked once (AnsAug rows repeat their question)
    unique_sets: dict[int, frozenset] = {}
    prepared = prepared or prepare(benchmarks, near_threshold is not None)
    bench_sets = prepared["sets"]
    exact_ngram = _exact_and_ngram(unique, benchmarks, n)
    near = _near(unique, benchmarks, bench_sets, near_threshold, unique_sets,
                 prepared["indexes"]) if near_threshold is not None else {}
    empty = np.array([not t for t in unique], dtype=bool)
    out: dict[str, Matches] = {}
    for bench in benchmarks:
        check, owner = exact_ngram[bench.name]
        similarity = np.zeros(len(unique), dtype=np.float32)
        differ = np.zeros(len(unique), dtype=bool)
        if near_threshold is not None:
            for u, (t, sim) in near[bench.name].items():
                if check[u] != NONE:
                    continue  # exact or n-gram already; its own pair's similarity is computed below
                owner[u], similarity[u] = t, sim
                if sim >= near_threshold:
                    if numbers(bench.normalised[t]) <= numbers(unique[u]):
                        check[u] = NEAR
                    else:  # same words, another number: a sibling problem with another answer
                        differ[u] = True
        for u in np.nonzero((check == EXACT) | (check == NGRAM))[0].tolist():  # the pair's similarity
            if u not in unique_sets:
                unique_sets[u] = shingle_sets([unique[u]])[0]
            similarity[u] = jaccard(unique_sets[u], bench_sets[bench.name][owner[u]])
        check[empty], owner[empty], similarity[empty], differ[empty] = NONE, -1, 0.0, False
        # strength: exact 3 > ngram 2 > near 1 > a near miss (pair kept for the report) 0 > nothing -1
        strength = np.where(check == NONE, np.where(owner >= 0, 0, -1), 4 - check).astype(np.int8)
        q, o = inverse[:len(questions)], inverse[len(questions):]
        use_original = (strength[o] > strength[q]) | ((strength[o] == strength[q]) & (similarity[o] > similarity[q])
                                                       & (strength[q] == 0))
        pick = np.where(use_original, o, q)
        out[bench.name] = Matches(check[pick], owner[pick], similarity[pick], use_original, differ[pick])
    return out


def contaminated_by(texts: list[str], benchmarks: list[Benchmark], n: int,
                    near_threshold: float | None = None) -> list[str | None]:
    """For each normalised text, the name of the first benchmark it matches (any check), or None."""
    matches = match_benchmarks(texts, [""] * len(texts), benchmarks, n, near_threshold)
    verdict: list[str | None] = [None] * len(texts)
    for bench in benchmarks:
        for i in np.nonzero(matches[bench.name].check != NONE)[0].tolist():
            if verdict[i] is None:
                verdict[i] = bench.name
    return verdict
