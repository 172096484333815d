"""avg@k, unbiased pass@k (checked against direct enumeration), truncation and length records (issue 26)."""

import itertools
import math

import pytest

from arithmo.evaluation.bootstrap import mean_interval
from arithmo.evaluation.outputs import annotate, length_stats, truncated_rate, unfinished_think
from arithmo.evaluation.passk import pass_at_k, reported_ks, sampled_metrics
from arithmo.generate import Completion, _decode


def enumerated_pass_at_k(n: int, c: int, k: int) -> float:
    """The definition: over every way to draw k of the n samples, the share that holds a correct one."""
    draws = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in draw) for draw in draws) / len(draws)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_equals_direct_enumeration(n):
    # The estimator's product form must equal the combinatorial definition for every c and k <= n.
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(enumerated_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


@pytest.mark.parametrize("n, c, k, expected", [
    (8, 3, 2, 1 - math.comb(5, 2) / math.comb(8, 2)),  # the closed form, as Chen et al. write it
    (4, 0, 1, 0.0),          # no correct sample: never passes
    (4, 4, 1, 1.0),          # all correct
    (4, 1, 1, 0.25),         # pass@1 is c/n (the mean over samples), NOT 1 because one sample was right
    (4, 1, 4, 1.0),          # pass@n: any correct sample passes
    (200, 1, 100, 0.5),      # large n: no overflow, no loss (the product form)
    (10, 9, 2, 1.0),         # n - c < k: every draw holds a correct one (must not be a tiny float error below 1)
])
def test_pass_at_k_rows(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n, c, k, message", [
    (4, 1, 5, "needs 1 <= k <= n"),   # pass@5 from 4 samples is not estimable: must NOT be clipped silently
    (4, 1, 0, "needs 1 <= k <= n"),
    (4, 5, 1, "0 <= c <= n"),         # more correct than samples
    (4, -1, 1, "0 <= c <= n"),
    (0, 0, 1, "n >= 1"),
    (4, True, 1, "must be an integer"),  # a bool is not a count
    (4.0, 1, 1, "must be an integer"),
])
def test_pass_at_k_refuses_bad_counts(n, c, k, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


@pytest.mark.parametrize("k, expected", [(1, [1]), (2, [1, 2]), (4, [1, 2, 4]), (6, [1, 2, 4, 6]),
                                         (8, [1, 2, 4, 8]), (3, [1, 2, 3])])
def test_reported_ks(k, expected):
    assert reported_ks(k) == expected


def _line(correct, extracted="1", truncated=None):
    return {"correct": correct, "extracted": extracted, "truncated": truncated}


def test_sampled_metrics_on_a_small_table():
    items = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    samples = {
        "a": {0: _line(True), 1: _line(True), 2: _line(False), 3: _line(True)},           # 3 of 4
        "b": {0: _line(False, None, True), 1: _line(False), 2: _line(False), 3: _line(False)},  # 0 of 4
        "c": {0: _line(True), 1: _line(False)},  # samples 2 and 3 missing (interrupted): wrong, NOT dropped
    }
    out = sampled_metrics(items, samples, 4)
    avg = out["avg_k"]
    assert avg["accuracy"] == pytest.approx((0.75 + 0 + 0.25) / 3)
    assert avg["per_sample"] == pytest.approx([2 / 3, 1 / 3, 0, 1 / 3])
    assert avg["no_answer_rate"] == pytest.approx(3 / 12)  # one None answer + two missing lines
    assert avg["truncated_rate"] == pytest.approx(1 / 12)
    assert avg["ci95"][0] <= avg["accuracy"] <= avg["ci95"][1]
    expected = {kk: (pass_at_k(4, 3, kk) + pass_at_k(4, 0, kk) + pass_at_k(4, 1, kk)) / 3 for kk in (1, 2, 4)}
    assert out["pass_k"] == pytest.approx({str(kk): v for kk, v in expected.items()})
    assert out["pass_k"]["1"] == pytest.approx(avg["accuracy"])  # pass@1 IS avg@k


def test_truncation_unknown_is_none_not_zero():
    # Lines from before truncation was recorded: the rate is unknown, not 0%.
    out = sampled_metrics([{"id": "a"}], {"a": {0: {"correct": True, "extracted": "1"}}}, 1)
    assert out["avg_k"]["truncated_rate"] is None and out["avg_k"]["std_over_samples"] is None


@pytest.mark.parametrize("text, expected", [
    ("<think>let me see", True),                   # cut off while thinking
    ("<think>a</think> The answer is 5", False),   # finished block
    ("a</think> The answer is 5", False),          # the template opened <think> in the prompt
    ("The answer is 5", False),                    # no reasoning block at all
    ("<think>a</think>ok<think>again", True),      # a second block left open
    ("", False),
])
def test_unfinished_think(text, expected):
    assert unfinished_think(text) is expected


@pytest.mark.parametrize("completion, expected", [
    (Completion("x", 64, "length"), (64, "length", True)),                 # ran out of max_new_tokens
    (Completion("x = 2", 10, "stop"), (10, "stop", False)),
    (Completion("<think>still going", 30, "stop"), (30, "stop", True)),   # unfinished think: truncated
    ("plain text from an old line", (None, None, None)),                   # unknown: None, NOT False
    ("<think>old and unfinished", (None, None, True)),
])
def test_annotate(completion, expected):
    line = annotate({"completion": completion, "style": "cot"})
    assert (line["tokens"], line["finish"], line["truncated"]) == expected
    assert type(line["completion"]) is str  # saved as plain text


def test_annotate_tir_uses_its_budget_record():
    line = annotate({"completion": "t", "style": "tir", "new_tokens": 512, "stopped": "token_budget"})
    assert (line["tokens"], line["truncated"]) == (512, True)
    line = annotate({"completion": "t", "style": "tir", "new_tokens": 40, "stopped": "answered"})
    assert (line["tokens"], line["truncated"]) == (40, False)


class _Tok:
    pad_token_id = 0

    def decode(self, ids, **_):
        return "".join(chr(96 + i) for i in ids)  # 1 -> a, 2 -> b, ...


@pytest.mark.parametrize("ids, stop, max_new, expected", [
    ([5, 6, 7], [], 3, ("efg", 3, "length")),      # no end id, all max_new_tokens used: ran out
    ([5, 9, 0], [], 3, ("ei", 2, "stop")),          # padded after a stop-string stop: NOT length
    ([5, 2, 7], [], 3, ("e", 1, "stop")),           # end-of-turn id (2) ended it
    ([5, 6], [], 3, ("ef", 2, "stop")),             # the whole batch ended early
    ([5, 6, 7], ["f"], 3, ("e", 3, "stop")),        # cut at a stop string: ended by it
])
def test_decode_records_how_a_completion_ended(ids, stop, max_new, expected):
    out = _decode(_Tok(), ids, [2], stop, (), max_new)
    assert (str(out), out.tokens, out.finish) == expected


def test_length_stats_and_truncated_rate():
    lines = [{"tokens": 10, "correct": True, "truncated": False}, {"tokens": 30, "correct": False, "truncated": True},
             {"tokens": None, "correct": False}]
    stats = length_stats(lines)
    assert stats["all"]["mean"] == 20 and stats["correct"]["n"] == 1 and stats["wrong"]["max"] == 30
    assert stats["unknown"] == 1
    assert truncated_rate(lines, 3) == pytest.approx(1 / 3)
    assert truncated_rate([{"truncated": None}], 1) is None


def test_bootstrap_interval():
    assert mean_interval([1.0] * 5) == [1.0, 1.0]
    low, high = mean_interval([0, 1, 0.5, 1, 0, 0.25])
    assert 0 <= low < 0.4583 < high <= 1
    assert mean_interval([0, 1, 0.5]) == mean_interval([0, 1, 0.5])  # seeded: the same every time
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])


