"""Time the data build at Arithmo's scale, and its dedup side by side with two anchors on the same rows.

    python bench/bench_data.py [--rows 700000] [--anchor-rows 100000] [--workdir /tmp/arithmo-bench-data]

1. Writes MetaMathQA (56%), MathInstruct (37%, a third of it PoT) and Lila (7%) JSONL files shaped like the
   real ones (question and solution lengths near the real medians) with every drop path planted: AnsAug-style
   repeated questions with other solutions (kept), exact repeats (`duplicate`), re-worded questions with the
   same solution (`near_duplicate`), empty queries, CoT rows without an answer (`no_answer`), Lila dev/test
   rows (`split_excluded`), and GSM8K/MATH test questions rewritten in notation (`contaminated`, when the real
   rows are beside the checkout in ../shared/data).
2. Builds them (decontamination against those test rows) and prints seconds, rows/s and peak memory per
   stage against issue 14's goal: the 700K mix in 120 s and 3 GB on 2 cores.
3. On the first --anchor-rows rows of the same input, runs three dedups side by side and prints a table with
   ratios: arithmo's (exact + MinHash/LSH, `arithmo.data.dedup`), the original Arithmo rule (lowercased question
   as the key, `difflib.SequenceMatcher` ratio >= 0.7 on lowercased answers, as Arithmo's
   data_prep/prepare_model_traininig_data.py did) and datasketch's MinHashLSH (threshold 0.85, 128
   permutations; a candidate is dropped when its solution MinHash also agrees >= 0.7, arithmo's rule).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import threading
import time
from pathlib import Path

import numpy as np

from arithmo.config import load_config
from arithmo.data.build import build
from arithmo.data.dedup import exact_duplicates, near_duplicates
from arithmo.data.recipe import DataConfig
from arithmo.data.textsim import normalize_text

ANCHOR_SECONDS, ANCHOR_GB = 120.0, 3.0  # issue 14: the 700K-row mix in at most 2 minutes and 3 GB on 2 cores
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORDS = ("the a of to and in is how many what total each more than she he they has have had buys sells "
         "apples dollars hours minutes miles students books cookies price cost week day year times half "
         "twice number sum difference product remaining left altogether per every pays earns saves").split()


def _sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.8 else str(rng.randint(1, 999)) for _ in range(n_words))


def _test_questions() -> list[str]:
    if not SHARED.is_dir():
        return []
    gsm = [json.loads(line)["question"] for line in open(SHARED / "gsm8k/test_first300.jsonl")]
    math = [json.loads(line)["problem"] for line in open(SHARED / "math/test_dev500.jsonl")]
    return gsm + math


def _notation_rewrite(text: str) -> str:
    return (text.replace("\\frac", "\\dfrac").replace("\\binom", "\\dbinom").replace("(", "\\left(")
            .replace(")", "\\right)").replace("000", "{,}000").upper())


def write_inputs(workdir: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    tests = _test_questions()
    n_meta, n_inst = int(rows * 0.56), int(rows * 0.37)
    n_lila = rows - n_meta - n_inst
    paths = {"metamathqa": workdir / "metamathqa.jsonl", "mathinstruct": workdir / "mathinstruct.jsonl",
             "lila": workdir / "lila.jsonl"}
    with open(paths["metamathqa"], "w") as f:
        question, previous = "", None
        for i in range(n_meta):
            if i % 4:  # AnsAug: the same question with another sampled solution
                question = question or _sentence(rng, 45)
            else:
                question = _sentence(rng, rng.randint(25, 70))
            row = {"query": question, "response": f"{_sentence(rng, rng.randint(60, 160))}\n"
                   f"The answer is: {rng.randint(1, 5000)}", "type": "GSM_AnsAug", "original_question": question}
            if i % 97 == 96 and previous:  # an exact repeat of the previous row
                row = dict(previous)
            elif i % 1000 == 999:
                row["query"] = ""  # empty_question
            elif tests and i % 5000 == 2500:  # a test question rewritten only in notation
                row["query"] = _notation_rewrite(tests[(i // 5000) % len(tests)])
            previous = row
            f.write(json.dumps(row) + "\n")
    with open(paths["mathinstruct"], "w") as f:
        prev_q, prev_out = "", ""
        for i in range(n_inst):
            question = _sentence(rng, rng.randint(20, 60))
            if i % 3 == 0:
                a, b = rng.randint(1, 99), rng.randint(1, 99)
                row = {"instruction": question + " Let's write a Python program to solve it.",
                       "output": f"a = {a}\nb = {b}\nanswer = a * b\nprint(answer)", "source": "data/PoT/mathqa.json"}
            else:
                tail = f"The answer is {rng.randint(1, 999)}" if i % 200 else "no final answer here"
                row = {"instruction": question, "output": f"{_sentence(rng, rng.randint(50, 150))}\n{tail}",
                       "source": "data/CoT/gsm_rft.json"}
            if i % 50 == 1 and prev_q:  # the previous question with one word changed, its solution re-spaced
                row = {"instruction": prev_q.rsplit(" ", 1)[0] + " now", "output": prev_out.replace(" ", "  ", 1),
                       "source": row["source"]}
            f.write(json.dumps(row) + "\n")
            prev_q, prev_out = row["instruction"], row["output"]
    with open(paths["lila"], "w") as f:
        for i in range(n_lila):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            f.write(json.dumps({"input": _sentence(rng, rng.randint(15, 50)),
                                "output_program": f"n0 = {a}\nn1 = {b}\nanswer = n0 + n1\nprint(answer)",
                                "output_answer": str(a + b), "dataset": "synthetic",
                                "split": ["train", "dev", "test"][i % 3]}) + "\n")
    return paths


class PeakRSS:
    """Samples this process's resident memory every 20 ms; `take()` returns and resets the peak."""

    def __init__(self):
        self.peak = 0
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while True:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def take(self) -> int:
        peak, self.peak = max(self.peak, self.rss()), self.rss()
        return peak


