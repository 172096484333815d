"""Paired comparison of two runs on the same items (issue 26): McNemar's exact test, paired bootstrap, refusals."""

import json
import re
import math

import pytest
import yaml

from arithmo.evaluation.paired import PairingError, compare_runs, format_comparison, mcnemar_exact
from arithmo.report import main as report_main


@pytest.mark.parametrize("b, c, expected", [
    (0, 5, 2 / 32),                        # 5 discordant pairs all for B: p = 2 * (1/2)^5
    (1, 9, 2 * (1 + 10) / 1024),           # binomial tail P[X <= 1] with n = 10, doubled
    (9, 1, 2 * (1 + 10) / 1024),           # symmetric in b and c
    (3, 3, 1.0),                           # balanced discordance: capped at 1, NOT 2 * tail
    (0, 0, 1.0),                           # no discordant pair: no evidence either way
    (10, 12, min(1.0, 2 * sum(math.comb(22, i) for i in range(11)) / 2 ** 22)),
])
def test_mcnemar_exact(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError, match="counts must be >= 0"):
        mcnemar_exact(-1, 2)


def write_run(folder, greedy, samples=None, *, golds=None, ids=None, settings=None, n=None):
    """An eval output folder: predictions.jsonl (greedy flags, optional k sample flags per item), eval_config.yaml,
    metrics.json."""
    folder.mkdir(parents=True)
    ids = ids or [f"b/{i}" for i in range(len(greedy))]
    golds = golds or ["1"] * len(ids)
    lines = []
    for index, item_id in enumerate(ids):
        lines.append({"id": item_id, "benchmark": "b", "sample": None, "correct": greedy[index], "gold": golds[index]})
        for j, flag in enumerate((samples or [[]] * len(ids))[index]):
            lines.append({"id": item_id, "benchmark": "b", "sample": j, "correct": flag, "gold": golds[index]})
    (folder / "predictions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    k = len(samples[0]) if samples else 1
    config = {"benchmark": "file", "path": "x.jsonl", "style": "cot", "k": k, "temperature": 0.7, "top_p": 1.0,
              "max_new_tokens": 64, **(settings or {})}
    (folder / "eval_config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps({"benchmark": "b", "style": "cot", "n": n or len(ids),
                                                     "accuracy": sum(greedy) / len(ids)}))
    return folder


def test_b_better_on_many_items_is_significant(tmp_path):
    a = write_run(tmp_path / "a", [False] * 30 + [True] * 10)
    b = write_run(tmp_path / "b", [True] * 30 + [True] * 10)
    greedy = compare_runs(a, b)["benchmarks"]["b"]["greedy"]
    assert (greedy["only_a"], greedy["only_b"]) == (0, 30)
    assert greedy["p_value"] < 1e-8 and greedy["difference"] == pytest.approx(0.75)
    assert greedy["ci95"][0] > 0 and greedy["verdict"] == "B is better"


def test_one_item_apart_is_not_significant(tmp_path):
    # 1 of 5 items flips: the interval includes 0, p = 1: must NOT be called a win
    a = write_run(tmp_path / "a", [True, False, False, True, False])
    b = write_run(tmp_path / "b", [True, True, False, True, False])
    greedy = compare_runs(a, b)["benchmarks"]["b"]["greedy"]
    assert greedy["p_value"] == 1.0 and greedy["verdict"] == "no significant difference"


def test_avg_k_paired_bootstrap(tmp_path):
    a = write_run(tmp_path / "a", [False] * 20, [[False, False, True, False]] * 20)
    b = write_run(tmp_path / "b", [False] * 20, [[True, True, True, False]] * 20)
    avg = compare_runs(a, b)["benchmarks"]["b"]["avg_k"]
    assert avg["accuracy"] == pytest.approx([0.25, 0.75]) and avg["difference"] == pytest.approx(0.5)
    assert avg["ci95"] == pytest.approx([0.5, 0.5]) and avg["b_ahead"] == 1.0 and avg["verdict"] == "B is better"
    text = format_comparison(compare_runs(a, b), "#1", "#2")
    assert "avg@4" in text and "#2 is better" in text


