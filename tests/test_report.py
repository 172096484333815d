"""`python -m arithmo.report`: the before/after table the demo ends with."""

import json

import pytest

from arithmo.report import compare_table, main, read_metrics


def _write(folder, accuracy, adapter=None):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"benchmark": "heldout", "style": "pot", "n": 60, "accuracy": accuracy, "model": "smollm2-135m-instruct",
         "adapter": adapter}))
    return folder


def test_table_shows_each_run_and_the_change_in_points(tmp_path, capsys):
    before = _write(tmp_path / "base", 0.05)
    after = _write(tmp_path / "tuned", 0.9, adapter="runs/demo/adapter")
    assert main([str(before), str(after / "metrics.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "5.0%" in lines[2] and lines[2].rstrip().endswith("5.0%")  # the baseline has no delta
    assert "90.0%" in lines[3] and lines[3].rstrip().endswith("+85.0p") and "runs/demo/adapter" in lines[3]


def test_missing_or_foreign_files_are_named(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no metrics.json" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"loss": 1.0}))
    with pytest.raises(ValueError, match="no 'benchmark'"):
        read_metrics(tmp_path / "other.json")
    assert compare_table([{"benchmark": "b", "style": "cot", "n": 1, "accuracy": 1.0, "model": "m"}])
