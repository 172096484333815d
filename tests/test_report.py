"""`python -m arithmo.report`: the comparison table with 95% intervals, the breakdowns, and the PNG beside it."""

import json
import re

import pytest

from arithmo.evaluation.intervals import wilson_interval
from arithmo.report import CHART_NAME, breakdown_table, compare_table, main, read_metrics

PNG = b"\x89PNG\r\n\x1a\n"


def _write(folder, accuracy, adapter=None, **extra):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"benchmark": "heldout", "style": "pot", "n": 60, "accuracy": accuracy, "model": "smollm2-135m-instruct",
         "adapter": adapter, **extra}))
    return folder


def _pct(interval):
    return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def test_table_shows_each_run_its_interval_and_the_change_in_points(tmp_path, capsys):
    before = _write(tmp_path / "base", 3 / 60)  # an older file: no ci95, computed from n and accuracy
    after = _write(tmp_path / "tuned", 54 / 60, adapter="runs/demo/adapter", accuracy_math_verify=53 / 60,
                   maj_k={"k": 8, "accuracy": 0.95, "correct": 57},
                   math_verify={"version": "0.9.0", "disagreements": 1})
    assert main([str(before), str(after / "metrics.json"), "--no-png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#", "model", "benchmark", "style", "n", "accuracy", "95%", "CI", "vs", "first",
                                "math-verify", "maj@k", "maj", "95%", "CI"]
    assert lines[2].split() == ["1", "smollm2-135m-instruct", "heldout", "pot", "60", "5.0%", "[1.7,", "13.7]", "-",
                                "-", "-"]  # the baseline: no delta
    assert _pct(wilson_interval(3, 60)) == "[1.7, 13.7]"
    assert lines[3].split() == ["2", "smollm2-135m-instruct", "+", "runs/demo/adapter", "heldout", "pot", "60",
                                "90.0%", "[79.9,", "95.3]", "+85.0p", "88.3%", "95.0%", "(k=8)", "[86.3,", "98.3]"]
    assert _pct(wilson_interval(54, 60)) == "[79.9, 95.3]" and _pct(wilson_interval(57, 60)) == "[86.3, 98.3]"
    assert lines[4] == "#2 math-verify disagrees with arithmo on 1 item(s) (metrics.json: math_verify.disagreement_items)"


def test_breakdowns_side_by_side_and_the_spread_over_seeds(tmp_path, capsys):
    a = _write(tmp_path / "a", 0.5, by_level={"Level 1": {"n": 4, "correct": 2, "accuracy": 0.5}})
    b = _write(tmp_path / "b", 0.6, by_level={"Level 1": {"n": 4, "correct": 4, "accuracy": 1.0},
                                              "Level 2": {"n": 2, "correct": 0, "accuracy": 0.0}},
               maj_k={"k": 4, "accuracy": 0.6, "correct": 36},
               maj_k_seeds={"seeds": [0, 1, 2], "k": 4, "n": 60, "accuracy": [0.6, 0.5, 0.55], "mean": 0.55,
                            "std": 0.05, "min": 0.5, "max": 0.6})
    assert main([str(a), str(b), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "#2 maj@4 over 3 seeds (0, 1, 2): mean 55.0%, std 5.0p, min 50.0%, max 60.0%" in out
    rows = [read_metrics(a), read_metrics(b)]
    table = breakdown_table(rows, "by_level").splitlines()
    assert table[0].split() == ["by", "level", "#1", "#2"]
    assert table[1].split() == ["Level", "1", "2/4", "50.0%", "[15.0,", "85.0]", "4/4", "100.0%", "[51.0,", "100.0]"]
    assert table[2].split() == ["Level", "2", "0/2", "0.0%", "[0.0,", "65.8]"]  # #1 has no Level 2: blank
    assert breakdown_table(rows, "by_type") == ""


def test_the_chart_goes_beside_the_first_metrics_file_or_where_asked(tmp_path, capsys):
    first = _write(tmp_path / "first", 0.5, by_type={"Algebra": {"n": 60, "correct": 30, "accuracy": 0.5}})
    second = _write(tmp_path / "second", 0.7, maj_k={"k": 4, "accuracy": 0.75, "correct": 45})
    assert main([str(first / "metrics.json"), str(second)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"[report] chart: {first / CHART_NAME}"
    assert (first / CHART_NAME).read_bytes()[:8] == PNG
    elsewhere = tmp_path / "charts" / "cmp.png"
    elsewhere.parent.mkdir()
    assert main([str(first), str(second), "--png", str(elsewhere)]) == 0
    assert elsewhere.read_bytes()[:8] == PNG
    (first / CHART_NAME).unlink()
    assert main([str(first), "--no-png"]) == 0 and not (first / CHART_NAME).exists()


def test_missing_or_foreign_files_are_named(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no metrics.json" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"loss": 1.0}))
    with pytest.raises(ValueError, match="no 'benchmark'"):
        read_metrics(tmp_path / "other.json")
    assert compare_table([{"benchmark": "b", "style": "cot", "n": 1, "accuracy": 1.0, "model": "m"}])


# (results as (benchmark, n, accuracy), the "vs first" cell of each row); pitfall: deltas were printed between
# different benchmarks and item counts with no warning
LIKE_WITH_LIKE = [
    ([("heldout", 60, 0.5), ("heldout", 60, 0.6)], ["-", "+10.0p"]),                       # like: a change
    ([("heldout", 60, 0.5), ("gsm8k", 1319, 0.3)], ["-", "-"]),                            # must NOT: benchmarks
    ([("gsm8k", 60, 0.5), ("gsm8k", 1319, 0.3)], ["-", "-"]),                              # must NOT: item counts
    ([("gsm8k", 60, 0.5), ("math", 500, 0.2), ("math", 500, 0.25)], ["-", "-", "+5.0p vs #2"]),  # its own kind
    ([("gsm8k", 60, 0.5), ("math", 500, 0.2), ("gsm8k", 60, 0.4)], ["-", "-", "-10.0p"]),
]


@pytest.mark.parametrize("results, changes", LIKE_WITH_LIKE)
def test_changes_compare_only_like_with_like(tmp_path, results, changes):
    rows = [{"benchmark": b, "style": "cot", "n": n, "accuracy": a, "model": "m", "adapter": None}
            for b, n, a in results]
    lines = compare_table(rows).splitlines()
    for row, change in zip(lines[2:2 + len(rows)], changes):
        shown = re.findall(r"[+-]\d+\.\dp(?: vs #\d+)?", row)
        assert shown == ([] if change == "-" else [change]), row
    kinds = {(b, n) for b, n, _ in results}
    assert ("no change shown" in compare_table(rows)) == (len(kinds) > 1)


_BASE = {"benchmark": "gsm8k", "path": None, "hub": "openai/gsm8k", "split": "test", "style": "cot", "k": 1,
         "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512, "max_tool_calls": 4, "pot_hint": True, "stop": []}
# (second run's eval_config changes, whether "vs first" shows a change); pitfall: the column compared runs over
# other item files or generation budgets that the paired test already refused
LIKE_SETTINGS = [
    ({}, True),                                              # like: same settings, other model
    ({"temperature": 0.7}, True),                            # like: sampling knobs do nothing when both are greedy
    ({"path": "./data/items.jsonl"}, False),                 # must NOT: another item file (vs the hub's)
    ({"max_new_tokens": 2048}, False),                       # must NOT: another generation budget
    ({"style": "pot"}, False),                               # must NOT: another style
    ({"k": 4, "temperature": 0.7}, False),                   # must NOT: sampled vs greedy
    ({"stop": ["\n\n"]}, False),                             # must NOT: other stop strings
]


@pytest.mark.parametrize("change, shown", LIKE_SETTINGS)
def test_changes_compare_only_like_settings(change, shown):
    rows = [{"benchmark": "gsm8k", "style": "cot", "n": 60, "accuracy": a, "model": "m", "adapter": None}
            for a in (0.5, 0.6)]
    table = compare_table(rows, [dict(_BASE), {**_BASE, **change}])
    assert ("+10.0p" in table) == shown, table
    assert ("no change shown" in table) == (not shown), table
    if not shown:
        assert next(iter(change)) in table.split("no change shown")[1]  # names what differs


def test_report_png_in_a_missing_folder_is_one_error_line(tmp_path, capsys):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"benchmark": "b", "style": "cot", "n": 1, "accuracy": 1.0,
                                                     "model": "m"}))
    for target in (tmp_path / "missing" / "x.png", folder / "metrics.json" / "x.png"):
        assert main([str(folder), "--png", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --png") and "Traceback" not in err and err.count("\n") == 1


def _bars_and_texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("count", [1, 6, 30])
def test_the_chart_reads_at_any_count(count):
    # pitfalls: a 3850x580 image for 6 runs, labels cut from the left, a 0% bar invisible
    from arithmo.report import compare_figure

    rows = [{"benchmark": "heldout", "style": "pot", "n": 60, "accuracy": 0.0 if j == 0 else j / (count + 1),
             "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "adapter": f"runs/a_rather_long_run_name_{j}/adapter",
             "by_level": {"one_step": {"n": 30, "correct": 3, "accuracy": 0.1}}} for j in range(count)]
    fig = compare_figure(rows)
    width, height = fig.get_size_inches() * 100
    assert width <= 1000 and height <= 650 + 25 * count  # bounded width; the height grows with the legend only
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == count and all(text.startswith(f"#{j + 1} HuggingFaceTB") for j, text in enumerate(legend))
    assert any(text.endswith("0%") and text.startswith("#1") for text in _bars_and_texts(fig)) or count > 13
    assert all(ax.get_position().width > 0.5 for ax in fig.axes)  # full-width panels, never squeezed side by side
