"""Time the data build at Arithmo's scale: ~700K synthetic rows in the real source schemas.

    python bench/bench_data.py [--rows 700000] [--workdir /tmp/arithmo-bench-data]

Writes MetaMathQA (56%), MathInstruct (37%, a third of it PoT) and Lila (7%) JSONL files shaped like
the real ones (question and solution lengths near the real medians; AnsAug-style repeated questions
with different solutions, exact and near duplicates), builds them with decontamination against the
real GSM8K/MATH test rows in ../shared/data when present, and prints rows/s and peak memory per stage
against the issue's anchor: the full mix in under 5 minutes on 2 cores and under 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from pathlib import Path

from arithmo.config import load_config
from arithmo.data.build import build
from arithmo.data.recipe import DataConfig

ANCHOR_SECONDS, ANCHOR_GB = 300.0, 4.0
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORDS = ("the a of to and in is how many what total each more than she he they has have had buys sells "
         "apples dollars hours minutes miles students books cookies price cost week day year times half "
         "twice number sum difference product remaining left altogether per every pays earns saves").split()


def _sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.8 else str(rng.randint(1, 999))
                    for _ in range(n_words))


def write_inputs(workdir: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    n_meta, n_inst = int(rows * 0.56), int(rows * 0.37)
    n_lila = rows - n_meta - n_inst
    paths = {"metamathqa": workdir / "metamathqa.jsonl", "mathinstruct": workdir / "mathinstruct.jsonl",
             "lila": workdir / "lila.jsonl"}
    with open(paths["metamathqa"], "w") as f:
        question = ""
        for i in range(n_meta):
            if i % 4:  # AnsAug: the same question with another sampled solution
                question = question if question else _sentence(rng, 45)
            else:
                question = _sentence(rng, rng.randint(25, 70))
            answer = rng.randint(1, 5000)
            f.write(json.dumps({"query": question, "response": f"{_sentence(rng, rng.randint(60, 160))}\n"
                                f"The answer is: {answer}", "type": "GSM_AnsAug",
                                "original_question": question}) + "\n")
    with open(paths["mathinstruct"], "w") as f:
        prev_q = ""
        for i in range(n_inst):
            question = _sentence(rng, rng.randint(20, 60))
            if i % 50 == 1:  # a near duplicate of the previous row: one word changed
                question = prev_q.rsplit(" ", 1)[0] + " now"
            if i % 3 == 0:
                a, b = rng.randint(1, 99), rng.randint(1, 99)
                row = {"instruction": question + " Let's write a Python program to solve it.",
                       "output": f"a = {a}\nb = {b}\nanswer = a * b\nprint(answer)", "source": "data/PoT/mathqa.json"}
            else:
                row = {"instruction": question, "output": f"{_sentence(rng, rng.randint(50, 150))}\n"
                       f"The answer is {rng.randint(1, 999)}", "source": "data/CoT/gsm_rft.json"}
            f.write(json.dumps(row) + "\n")
            prev_q = question
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
        self.peak, self._stop = 0, False
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def take(self) -> int:
        peak, self.peak = max(self.peak, self.rss()), self.rss()
        return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--workdir", default="/tmp/arithmo-bench-data")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    t0 = time.perf_counter()
    paths = write_inputs(workdir / "inputs", args.rows)
    print(f"generated {args.rows:,} input rows in {time.perf_counter() - t0:.1f}s")

    benchmarks = []
    if SHARED.is_dir():
        benchmarks = [{"name": "gsm8k_test", "path": str(SHARED / "gsm8k/test_first300.jsonl")},
                      {"name": "math_test", "path": str(SHARED / "math/test_dev500.jsonl"), "question_field": "problem"}]
    cfg = load_config(DataConfig, {
        "name": "bench", "sources": [
            {"name": "metamathqa", "adapter": "metamathqa", "path": str(paths["metamathqa"])},
            {"name": "mathinstruct", "adapter": "mathinstruct", "path": str(paths["mathinstruct"])},
            {"name": "lila_ood", "adapter": "lila", "path": str(paths["lila"]), "splits": ["train", "validation", "test"]}],
        "decontaminate": {"benchmarks": benchmarks}, "val_size": 1000})
    meter = PeakRSS()
    meter.take()
    rows_by_stage, peaks = {}, {}

    def log(line: str) -> None:
        parts = line.split()
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
    print(f"{'':<22}{'arithmo':>10}{'anchor':>10}{'ratio':>8}")
    print(f"{'wall seconds':<22}{total:>10.1f}{ANCHOR_SECONDS:>10.0f}{total / ANCHOR_SECONDS:>8.2f}")
    print(f"{'peak memory GB':<22}{overall_peak / 1e9:>10.2f}{ANCHOR_GB:>10.1f}{overall_peak / 1e9 / ANCHOR_GB:>8.2f}")
    print(f"{'rows/s overall':<22}{totals['rows_in'] / total:>10,.0f}")


if __name__ == "__main__":
    main()