# ---------------------------------------------------------------------------------------------------------
# the dedups side by side


def dedup_arithmo(questions: list[str], solutions: list[str]) -> np.ndarray:
    qn, sn = [normalize_text(q) for q in questions], [normalize_text(s) for s in solutions]
    drop = exact_duplicates(qn, sn)
    keep = np.nonzero(~drop)[0]
    near = near_duplicates([qn[i] for i in keep], [sn[i] for i in keep], 0.85, 0.7, 128, 16, seed=42)
    drop[keep[near]] = True
    return drop


def dedup_original_arithmo(questions: list[str], solutions: list[str]) -> np.ndarray:
    """Arithmo's rule: a row repeats a lowercased question whose kept answers it matches (difflib >= 0.7)."""
    kept: dict[str, list[str]] = {}
    drop = np.zeros(len(questions), dtype=bool)
    for i, (question, solution) in enumerate(zip(questions, solutions)):
        key, answer = question.lower(), solution.lower()
        answers = kept.get(key)
        if answers is None:
            kept[key] = [answer]
        elif max(difflib.SequenceMatcher(None, a, answer).ratio() for a in answers) < 0.7:
            answers.append(answer)
        else:
            drop[i] = True
    return drop


def dedup_datasketch(questions: list[str], solutions: list[str]) -> np.ndarray:
    """datasketch MinHashLSH on question word 3-grams; a candidate with a similar solution is dropped."""
    from datasketch import MinHash, MinHashLSH

    def minhash(text: str, num_perm: int) -> MinHash:
        words = text.split()
        shingles = {" ".join(words[j:j + 3]) for j in range(max(len(words) - 2, 1))}
        m = MinHash(num_perm=num_perm, seed=42)
        m.update_batch([s.encode() for s in shingles])
        return m

    lsh = MinHashLSH(threshold=0.85, num_perm=128)
    solution_sigs: dict[int, MinHash] = {}
    question_sigs: dict[int, MinHash] = {}
    drop = np.zeros(len(questions), dtype=bool)
    for i, (question, solution) in enumerate(zip(questions, solutions)):
        q, s = minhash(normalize_text(question), 128), minhash(normalize_text(solution), 64)
        for j in lsh.query(q):
            if q.jaccard(question_sigs[j]) >= 0.85 and s.jaccard(solution_sigs[j]) >= 0.7:
                drop[i] = True
                break
        if not drop[i]:
            lsh.insert(i, q)
            question_sigs[i], solution_sigs[i] = q, s
    return drop


