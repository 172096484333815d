"""Decontamination: drop training rows whose question overlaps an evaluation set's question.

A row is contaminated by a benchmark when, after normalisation (lowercase, punctuation to spaces),
- its question equals a benchmark question (catches questions shorter than n words), or
- it shares any word n-gram with a benchmark question (default n = 10, see DecontamConfig).
Both the row's question and, where the source records it, the question it was rewritten from
(MetaMathQA's `original_question`) are checked. A benchmark named in the recipe (`benchmark: gsm8k`) is
read through `arithmo.benchmarks`, which knows its hub id, configs, split and question column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arithmo.benchmarks import load_questions
from arithmo.data.recipe import BenchmarkConfig
from arithmo.io import DataError, read_file_rows, read_hub_rows, resolve_path, sha256_file
from arithmo.data.textsim import ngram_hashes, normalize_text, word_arrays

QUESTION_FIELDS = ("question", "problem", "query", "input")


@dataclass
class Benchmark:
    name: str
    questions: list[str]
    source: dict  # manifest record: path + sha256, or hub id
    ngrams: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # sorted
    exact: set[str] = field(default_factory=set)


def _questions(cfg: BenchmarkConfig, base_dir: str) -> tuple[list[str], dict]:
    """The benchmark's questions and its manifest record (path + sha256, or hub id, configs and split)."""
    path = resolve_path(cfg.path, base_dir) if cfg.path is not None else None
    if cfg.benchmark is not None:
        questions, source = load_questions(cfg.benchmark, path=path, hub=cfg.hub, config=cfg.config,
                                           split=cfg.split)
        source = {"benchmark": cfg.benchmark, **source}
    else:  # a custom set: any file or hub dataset with a question column
        rows = read_file_rows(path) if path is not None else read_hub_rows(cfg.hub, cfg.config, cfg.split)
        source = {"hub": cfg.hub, "configs": [cfg.config], "split": cfg.split} if path is None else {}
        questions = []
        for where, row in rows:
            key = cfg.question_field or next((k for k in QUESTION_FIELDS if k in row), None)
            if key is None or key not in row:
                wanted = cfg.question_field or " or ".join(QUESTION_FIELDS)
                raise DataError(f"{where}: benchmark {cfg.name} row has no question field ({wanted})")
            questions.append(str(row[key]))
    if path is not None:
        source = {**source, "path": str(path), "sha256": sha256_file(path)}
    return questions, source


def load_benchmark(cfg: BenchmarkConfig, base_dir: str, n: int) -> Benchmark | str:
    """The benchmark's questions and fingerprints, or (when not required) why it was skipped."""
    try:
        questions, source = _questions(cfg, base_dir)
    except DataError as err:
        if cfg.required:
            raise DataError(f"decontaminate.benchmarks[{cfg.name}]: {err}") from err
        return f"not loaded: {err}"
    bench = Benchmark(cfg.name, questions, source)
    normalised = [normalize_text(q) for q in questions]
    words, offsets = word_arrays(normalised)
    hashes, _ = ngram_hashes(words, offsets, n, short_docs=False)
    bench.ngrams = np.unique(hashes)
    bench.exact = set(normalised)
    return bench


def contaminated_by(texts: list[str], benchmarks: list[Benchmark], n: int) -> list[str | None]:
    """For each normalised text, the name of the first benchmark it overlaps, or None."""
    verdict: list[str | None] = [None] * len(texts)
    chunk = 20_000
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        words, offsets = word_arrays(part)
        hashes, docs = ngram_hashes(words, offsets, n, short_docs=False)
        for bench in benchmarks:
            hit_docs = np.unique(docs[np.isin(hashes, bench.ngrams)])
            hits = set(hit_docs.tolist())
            hits.update(i for i, t in enumerate(part) if t and t in bench.exact)
            for i in hits:
                if verdict[start + i] is None:
                    verdict[start + i] = bench.name
    return verdict


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