@pytest.mark.parametrize("change, message", [
    ({"ids": ["b/0", "b/1", "b/9"]}, "cover different items"),          # another item set
    ({"golds": ["1", "2", "1"]}, "different golds"),                    # same ids, other golds: not the same items
    ({"settings": {"max_new_tokens": 32}}, "max_new_tokens: 64 vs 32"),
    ({"settings": {"benchmark": "gsm8k", "path": None}}, "benchmark: 'file' vs 'gsm8k'"),
])
def test_refuses_runs_that_are_not_paired(tmp_path, change, message):
    a = write_run(tmp_path / "a", [True, False, True])
    b = write_run(tmp_path / "b", [True, True, True], **change)
    with pytest.raises(PairingError, match=message):
        compare_runs(a, b)


@pytest.mark.parametrize("change", [
    {"settings": {"seed": 7}},                # a seed is not a setting that changes what is compared
    {"settings": {"model": "other"}},         # the model is what is compared
])
def test_pairs_across_what_is_compared(tmp_path, change):
    a = write_run(tmp_path / "a", [True, False, True])
    b = write_run(tmp_path / "b", [True, True, True], **change)
    assert compare_runs(a, b)["benchmarks"]["b"]["n"] == 3


def test_lines_of_other_items_beyond_n_are_ignored(tmp_path):
    # predictions.jsonl keeps an earlier, larger run's extra items after this run's n: not part of the pairing
    a = write_run(tmp_path / "a", [True, False, True, True], ids=["b/0", "b/1", "b/2", "b/extra"], n=3)
    b = write_run(tmp_path / "b", [True, True, True])
    assert compare_runs(a, b)["benchmarks"]["b"]["n"] == 3


def test_missing_predictions_is_refused_with_the_file(tmp_path):
    a = write_run(tmp_path / "a", [True])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "metrics.json").write_text(json.dumps({"benchmark": "b", "style": "cot", "n": 1, "accuracy": 1}))
    with pytest.raises(PairingError, match=r"predictions.jsonl not found"):
        compare_runs(a, tmp_path / "b")


