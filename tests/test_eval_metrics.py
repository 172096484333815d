"""metrics.json's uncertainty and second opinion: Wilson intervals, math-verify's verdicts, maj@k over seeds."""

import statistics
import threading
import time

import pytest

from arithmo.evaluation import second_opinion as opinion_module
from arithmo.evaluation.intervals import Z95, interval_of, intervals_of, metric_intervals, seed_spread, wilson_interval
from arithmo.evaluation.metrics import compute_metrics, format_table
from arithmo.grading import is_equivalent

# (correct, n, low, high, tolerance). Sources: Newcombe (1998), Statistics in Medicine 17:857-872, Table II,
# method 3 (the score interval), printed to 4 decimals; the rest from scipy 1.17.1,
# binomtest(correct, n).proportion_ci(method="wilson") (the same interval as statsmodels'
# proportion_confint(method="wilson")), transcribed to 16 digits.
WILSON_TABLE = [
    (81, 263, 0.2553, 0.3662, 5e-5),  # Newcombe's running example: a mid-range proportion
    (15, 148, 0.0624, 0.1605, 5e-5),  # small p: the interval is not symmetric about p = 0.101
    (0, 20, 0.0, 0.1611, 5e-5),  # 0 of n: Wald's interval collapses to [0, 0]; Wilson's does not
    (1, 29, 0.0061, 0.1718, 5e-5),  # 1 of n: Wald's lower bound would be negative
    (5, 10, 0.2365930905, 0.7634069095, 1e-9),  # p = 1/2: symmetric
    (10, 10, 0.7224672001, 1.0, 1e-9),  # n of n: upper bound exactly 1, lower well below
    (1, 1, 0.2065493144, 1.0, 1e-9),  # a single item: nearly uninformative, still defined
    (27, 60, 0.3309365440675524, 0.5750806411466566, 1e-12),  # the tiny held-out set's size
    (30, 60, 0.3773502424155577, 0.6226497575844423, 1e-12),  # the notebook's example: 50% of 60
    (4, 5, 0.3755346297625253, 0.9637758913675698, 1e-12),  # few items: a wide interval
    (1319, 1319, 0.9970960550146964, 1.0, 1e-12),  # a perfect GSM8K test score still has a lower bound
    (600, 1319, 0.4281864949, 0.4818556351, 1e-9),  # GSM8K-sized: about +-2.7 points
    (2500, 5000, 0.4861462826, 0.5138537174, 1e-9),  # MATH-sized: about +-1.4 points
]


@pytest.mark.parametrize("correct, n, low, high, tolerance", WILSON_TABLE)
def test_wilson_interval_matches_published_and_scipy_values(correct, n, low, high, tolerance):
    got_low, got_high = wilson_interval(correct, n)
    assert got_low == pytest.approx(low, abs=tolerance) and got_high == pytest.approx(high, abs=tolerance)
    assert 0.0 <= got_low <= correct / n <= got_high <= 1.0


def test_z_is_the_two_sided_95_percent_normal_quantile():
    assert Z95 == pytest.approx(1.959963984540054, abs=1e-12)


@pytest.mark.parametrize("correct, n", [
    (0, 0),  # no items: no interval
    (3, 2),  # more right than items
    (-1, 5),  # a negative count
    (True, 5),  # a bool is not a count
    (1.5, 5),  # nor is a float
])
def test_wilson_interval_rejects_bad_counts(correct, n):
    with pytest.raises(ValueError, match="n:|correct:"):
        wilson_interval(correct, n)


def _item(i, gold, level="Level 1", kind="Algebra"):
    return {"id": f"m/{i}", "benchmark": "math", "question": "q", "answer": gold, "meta": {"level": level, "type": kind}}


def _line(item, extracted, sample=None):
    ours = extracted is not None and is_equivalent(extracted, item["answer"])
    return {"id": item["id"], "sample": sample, "extracted": extracted, "correct": ours, "correct_flexible": ours,
            "program": None, "exec": None}


# (our extracted answer, gold, arithmo's verdict, math-verify's verdict): each a known difference or agreement.
SECOND_OPINION_TABLE = [
    ("0.\\overline{6}", "\\frac{2}{3}", True, False),  # repeating decimal: arithmo reads the bar, math-verify not
    ("0.333333", "\\frac{1}{3}", False, True),  # 6 digits: math-verify rounds to 6 places; arithmo wants exact
    ("18", "18", True, True),  # plain agreement
    ("1.732", "\\sqrt{3}", False, False),  # a decimal approximation of an exact gold: wrong for both
    ("3 \\leq x", "x \\geq 3", True, True),  # a relation written the other way round
    (None, "5", False, False),  # no answer: wrong for both, math-verify is not asked
]