def side_by_side(paths: dict[str, Path], rows: int) -> None:
    questions, solutions = [], []
    for path, q_key, s_key in ((paths["metamathqa"], "query", "response"),
                               (paths["mathinstruct"], "instruction", "output"), (paths["lila"], "input", "output_program")):
        with open(path) as f:
            for line in f:
                if len(questions) >= rows:
                    break
                row = json.loads(line)
                questions.append(row[q_key])
                solutions.append(row[s_key])
    results = {}
    for name, fn in (("arithmo (exact + MinHash/LSH)", dedup_arithmo),
                     ("Arithmo original (key + difflib)", dedup_original_arithmo),
                     ("datasketch MinHashLSH", dedup_datasketch)):
        start = time.perf_counter()
        try:
            mask = fn(questions, solutions)
        except ImportError as err:
            print(f"{name}: skipped ({err}; pip install 'datasketch==2.0.0')")
            continue
        results[name] = (time.perf_counter() - start, mask)
    ours = results["arithmo (exact + MinHash/LSH)"]
    print(f"\ndedup side by side on the same {len(questions):,} rows (ratio: seconds / arithmo's seconds)")
    print(f"{'method':<34}{'dropped':>9}{'seconds':>9}{'rows/s':>10}{'ratio':>8}{'same drops':>12}")
    for name, (seconds, mask) in results.items():
        same = (mask & ours[1]).sum() / max((mask | ours[1]).sum(), 1)
        print(f"{name:<34}{int(mask.sum()):>9,}{seconds:>9.1f}{len(mask) / seconds:>10,.0f}"
              f"{seconds / ours[0]:>8.2f}{same:>12.3f}")
    print("same drops: |A and B| / |A or B| of the dropped rows against arithmo's. Memory is measured for the\n"
          "build above only: after it, freed memory stays with the allocator and RSS growth would mislead.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--anchor-rows", type=int, default=100_000, help="rows for the side-by-side dedup")
    parser.add_argument("--workdir", default="/tmp/arithmo-bench-data")
    parser.add_argument("--skip-build", action="store_true", help="only the side-by-side dedup")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    t0 = time.perf_counter()
    paths = write_inputs(workdir / "inputs", args.rows)
    print(f"generated {args.rows:,} input rows in {time.perf_counter() - t0:.1f}s", flush=True)
    meter = PeakRSS()
    if not args.skip_build:
        benchmarks = []
        if SHARED.is_dir():
            benchmarks = [{"name": "gsm8k_test", "benchmark": "gsm8k", "path": str(SHARED / "gsm8k/test_first300.jsonl")},
                          {"name": "math_test", "benchmark": "math", "path": str(SHARED / "math/test_dev500.jsonl")}]
        cfg = load_config(DataConfig, {
            "name": "bench", "sources": [
                {"name": "metamathqa", "adapter": "metamathqa", "path": str(paths["metamathqa"])},
                {"name": "mathinstruct", "adapter": "mathinstruct", "path": str(paths["mathinstruct"])},
                {"name": "lila_ood", "adapter": "lila", "path": str(paths["lila"]), "splits": ["train"]}],
            "decontaminate": {"benchmarks": benchmarks}, "val_size": 1000})
        meter.take()
        rows_by_stage, peaks = {}, {}

        def log(line: str) -> None:
            parts = line.split()
            if len(parts) > 2 and parts[2].replace(",", "").isdigit():
                rows_by_stage[parts[1]] = int(parts[2].replace(",", ""))
                peaks[parts[1]] = meter.take()

        start = time.perf_counter()
        manifest = build(cfg, workdir / "out", log=log)
        total = time.perf_counter() - start
        overall_peak = max(peaks.values())
        print(f"\n{'stage':<12} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS GB':>12}")
        for stage, seconds in manifest["stage_seconds"].items():
            rate = rows_by_stage[stage] / seconds if seconds else float("inf")
            print(f"{stage:<12} {rows_by_stage[stage]:>9,} {seconds:>8.2f} {rate:>10,.0f} {peaks[stage] / 1e9:>12.2f}")
        totals = manifest["totals"]
        print(f"\n{totals['rows_in']:,} rows in -> {totals['rows_out']:,} out; dropped {totals['dropped']}")
        print(f"{'':<22}{'arithmo':>10}{'goal':>10}{'ratio':>8}")
        print(f"{'wall seconds':<22}{total:>10.1f}{ANCHOR_SECONDS:>10.0f}{total / ANCHOR_SECONDS:>8.2f}")
        print(f"{'peak memory GB':<22}{overall_peak / 1e9:>10.2f}{ANCHOR_GB:>10.1f}{overall_peak / 1e9 / ANCHOR_GB:>8.2f}")
        print(f"{'rows/s overall':<22}{totals['rows_in'] / total:>10,.0f}")
    if args.anchor_rows:
        side_by_side(paths, args.anchor_rows)


if __name__ == "__main__":
    main()