def test_report_prints_the_paired_verdict_or_the_refusal(tmp_path, capsys):
    a = write_run(tmp_path / "a", [False] * 10)
    b = write_run(tmp_path / "b", [True] * 10)
    c = write_run(tmp_path / "c", [True] * 10, settings={"max_new_tokens": 32})  # greedy uses it: refused
    assert report_main([str(a), str(b), str(c), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "paired comparison #2 vs #1" in out and "McNemar exact" in out and "#2 is better" in out
    # #3 is not like #1: no change in the table and no paired test, and the report says what differs
    assert "#3 vs #1: other settings (max_new_tokens: 64 vs 32)" in out and "paired comparison #3" not in out
    row3 = out.splitlines()[4]
    assert row3.startswith("3") and not re.search(r"[+-]\d+\.\dp", row3), row3  # no "vs first" cell


# Issue 26 review: what refuses a pairing and what must NOT. Rows: (change to run B, samples per item in both runs,
# refusal message or None for a pairing that must go through).
K4 = [[True, False, True, False]] * 3


@pytest.mark.parametrize("change, samples, message", [
    # sampling knobs greedy never uses: greedy-only runs must NOT be refused for them
    ({"settings": {"temperature": 0.6}}, None, None),
    ({"settings": {"top_p": 0.95}}, None, None),
    ({"settings": {"temperature": 0.6, "top_p": 0.95}}, None, None),
    # ... but with k samples they change the samples: refused
    ({"settings": {"temperature": 0.6}}, K4, r"different settings \(temperature: 0.7 vs 0.6\)"),
    ({"settings": {"top_p": 0.95}}, K4, r"top_p: 1.0 vs 0.95"),
    # greedy-only but another decoding setting that greedy uses: still refused
    ({"settings": {"max_new_tokens": 32}}, None, "max_new_tokens: 64 vs 32"),
    # one file spelled relative and absolute: must NOT be refused; another file: refused
    ({"settings": {"path": "/somewhere/checkout/x.jsonl"}}, None, None),
    ({"settings": {"path": "./x.jsonl"}}, None, None),
    ({"settings": {"path": "/somewhere/checkout/y.jsonl"}}, None, r"path: 'x.jsonl' vs '/somewhere/checkout/y.jsonl'"),
    ({"settings": {"path": "other/x.jsonl"}}, None, r"path: 'x.jsonl' vs 'other/x.jsonl'"),
])
def test_pairing_settings_table(tmp_path, change, samples, message):
    a = write_run(tmp_path / "a", [True, False, True], samples)
    b = write_run(tmp_path / "b", [True, True, True], samples, **change)
    if message is None:
        assert compare_runs(a, b)["benchmarks"]["b"]["n"] == 3
    else:
        with pytest.raises(PairingError, match=message):
            compare_runs(a, b)


def _set_grader(folder, versions):
    """Give each line of predictions.jsonl a grader_version, cycling through `versions`."""
    path = folder / "predictions.jsonl"
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    for index, line in enumerate(lines):
        line["grader_version"] = versions[index % len(versions)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize("versions_a, versions_b, refused", [
    (["arithmo-grader-3"], ["arithmo-grader-3"], False),                     # one grader: paired
    (["arithmo-grader-3"], ["arithmo-grader-1"], True),                      # another grader: refused
    (["arithmo-grader-3"], ["arithmo-grader-3", "arithmo-grader-2"], True),  # a half-regraded run: refused
])
def test_runs_graded_by_different_graders_are_refused(tmp_path, versions_a, versions_b, refused):
    a = write_run(tmp_path / "a", [True, False, True])
    b = write_run(tmp_path / "b", [True, True, True])
    _set_grader(a, versions_a)
    _set_grader(b, versions_b)
    if refused:
        with pytest.raises(PairingError, match="different grader versions.*regrade"):
            compare_runs(a, b)
    else:
        assert compare_runs(a, b)["benchmarks"]["b"]["greedy"]["only_b"] == 1


@pytest.mark.parametrize("samples_b, greedy_b, n_b, message", [
    ([[True] * 4, [True] * 4, [True] * 4], [True] * 3, None, None),                  # complete: paired
    ([[True] * 4, [True] * 4, []], [True] * 3, None, "1 without all k=4 sample lines"),  # interrupted sampling
    ([[True] * 4, [True] * 2, [True] * 4], [True] * 3, None, "1 without all k=4"),    # two of four samples
    ([[True] * 4] * 3, [True] * 3, 5, "predictions for 3 of its n=5 items"),          # items missing
])
def test_an_incomplete_run_is_refused_not_counted_wrong(tmp_path, samples_b, greedy_b, n_b, message):
    a = write_run(tmp_path / "a", [True, False, True], [[False] * 4] * 3)
    b = write_run(tmp_path / "b", greedy_b, [s or [] for s in samples_b], n=n_b)
    (b / "eval_config.yaml").write_text((a / "eval_config.yaml").read_text())  # k=4 like A
    if message is None:
        assert compare_runs(a, b)["benchmarks"]["b"]["avg_k"]["difference"] == pytest.approx(1.0)
    else:
        with pytest.raises(PairingError, match=message):
            compare_runs(a, b)


def test_an_item_without_its_greedy_line_is_refused(tmp_path):
    a = write_run(tmp_path / "a", [True, False, True])
    b = write_run(tmp_path / "b", [True, True, True])
    path = b / "predictions.jsonl"
    path.write_text("".join(text + "\n" for text in path.read_text().splitlines()[:2])
                    + json.dumps({"id": "b/2", "benchmark": "b", "sample": 0, "correct": True, "gold": "1"}) + "\n")
    with pytest.raises(PairingError, match="1 item\\(s\\) without their greedy line"):
        compare_runs(a, b)
