"""arithmo's grader against Hugging Face math-verify on the same (pred, gold) pairs, plus timings.

    python bench/compare_math_verify.py [--max-rows N]

Pairs: (a) every MATH dev row in ../shared/data/math/test_dev500.jsonl, gold = the last \\boxed{} of its
solution, pred = the gold itself and perturbed forms (some still equal, some wrong on purpose);
(b) the GSM8K test rows (gold = the number after ####) with the same idea; (c) the pitfall table of
tests/test_grading_equal.py and the grader-v2 kinds of tests/test_grading_kinds.py (issue 11), one
group per kind; (d) "PoT stdout": what a program printed (tests/test_grading_pyoutput.py), read by
arithmo's `answer_from_output` and handed to math-verify as printed. Each pair carries the intended
verdict, so the table counts, per group and form, how often each grader matches it and how often the
two graders agree; every pair where they disagree is listed. Then timing tables: seconds per
comparison over all pairs (ratio to math-verify), comparisons/s on GSM8K-style pairs for both graders
in the same run (best of 3 windows of >= 1 s each), and the cost of arithmo's time limits (deadline.py).

math-verify is optional (the `dev` extra installs it); without it the script says so and reports
arithmo alone. Its "Timeout during comparison" log line comes from the pitfall row 10^{10^{10}}: its
5 s signal-based limit fires there (arithmo refuses the power tower before computing it).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

from arithmo.grading import answer_from_output, is_equivalent, normalize_answer
from arithmo.deadline import call_with_deadline
from arithmo.grading.symbolic import expressions_equal

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def last_boxed(solution: str) -> str | None:
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    if start == -1:
        return None
    brace, depth = solution.find("{", start), 0
    for index in range(brace, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[index], 0)
        if depth == 0:
            return solution[brace + 1: index]
    return None


def math_forms(gold: str) -> list[tuple[str, str, bool]]:
    """(form name, pred, intended verdict) for one MATH gold."""
    forms = [("same", gold, True), ("dfrac", gold.replace("\\frac", "\\dfrac"), True),
             ("no spaces", gold.replace(" ", ""), True)]
    fraction = re.fullmatch(r"(-?)\\[dt]?frac\{?(\d+)\}?\{?(\d+)\}?", gold.replace(" ", ""))
    if re.fullmatch(r"-?\d+", gold):
        forms += [("decimal", f"{gold}.0", True), ("integer + 1", str(int(gold) + 1), False)]
    elif fraction:
        sign, top, bottom = fraction.groups()
        value = Fraction(int(top), int(bottom)) * (-1 if sign else 1)
        forms.append(("decimal", f"{float(value):.12g}", True))
        if top != bottom:
            forms.append(("fraction flipped", f"{sign}\\frac{{{bottom}}}{{{top}}}", False))
    percent = re.fullmatch(r"(\d+(?:\.\d+)?)\\%", gold)
    if percent:
        forms += [("percent as number", percent.group(1), True),
                  # issue 25: a percent gold is also its fraction (CMATH's scorer reads it so)
                  ("percent /100", str(Fraction(percent.group(1)) / 100 * 1.0), True),
                  ("percent /1000", str(Fraction(percent.group(1)) / 1000 * 1.0), False)]
    pair = re.fullmatch(r"\((-?\d+),\s*(-?\d+)\)", gold)
    if pair and pair.group(1) != pair.group(2):
        forms.append(("tuple reversed", f"({pair.group(2)}, {pair.group(1)})", False))
    return forms


def gsm8k_forms(gold: str) -> list[tuple[str, str, bool]]:
    value = int(gold.replace(",", ""))
    return [("same", gold, True), ("thousands commas", f"{value:,}", True), ("decimal", f"{value}.00", True),
            ("dollar sign", f"\\${value}", True), ("integer + 1", str(value + 1), False),
            ("times 10", str(value * 10), False)]


# tests/test_grading_kinds.py tables, one group each (issue 11's kinds)
KIND_TABLES = ("PLUS_MINUS", "UNITS", "WRAPPERS", "REPEATING_DECIMALS", "RELATIONS", "JOINED_BY_WORDS", "ESCAPES",
               "THOUSANDS", "EXACT_GOLDS")
POT_TABLES = ("LISTS", "NUMPY", "COMPLEX", "SYMPY", "TEXT")  # tests/test_grading_pyoutput.py


V3_TABLES = ("MIXED_NUMBERS", "SPACES_AND_ESCAPES", "UNITS", "REMARKS", "MARKS", "CONSTANTS_AND_POWERS", "LISTS",
             "FULL_WIDTH")


def pitfall_pairs() -> list[tuple[str, str, str, str, bool]]:
    sys.path.insert(0, str(REPO / "tests"))
    import test_grading_false_accepts
    import test_grading_kinds
    import test_grading_pyoutput
    from test_grading_equal import EQUIVALENCE_CASES

    pairs = [("pitfalls", "table row", pred, gold, expected) for pred, gold, expected in EQUIVALENCE_CASES
             if pred is not None]
    for table in KIND_TABLES:
        pairs += [("v2 kinds", table.lower(), pred, gold, expected)
                  for pred, gold, expected in getattr(test_grading_kinds, table)]
    for table in V3_TABLES:  # issue 25: every rule that removes or joins characters, with its false accepts
        pairs += [("v3 kinds", table.lower(), pred, gold, expected)
                  for pred, gold, expected in getattr(test_grading_false_accepts, table)]
    for table in POT_TABLES:
        pairs += [("PoT stdout", table.lower(), stdout, gold, expected)
                  for stdout, gold, expected in getattr(test_grading_pyoutput, table)]
    return pairs


def load_pairs(max_rows: int | None) -> list[tuple[str, str, str, str, bool]]:
    """(group, form, pred, gold, intended) for every pair; groups whose file is absent are skipped, said."""
    pairs = []
    math_path = SHARED / "math" / "test_dev500.jsonl"
    if math_path.is_file():
        for line in open(math_path, encoding="utf-8").readlines()[:max_rows]:
            gold = last_boxed(json.loads(line)["solution"])
            pairs += [("MATH", form, pred, gold, intended) for form, pred, intended in math_forms(gold)]
    else:
        print(f"skipped MATH rows: {math_path} is absent")
    gsm_path = SHARED / "gsm8k" / "test_first300.jsonl"
    if gsm_path.is_file():
        for line in open(gsm_path, encoding="utf-8").readlines()[:max_rows]:
            gold = json.loads(line)["answer"].rsplit("####", 1)[1].strip()
            pairs += [("GSM8K", form, pred, gold, intended) for form, pred, intended in gsm8k_forms(gold)]
    else:
        print(f"skipped GSM8K rows: {gsm_path} is absent")
    return pairs + pitfall_pairs()


def math_verify_grader():
    """math-verify's verdict function, or None (with the reason printed) when it is not installed."""
    try:
        from math_verify import parse, verify
    except ImportError as error:
        print(f"math-verify is not installed ({error}); `pip install 'math-verify[antlr4_13_2]'` "
              "(the dev extra) to compare. Reporting arithmo alone.")
        return None

    def grade(pred: str, gold: str) -> bool:
        # both sides boxed: math-verify's extraction then takes exactly this answer
        return verify(parse(f"\\boxed{{{gold}}}"), parse(f"\\boxed{{{pred}}}"))

    return grade


