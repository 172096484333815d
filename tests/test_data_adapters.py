"""Source adapters on rows in each source's exact schema (synthetic fixtures written here)."""

import json

import pytest

from arithmo.data.adapters import ADAPTERS, mathinstruct_style
from arithmo.io import DataError, read_file_rows, read_hub_rows

# One row per source, in the exact column layout of the hub datasets (synthetic content).
METAMATHQA_ROW = {"query": "Tom has 3 apples and buys 4 more. How many apples does he have?",
                  "response": "He has 3 + 4 = 7 apples.\nThe answer is: 7", "type": "GSM_Rephrased",
                  "original_question": "Tom has 3 apples. He buys 4 more. How many apples?"}
MATHINSTRUCT_COT = {"instruction": "What is 2 + 2?", "output": "2 + 2 = 4. The answer is 4",
                    "source": "data/CoT/gsm_rft.json"}
MATHINSTRUCT_POT = {"instruction": "What is 2 + 2? Let's write a Python program.",
                    "output": "print(2 + 2)", "source": "data/PoT/mathqa.json"}
LILA_ROW = {"input": "Add 5 and 6.", "output_program": "answer = 5 + 6\nprint(answer)",
            "output_answer": "11", "split": "train", "dataset": "add_sub"}


def test_metamathqa_maps_fields_and_keeps_type():
    got = ADAPTERS["metamathqa"](METAMATHQA_ROW, "f:1")
    assert got["question"] == METAMATHQA_ROW["query"] and got["solution"] == METAMATHQA_ROW["response"]
    assert got["style"] == "cot"
    assert got["meta"] == {"type": "GSM_Rephrased", "original_question": METAMATHQA_ROW["original_question"]}


@pytest.mark.parametrize("path, style", [
    ("data/CoT/gsm_rft.json", "cot"),
    ("data/PoT/mathqa.json", "pot"),
    ("data/PoT/MATH_train.json", "pot"),
    ("data/CoT/MATH_train.json", "cot"),
    ("data\\PoT\\numglue.json", "pot"),          # Windows separators
    ("data/CoT/pot_luck.json", "cot"),           # "pot" in a file name is not the PoT folder
])
def test_mathinstruct_style_from_source_path(path, style):
    assert mathinstruct_style(path) == style


def test_mathinstruct_pot_and_cot():
    assert ADAPTERS["mathinstruct"](MATHINSTRUCT_COT, "f:1")["style"] == "cot"
    pot = ADAPTERS["mathinstruct"](MATHINSTRUCT_POT, "f:2")
    assert pot["style"] == "pot" and pot["solution"] == "print(2 + 2)" and pot["meta"]["path"] == "data/PoT/mathqa.json"


def test_lila_keeps_program_answer_and_split():
    got = ADAPTERS["lila"](LILA_ROW, "f:1")
    assert got["style"] == "pot" and got["answer"] == "11" and got["solution"].startswith("answer = 5 + 6")
    assert got["meta"] == {"dataset": "add_sub", "split": "train"}


@pytest.mark.parametrize("adapter, row, reason", [
    ("metamathqa", {**METAMATHQA_ROW, "query": "   "}, "empty_question"),
    ("metamathqa", {**METAMATHQA_ROW, "response": ""}, "empty_solution"),
    ("mathinstruct", {**MATHINSTRUCT_COT, "instruction": None}, "empty_question"),
    ("lila", {**LILA_ROW, "output_program": ""}, "empty_solution"),
])
def test_unusable_rows_name_a_reason(adapter, row, reason):
    assert ADAPTERS[adapter](row, "f:1") == reason


@pytest.mark.parametrize("adapter, row, missing", [
    ("metamathqa", {"question": "q", "answer": "a"}, "'query', 'response'"),   # a GSM8K file given as MetaMathQA
    ("mathinstruct", {"instruction": "q", "output": "a"}, "'source'"),
    ("lila", {"input": "q", "output_answer": "1"}, "'output_program'"),
])
def test_missing_field_fails_naming_file_line_and_field(tmp_path, adapter, row, missing):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(METAMATHQA_ROW if adapter == "metamathqa" else
                               MATHINSTRUCT_COT if adapter == "mathinstruct" else LILA_ROW) + "\n\n"
                    + json.dumps(row) + "\n")
    rows = list(read_file_rows(path))
    ADAPTERS[adapter](rows[0][1], rows[0][0])  # the well-formed first row passes
    with pytest.raises(DataError) as err:
        ADAPTERS[adapter](rows[1][1], rows[1][0])
    assert f"{path}:3" in str(err.value)  # line 3: blank lines still count
    assert missing in str(err.value)


def test_reads_json_and_parquet_and_reports_bad_json(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.json").write_text(json.dumps([LILA_ROW, LILA_ROW]))
    assert [w for w, _ in read_file_rows(tmp_path / "a.json")] == [f"{tmp_path}/a.json[0]", f"{tmp_path}/a.json[1]"]
    pq.write_table(pa.Table.from_pylist([LILA_ROW] * 3), tmp_path / "a.parquet")
    assert len(list(read_file_rows(tmp_path / "a.parquet", max_rows=2))) == 2
    (tmp_path / "bad.jsonl").write_text(json.dumps(LILA_ROW) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        list(read_file_rows(tmp_path / "bad.jsonl"))
    (tmp_path / "x.csv").write_text("query,response\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        list(read_file_rows(tmp_path / "x.csv"))


def test_hub_loader_reads_a_local_dataset_folder(tmp_path):
    """The hub path goes through datasets.load_dataset; a local folder stands in for the hub id."""
    folder = tmp_path / "lila_ood"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({**LILA_ROW, "input": f"Add {i}."}) + "\n" for i in range(4)))
    (folder / "test.jsonl").write_text(json.dumps(LILA_ROW) + "\n")
    rows = list(read_hub_rows(str(folder), None, "train"))
    assert [r["input"] for _, r in rows] == [f"Add {i}." for i in range(4)]
    assert rows[0][0] == f"{folder}:train[0]"
    assert len(list(read_hub_rows(str(folder), None, "test"))) == 1


def test_hub_loader_offline_error_says_what_to_do(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the libraries read these once at import: set their module flags too, or each call retries the network
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="point the recipe's `path:` at a local"):
        list(read_hub_rows("no-such-org/no-such-dataset-arithmo", None, "train"))