def test_avg_k_reaches_the_table_the_report_and_the_app():
    from arithmo.app.files import interval_table
    from arithmo.evaluation.metrics import format_sampled

    metrics = {"_eval": "e", "benchmark": "b", "style": "cot", "n": 4, "accuracy": 0.5, "truncated_rate": 0.25,
               "avg_k": {"k": 4, "accuracy": 0.375, "ci95": [0.125, 0.625], "std_over_samples": 0.1,
                         "no_answer_rate": 0.5, "truncated_rate": 0.25},
               "pass_k": {"1": 0.375, "2": 0.5, "4": 0.75},
               "lengths": {"all": {"n": 20, "mean": 40.0, "median": 38.0, "max": 64},
                           "correct": {"n": 5, "mean": 20.0, "median": 20.0, "max": 30},
                           "wrong": {"n": 15, "mean": 46.7, "median": 50.0, "max": 64}, "unknown": 0}}
    text = "\n".join(format_sampled(metrics))
    assert "avg@4 37.5% [12.5, 62.5]" in text and "pass@2 50.0%" in text and "truncated 25.0%" in text
    assert "correct 20 mean" in text
    rows = [row for row in interval_table([metrics]) if row[1] == "avg@4"]
    assert rows == [["e", "avg@4", "all", 4, 37.5, 12.5, 62.5]]
    # a metrics.json from before issue 26: no avg@k lines, no avg@k row (NOT a crash or an empty row)
    old = {"_eval": "e", "benchmark": "b", "style": "cot", "n": 4, "accuracy": 0.5}
    assert format_sampled(old) == [] and all(row[1] != "avg@4" for row in interval_table([old]))


