"""Text a model or a program writes can hold every Unicode line separator; the files arithmo appends to must read
back whole (issue 24's writers, found by a fresh review: U+2028 in a printed line broke predictions.jsonl)."""

import json

import pytest

from arithmo.evaluation.store import append_lines, read_lines
from arithmo.io import DataError
from arithmo.rft.sampling import read_rounds

# (text inside a record, why it is a pitfall): each must survive a write and a read
SEPARATORS = [
    ("42\u2028", "LINE SEPARATOR: str.splitlines splits on it, json.dumps(ensure_ascii=False) writes it raw"),
    ("a\u2029b", "PARAGRAPH SEPARATOR"),
    ("x\x85y", "NEXT LINE (C1)"),
    ("p\x0bq\x0cr", "vertical tab and form feed"),
    ("s\x1ct\x1du\x1ev", "file/group/record separators"),
    ("carriage\rreturn", "a bare CR"),
    ("\ufffd", "the replacement character a surrogate becomes"),
]


@pytest.mark.parametrize("text, pitfall", SEPARATORS)
def test_predictions_with_separators_read_back(tmp_path, text, pitfall):
    path = tmp_path / "predictions.jsonl"
    path.write_text("")
    rows = [{"id": "a", "sample": None, "completion": text, "exec": {"stdout": text}},
            {"id": "b", "sample": None, "completion": "plain"}]
    append_lines(path, rows)
    back, truncated = read_lines(path)
    assert back == rows and truncated == 0, pitfall


@pytest.mark.parametrize("text, pitfall", SEPARATORS)
def test_rft_samples_with_separators_read_back(tmp_path, text, pitfall):
    path = tmp_path / "samples.jsonl"
    row = {"id": "q", "style": "pot", "round": 0, "samples": [{"completion": text}]}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    rounds, truncated = read_rounds(path)
    assert rounds == {"q|pot": [[{"completion": text}]]} and truncated == 0, pitfall


def test_only_the_last_line_may_be_partial(tmp_path):
    path = tmp_path / "predictions.jsonl"
    good = json.dumps({"id": "a", "sample": None})
    path.write_text(good + "\n" + '{"id": "b", "sam')  # a crash mid-write: dropped and counted
    assert read_lines(path) == ([{"id": "a", "sample": None}], 1)
    path.write_text('{"id": "b", "sam\n' + good + "\n")  # damage elsewhere is NOT silently dropped
    with pytest.raises(DataError, match="predictions.jsonl:1"):
        read_lines(path)