def test_math_verify_verdicts_counts_and_disagreements():
    items = [_item(i, gold) for i, (_, gold, _, _) in enumerate(SECOND_OPINION_TABLE)] + [_item(99, "7")]
    lines = [_line(item, pred) for item, (pred, *_rest) in zip(items, SECOND_OPINION_TABLE)]  # m/99: no line
    for line, (_, _, ours, _) in zip(lines, SECOND_OPINION_TABLE):
        assert line["correct"] is ours, f"arithmo's own verdict changed on {line['extracted']!r}: fix the table"
    metrics = compute_metrics(items, lines, style="cot")
    opinion = metrics["math_verify"]
    theirs = [row[3] for row in SECOND_OPINION_TABLE] + [False]
    assert metrics["accuracy_math_verify"] == sum(theirs) / 7 and opinion["correct"] == sum(theirs)
    assert opinion["version"] == "0.9.0" and "skipped" not in opinion
    assert (opinion["compared"], opinion["no_answer"], opinion["timed_out"], opinion["failed"]) == (5, 2, 0, 0)
    assert opinion["disagreements"] == 2
    assert opinion["disagreement_items"] == [
        {"id": "m/0", "extracted": "0.\\overline{6}", "gold": "\\frac{2}{3}", "arithmo": True, "math_verify": False},
        {"id": "m/1", "extracted": "0.333333", "gold": "\\frac{1}{3}", "arithmo": False, "math_verify": True}]
    assert metrics["ci95"]["accuracy_math_verify"] == list(wilson_interval(sum(theirs), 7))
    assert "math-verify 0.9.0: 42.9% [15.8, 75.0]; disagrees with arithmo on 2 of 7 items" in format_table(metrics)


def test_a_program_answer_is_what_math_verify_sees():
    item = _item(0, "2, 3")
    line = {**_line(item, "2, 3"), "program": "print(sorted(roots))", "exec": {"stdout": "[2 3]", "error": None,
                                                                                "timed_out": False}}
    metrics = compute_metrics([item], [line], style="pot")
    assert metrics["accuracy"] == metrics["accuracy_math_verify"] == 1.0 and metrics["math_verify"]["compared"] == 1


def test_math_verify_runs_under_a_time_limit(monkeypatch):
    def endless(answer, gold):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(opinion_module, "math_verify_verdict", endless)
    items = [_item(0, "4")]
    started = time.perf_counter()
    metrics = compute_metrics(items, [_line(items[0], "4")], style="cot", grade_timeout_s=0.2)
    assert time.perf_counter() - started < 5, "the limit did not stop the comparison"
    opinion = metrics["math_verify"]
    assert opinion["timed_out"] == 1 and opinion["correct"] == 0 and metrics["accuracy_math_verify"] == 0.0
    assert opinion["disagreement_items"] == [{"id": "m/0", "extracted": "4", "gold": "4", "arithmo": True,
                                              "math_verify": False, "note": "math-verify ran past 0.2 s"}]
    assert "(1 timed out)" in format_table(metrics)


def test_off_the_main_thread_math_verify_runs_in_the_worker_process():
    """math-verify's own limits use signal.alarm, which raises outside the main thread; ours do not."""
    pairs = [(f"m/{i}", pred, gold, ours) for i, (pred, gold, ours, _) in enumerate(SECOND_OPINION_TABLE)]
    results = {}
    thread = threading.Thread(target=lambda: results.update(o=opinion_module.second_opinion(pairs, grade_timeout_s=30)))
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    threaded = results["o"]
    assert (threaded["correct"], threaded["timed_out"], threaded["failed"]) == (3, 0, 0)
    assert [row["id"] for row in threaded["disagreement_items"]] == ["m/0", "m/1"]


def test_without_math_verify_its_absence_is_recorded(monkeypatch):
    monkeypatch.setattr(opinion_module, "availability", lambda: (None, "math-verify is not installed (test)"))
    items = [_item(0, "4")]
    metrics = compute_metrics(items, [_line(items[0], "4")], style="cot")
    assert metrics["accuracy_math_verify"] is None and metrics["ci95"]["accuracy_math_verify"] is None
    assert metrics["math_verify"]["skipped"] == "math-verify is not installed (test)"
    assert metrics["math_verify"]["disagreements"] is None
    assert "math-verify: not run (math-verify is not installed (test))" in format_table(metrics)