@pytest.mark.parametrize("prompt, completion, truncated", [
    ("<|im_start|>assistant\n<think>\n", Completion("so far 2+2", 5, "stop"), True),   # opened in the prompt, never closed
    ("<|im_start|>assistant\n<think>\n", Completion("a</think> 4", 5, "stop"), False),  # closed: finished
    ("<|im_start|>assistant\n", Completion("so far 2+2", 5, "stop"), False),           # no think block at all: NOT cut
])
def test_a_think_block_opened_by_the_template_counts(prompt, completion, truncated):
    assert annotate({"prompt": prompt, "completion": completion, "style": "cot"})["truncated"] is truncated


# avg@k's interval at the boundary (issue 26 review): a percentile bootstrap of identical item scores is one
# point ([0, 0] at 0%), a certainty 30 items cannot give. Rows: (per-item correct counts out of k, k,
# expected low bound's relation, expected high bound's relation).
@pytest.mark.parametrize("counts, k, low_positive, high_below_one", [
    ([0] * 30, 4, False, True),        # 0%: must NOT collapse to [0, 0]; Wilson over items gives high > 0
    ([4] * 30, 4, True, False),        # 100%: must NOT collapse to [1, 1]
    ([0] * 30, 1, False, True),        # greedy-like k=1 at 0%
    ([1] * 30, 1, True, False),        # k=1 at 100%
    ([2] * 30, 4, True, True),         # every item 2/4: not a point either (Wilson over n*k samples)
    ([0] * 15 + [4] * 15, 4, True, True),  # items 0 or 1 but mixed: Wilson over items, inside (0, 1)
    ([0, 1, 2, 3, 4] * 6, 4, True, True),  # ordinary spread: bootstrap, inside (0, 1)
])
def test_avg_k_interval_never_collapses_at_the_boundary(counts, k, low_positive, high_below_one):
    items = [{"id": str(i)} for i in range(len(counts))]
    samples = {str(i): {j: {"correct": j < c, "extracted": "1"} for j in range(k)} for i, c in enumerate(counts)}
    avg = sampled_metrics(items, samples, k)["avg_k"]
    low, high = avg["ci95"]
    assert low < high, avg  # never a single point
    assert low <= avg["accuracy"] <= high
    assert (low > 0) == low_positive and (high < 1) == high_below_one, avg
    assert avg["ci_method"]


@pytest.mark.parametrize("scores, k, method_word", [
    ([0.0] * 30, 4, "over items"),         # binary item scores: Wilson over the n items
    ([1.0] * 10 + [0.0] * 20, 4, "over items"),
    ([0.5] * 30, 4, "n*k samples"),        # identical non-binary scores: Wilson over the samples
    ([0.25, 0.5, 0.75] * 10, 4, "bootstrap"),  # spread: must NOT be replaced by Wilson
])
def test_avg_k_interval_method(scores, k, method_word):
    from arithmo.evaluation.intervals import wilson_interval
    from arithmo.evaluation.passk import avg_k_interval

    interval, method = avg_k_interval(scores, k)
    assert method_word in method
    if method_word == "over items":
        assert interval == list(wilson_interval(int(sum(scores)), len(scores)))