def ours(group: str, pred: str, gold: str) -> bool:
    """arithmo's verdict; a PoT printout goes through `answer_from_output` first, as evaluation does."""
    return is_equivalent(answer_from_output(pred) if group == "PoT stdout" else pred, gold)


def compare(pairs, math_verify) -> tuple[list, dict]:
    rows, seconds = [], {"arithmo": 0.0, "math-verify": 0.0}
    for group, form, pred, gold, intended in pairs:
        start = time.perf_counter()
        verdict = ours(group, pred, gold)
        seconds["arithmo"] += time.perf_counter() - start
        theirs = None
        if math_verify is not None:
            start = time.perf_counter()
            theirs = math_verify(pred, gold)
            seconds["math-verify"] += time.perf_counter() - start
        rows.append((group, form, pred, gold, intended, verdict, theirs))
    return rows, seconds


def print_tables(rows, seconds, have_math_verify: bool) -> None:
    keys = sorted({(r[0], r[1], r[4]) for r in rows}, key=lambda k: (k[0], not k[2], k[1]))
    header = f"{'group':10} {'form':18} {'intended':8} {'n':>5} {'arithmo ok':>10}"
    if have_math_verify:
        header += f" {'mv ok':>6} {'agree':>6} {'disagree':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    totals = Counter()
    for group, form, intended in keys:
        selected = [r for r in rows if (r[0], r[1], r[4]) == (group, form, intended)]
        ours_ok = sum(r[5] == intended for r in selected)
        line = f"{group:10} {form:18} {str(intended):8} {len(selected):5d} {ours_ok:10d}"
        totals.update(n=len(selected), ours=ours_ok)
        if have_math_verify:
            theirs_ok = sum(r[6] == intended for r in selected)
            agree = sum(r[5] == r[6] for r in selected)
            line += f" {theirs_ok:6d} {agree:6d} {len(selected) - agree:8d}"
            totals.update(theirs=theirs_ok, agree=agree)
        print(line)
    line = f"{'all':10} {'':18} {'':8} {totals['n']:5d} {totals['ours']:10d}"
    if have_math_verify:
        line += f" {totals['theirs']:6d} {totals['agree']:6d} {totals['n'] - totals['agree']:8d}"
    print(line)

    if have_math_verify:
        disagreements = [r for r in rows if r[5] != r[6]]
        print(f"\n{len(disagreements)} pairs where the graders disagree "
              "(intended = the verdict the form was built to have):")
        for group, form, pred, gold, intended, verdict, theirs in disagreements:
            print(f"  {group:10} {form:18} pred={pred!r:40} gold={gold!r:40} intended={intended} "
                  f"arithmo={verdict} math-verify={theirs}")
    wrong = [r for r in rows if r[5] != r[4]]
    print(f"\n{len(wrong)} pairs where arithmo differs from the intended verdict")
    for group, form, pred, gold, intended, verdict, _ in wrong:
        print(f"  {group:10} {form:18} pred={pred!r:40} gold={gold!r:40} intended={intended} arithmo={verdict}")

    n = len(rows)
    print(f"\n{'grader':12} {'total s':>8} {'us/pair':>9} {'ratio to math-verify':>21}")
    for name, total in seconds.items():
        if name == "math-verify" and not have_math_verify:
            continue
        ratio = f"{total / seconds['math-verify']:.2f}" if have_math_verify and seconds["math-verify"] else "-"
        print(f"{name:12} {total:8.3f} {total / n * 1e6:9.1f} {ratio:>21}")


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rate(function, count: int, min_seconds: float = 1.0, repeats: int = 3) -> float:
    """Units/s of `function` (doing `count` units): the best of `repeats` windows of >= `min_seconds`
    (the best, not the mean: other processes on a shared machine only ever slow a window down)."""
    function()  # warm-up: imports and caches
    best = 0.0
    for _ in range(repeats):
        done, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < min_seconds or done == 0:
            function()
            done += count
        best = max(best, done / elapsed)
    return best