def test_every_accuracy_has_its_interval():
    items = [_item(0, "1", "Level 1", "Algebra"), _item(1, "2", "Level 1", "Geometry"),
             _item(2, "3", "Level 2", "Algebra"), _item(3, "4", "Level 2", "Algebra")]
    lines = [_line(items[0], "1"), _line(items[1], "2"), _line(items[2], "0"), _line(items[3], None)]
    for item in items:  # maj@3: items 0 and 2 vote right
        votes = {"m/0": ["1", "1", "5"], "m/1": ["9", "9", "2"], "m/2": ["3", "3", "3"], "m/3": [None] * 3}[item["id"]]
        lines += [_line(item, vote, sample) for sample, vote in enumerate(votes)]
    metrics = compute_metrics(items, lines, style="cot", k=3, temperature=0.7)
    ci = metrics["ci95"]
    assert ci["method"].startswith("Wilson score interval (Wilson 1927), 95%")
    assert ci["accuracy"] == list(wilson_interval(2, 4)) and ci["accuracy_flexible"] == list(wilson_interval(2, 4))
    assert metrics["maj_k"]["correct"] == 2 and ci["maj_k"] == list(wilson_interval(2, 4))
    assert ci["by_level"] == {"Level 1": list(wilson_interval(2, 2)), "Level 2": list(wilson_interval(0, 2))}
    assert ci["by_type"] == {"Algebra": list(wilson_interval(1, 3)), "Geometry": list(wilson_interval(1, 1))}
    assert metric_intervals(metrics) == ci and intervals_of(metrics) is ci
    table = format_table(metrics)
    assert "50.0%     [15.0, 85.0]" in table  # accuracy 2/4 and its interval, side by side
    assert "  Level 2      0/2       0.0%  [0.0, 65.8]" in table.splitlines()


def test_files_without_intervals_get_them_from_their_counts():
    old = {"benchmark": "gsm8k", "style": "cot", "n": 60, "accuracy": 27 / 60, "accuracy_flexible": 0.5,
           "maj_k": {"k": 8, "accuracy": 0.6}, "by_level": {"L1": {"n": 5, "correct": 4, "accuracy": 0.8}}}
    ci = intervals_of(old)
    assert ci["accuracy"] == list(wilson_interval(27, 60)) and ci["maj_k"] == list(wilson_interval(36, 60))
    assert ci["by_level"] == {"L1": list(wilson_interval(4, 5))} and ci["by_type"] == {}
    assert ci["accuracy_math_verify"] is None and interval_of(None, 5) is None and interval_of(0.5, 0) is None
    with pytest.raises(ValueError, match="accuracy: expected a share from 0 to 1, got 1.5"):
        interval_of(1.5, 10)  # a percentage written where a share belongs


def test_seed_spread_reports_mean_std_min_max():
    passes = {seed: {"n": 10, "maj_k": {"k": 4, "accuracy": acc, "correct": round(acc * 10)}}
              for seed, acc in ((7, 0.5), (1, 0.6), (3, 0.9))}
    spread = seed_spread(passes)
    assert spread["seeds"] == [7, 1, 3] and spread["accuracy"] == [0.5, 0.6, 0.9] and spread["correct"] == [5, 6, 9]
    assert spread["mean"] == pytest.approx(2 / 3, abs=1e-12)
    assert spread["std"] == pytest.approx(statistics.stdev([0.5, 0.6, 0.9]), abs=1e-12)  # sample std (n - 1)
    assert spread["std"] == pytest.approx(0.2081665999, abs=1e-9)  # sqrt(((1/6)^2 + (1/15)^2 + (7/30)^2) / 2)
    assert (spread["min"], spread["max"], spread["k"], spread["n"]) == (0.5, 0.9, 4, 10)
    assert spread["ci95"][2] == list(wilson_interval(9, 10))
    assert seed_spread({0: passes[7]})["std"] is None  # one seed: no spread to speak of
    with pytest.raises(ValueError, match="seed 5: its metrics have no maj_k"):
        seed_spread({5: {"n": 10, "maj_k": None}})
