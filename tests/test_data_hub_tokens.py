"""Hub revision pinning (read_hub_rows, the manifest) and token-length percentiles per source."""

import json

import numpy as np
import pytest

from arithmo.data.build import build_from_recipe
from arithmo.io import DataError, loaded_revision, read_hub_rows

from _shared import REPO, make_tokenizer

COMMIT = "0c2603fba274c2e83ec9121bee3067e286ced194"  # a commit of hkust-nlp/dart-math-hard (its card's history)


def _fake_hub(monkeypatch, calls):
    """datasets.load_dataset replaced by a stand-in that records its arguments (the test stays offline)."""
    import datasets

    def load_dataset(path, name=None, split=None, revision=None, **kwargs):
        calls.append({"path": path, "name": name, "split": split, "revision": revision})
        if revision == "no-such-tag":
            raise FileNotFoundError(f"Revision '{revision}' doesn't exist for dataset '{path}' on the Hub.")
        rows = [{"query": f"What is {i} + {i}?", "response": f"{i} + {i} = {2 * i}.\nThe answer is: {2 * i}"}
                for i in range(1, 4)]
        dataset = datasets.Dataset.from_list(rows)
        # what datasets records for a hub load: each data file as hf://datasets/<id>@<commit>/<path>
        dataset.info.download_checksums = {
            f"hf://datasets/{path}@{COMMIT}/data/{split}-00000-of-00001.parquet": {"num_bytes": 1, "checksum": None}}
        return dataset

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


def test_revision_is_passed_and_the_commit_recorded(monkeypatch, tmp_path):
    calls = []
    _fake_hub(monkeypatch, calls)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: pinned\nsources:\n  - {name: dart, adapter: dart_math, hub: hkust-nlp/dart-math-hard, "
                      "splits: [train], revision: v1.0}\ndecontaminate: {enabled: false}\nval_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    assert calls == [{"path": "hkust-nlp/dart-math-hard", "name": None, "split": "train", "revision": "v1.0"}]
    source = manifest["inputs"][0]
    assert source["revision"] == "v1.0" and source["revisions"] == {"train": COMMIT}
    assert manifest["sources"]["dart"]["rows_out"] == 3
    # an unpinned build still records the commit it read, so it can be pinned afterwards
    recipe.write_text(recipe.read_text().replace(", revision: v1.0", ""))
    manifest = build_from_recipe(recipe, tmp_path / "out2", log=lambda line: None)
    assert calls[-1]["revision"] is None and manifest["inputs"][0]["revisions"] == {"train": COMMIT}
    assert "revision" not in manifest["inputs"][0]


def test_several_configs_are_read_in_order_each_with_its_commit(monkeypatch, tmp_path):
    calls = []
    _fake_hub(monkeypatch, calls)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: m\nsources:\n  - {name: math, adapter: dart_math, hub: some/math, "
                      "configs: [algebra, geometry], splits: [train]}\ndecontaminate: {enabled: false}\nval_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    assert [c["name"] for c in calls] == ["algebra", "geometry"]
    assert manifest["inputs"][0]["revisions"] == {"algebra/train": COMMIT, "geometry/train": COMMIT}
    assert manifest["sources"]["math"]["rows_in"] == 6


def test_an_unknown_revision_fails_naming_it(monkeypatch):
    _fake_hub(monkeypatch, [])
    with pytest.raises(DataError, match="revision 'no-such-tag'"):
        list(read_hub_rows("hkust-nlp/dart-math-hard", None, "train", revision="no-such-tag"))


def test_a_local_dataset_folder_has_no_revision(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"query": "q", "response": "r"}) + "\n")
    resolved = {}
    rows = list(read_hub_rows(str(tmp_path), None, "train", resolved=resolved))
    assert len(rows) == 1 and resolved == {"revision": None}
    assert loaded_revision(object()) is None


# ---------------------------------------------------------------------------------------------------------
# token lengths


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    make_tokenizer(out, chat_template=True)
    return out


def test_token_percentiles_per_source_match_a_direct_count(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    from arithmo.prompts import render_sft

    manifest = build_from_recipe(REPO / "data_recipes" / "tiny.yaml", tmp_path,
                                 overrides=[f"tokenizer={tokenizer_dir}"], log=lambda line: None)
    lengths = manifest["token_lengths"]
    assert set(lengths["by_source"]) == {"metamathqa", "mathinstruct", "lila_ood"}
    # recount one source directly: training's rendering, then the tokenizer (this ChatML template writes no
    # BOS, and render_sft ends the completion with <|im_end|>, the end of turn)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = [json.loads(line) for name in ("train.jsonl", "val.jsonl") for line in open(tmp_path / name)]
    totals, prompts = [], []
    for row in (r for r in rows if r["source"] == "lila_ood"):
        rendered = render_sft(row, tok, "auto")
        assert rendered["completion"].endswith("<|im_end|>")
        totals.append(len(tok(rendered["prompt"] + rendered["completion"])["input_ids"]))
        prompts.append(len(tok(rendered["prompt"])["input_ids"]))
    entry = lengths["by_source"]["lila_ood"]
    assert entry["rows"] == len(totals) == manifest["sources"]["lila_ood"]["rows_out"]
    assert entry["total"]["max"] == max(totals) and entry["prompt"]["max"] == max(prompts)
    assert entry["total"]["p50"] == int(np.ceil(np.percentile(totals, 50)))
    assert entry["total"]["p99"] == int(np.ceil(np.percentile(totals, 99)))
    assert entry["over"]["512"] == sum(t > 512 for t in totals)
    assert manifest["token_lengths"]["tokenizer"] == str(tokenizer_dir)


def test_no_tokenizer_no_lengths_and_a_bad_one_fails_clearly(tmp_path):
    manifest = build_from_recipe(REPO / "data_recipes" / "tiny.yaml", tmp_path, log=lambda line: None)
    assert "token_lengths" not in manifest
    with pytest.raises(DataError, match="tokenizer: cannot load"):
        build_from_recipe(REPO / "data_recipes" / "tiny.yaml", tmp_path / "b",
                          overrides=[f"tokenizer={tmp_path / 'no-such-tokenizer'}"], log=lambda line: None)