def time_gsm8k_pairs(math_verify) -> None:
    """Comparisons/s of both graders on GSM8K-style pairs, in this run: each gold against itself, and
    against the next row's gold (the mismatch path)."""
    gsm_path = SHARED / "gsm8k" / "test_first300.jsonl"
    if not gsm_path.is_file():
        print(f"\nskipped the GSM8K speed table: {gsm_path} is absent")
        return
    golds = [json.loads(line)["answer"].rsplit("####", 1)[1].strip() for line in open(gsm_path, encoding="utf-8")]
    print("\nGSM8K-style pairs, comparisons/s (best of 3 windows of >= 1 s):")
    print(f"{'pairs':10} {'arithmo':>10} {'math-verify':>12} {'ratio':>7}")
    for label, preds in (("same", golds), ("next row", golds[1:] + golds[:1])):
        pairs = list(zip(preds, golds))
        arithmo = _rate(lambda: [is_equivalent(p, g) for p, g in pairs], len(pairs))
        if math_verify is None:
            print(f"{label:10} {arithmo:10,.1f} {'-':>12} {'-':>7}")
            continue
        theirs = _rate(lambda: [math_verify(p, g) for p, g in pairs], len(pairs))
        print(f"{label:10} {arithmo:10,.1f} {theirs:12,.1f} {arithmo / theirs:7.2f}")


def time_deadlines() -> None:
    """What each way of bounding a sympy comparison costs (the figures quoted in deadline.py)."""
    args = ("x(x+1)^2", "x^3 + 2x^2 + x", 1e-12, 0.0)
    direct = _median_seconds(lambda: expressions_equal(*args), 30)
    alarm = _median_seconds(lambda: call_with_deadline(expressions_equal, args, 2.0), 30)
    results = {}

    def in_thread():
        start = time.perf_counter()
        call_with_deadline(expressions_equal, args, 2.0)  # starts the worker process
        results["first"] = time.perf_counter() - start
        results["warm"] = _median_seconds(lambda: call_with_deadline(expressions_equal, args, 2.0), 30)
        start = time.perf_counter()
        is_equivalent("(a+b+c+d)^{6}(x+y)", "(a+b+c+d)^{5}(x+y+1)", grade_timeout_s=0.5)
        results["timeout"] = time.perf_counter() - start

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    start = time.perf_counter()
    is_equivalent("(a+b+c+d)^{6}(x+y)", "(a+b+c+d)^{5}(x+y+1)", grade_timeout_s=0.5)
    alarm_timeout = time.perf_counter() - start
    print("\nbounding one sympy comparison (x(x+1)^2 vs x^3+2x^2+x), median of 30:")
    print(f"{'how':44} {'seconds':>9} {'ratio to direct':>16}")
    print(f"{'direct call, no limit':44} {direct:9.5f} {1.0:16.2f}")
    print(f"{'main thread, SIGALRM timer':44} {alarm:9.5f} {alarm / direct:16.2f}")
    print(f"{'other thread, worker process (warm)':44} {results['warm']:9.5f} {results['warm'] / direct:16.2f}")
    print(f"{'other thread, first call (starts the worker)':44} {results['first']:9.5f} "
          f"{results['first'] / direct:16.2f}")
    print(f"{'0.5 s limit reached, main thread':44} {alarm_timeout:9.5f} {'':>16}")
    print(f"{'0.5 s limit reached, worker (then killed)':44} {results['timeout']:9.5f} {'':>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-rows", type=int, default=None, help="use only the first N MATH and GSM8K rows")
    args = parser.parse_args()
    pairs = load_pairs(args.max_rows)
    math_verify = math_verify_grader()
    rows, seconds = compare(pairs, math_verify)
    print_tables(rows, seconds, math_verify is not None)
    time_gsm8k_pairs(math_verify)
    normalize_answer("warm")  # imports done; the timing below measures only the limits
    time_deadlines()


if __name__ == "__main__":
    main()
