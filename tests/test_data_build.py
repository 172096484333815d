"""The whole build on the tiny recipe: accounting, determinism, transforms recorded, CLI errors."""

import json
import subprocess
import sys

import pytest

from arithmo.data.build import build_from_recipe
from arithmo.io import DataError
from arithmo.records import SFT_KEYS

from _shared import REPO

TINY = REPO / "data_recipes" / "tiny.yaml"


def _read(path):
    return [json.loads(line) for line in open(path)]


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, build_from_recipe(TINY, out, log=lambda line: None)


def test_every_input_row_is_accounted_for(tiny_build):
    out, manifest = tiny_build
    totals = manifest["totals"]
    assert totals["balanced"]
    for name, src in manifest["sources"].items():
        assert src["rows_in"] == src["rows_out"] + sum(src["dropped"].values()), name
    # rows in = the lines of the shipped files
    lines = {name: sum(1 for _ in open(REPO / "data_recipes" / "tiny" / f)) for name, f in
             [("metamathqa", "metamathqa.jsonl"), ("mathinstruct", "mathinstruct.jsonl"), ("lila_ood", "lila.jsonl")]}
    assert {n: s["rows_in"] for n, s in manifest["sources"].items()} == lines
    train, val = _read(out / "train.jsonl"), _read(out / "val.jsonl")
    assert len(train) == totals["train"] and len(val) == totals["val"] == 40
    assert totals["rows_out"] == len(train) + len(val)
    # data_recipes/README.md's row for tiny.yaml (update both together, saying why the counts moved)
    readme = (REPO / "data_recipes" / "README.md").read_text()
    assert (f"| {totals['rows_in']} | {totals['rows_out']} (train {totals['train']}, val {totals['val']}) — measured |"
            in readme)
    assert len({r["id"] for r in train + val}) == len(train) + len(val)


def test_drop_reasons_match_what_the_fixture_planted(tiny_build):
    _, manifest = tiny_build
    meta, inst, lila = (manifest["sources"][n]["dropped"] for n in ("metamathqa", "mathinstruct", "lila_ood"))
    assert meta["empty_question"] == 1 and meta["duplicate"] == 1     # make_tiny.py plants one of each
    assert inst["near_duplicate"] == 1                                 # the re-spaced MetaMathQA question
    assert lila["split_excluded"] == 50                                 # dev + test: 2 in every 10 rows
    # the templated rows share 10-grams with the held-out set from the same templates
    assert set(manifest["decontamination"]["hits"]) <= {f"{s}<-tiny_heldout" for s in ("metamathqa", "mathinstruct", "lila_ood")}


def test_records_follow_the_contract(tiny_build):
    out, manifest = tiny_build
    rows = _read(out / "train.jsonl") + _read(out / "val.jsonl")
    assert all(tuple(r) == SFT_KEYS for r in rows)
    cot = [r for r in rows if r["style"] == "cot"]
    pot = [r for r in rows if r["style"] == "pot"]
    assert cot and pot
    assert all(r["completion"].splitlines()[-1].startswith("The answer is: ") for r in cot)
    assert not any("####" in r["completion"] for r in cot)
    assert all("print(" in r["completion"] for r in pot)
    # every PoT prompt carries exactly one of our hint phrases and no stock trigger remains
    from arithmo.prompts import POT_HINTS
    assert all(sum(r["prompt"].endswith(h) for h in POT_HINTS) == 1 for r in pot)
    assert not any("Let's write a Python program to solve it." in r["prompt"] for r in pot)
    actions = manifest["transforms"]["actions"]
    assert actions["answer_folded_hash"] > 0 and actions["trigger_replaced"] > 0 and actions["program_print_added"] > 0
    lowered = sum(r["prompt"][0].islower() for r in rows)
    assert 0.2 < lowered / len(rows) < 0.4  # 30% lowercased


def test_same_seed_is_byte_identical_and_seed_matters(tmp_path):
    quiet = dict(log=lambda line: None)
    build_from_recipe(TINY, tmp_path / "a", **quiet)
    build_from_recipe(TINY, tmp_path / "b", **quiet)
    build_from_recipe(TINY, tmp_path / "c", overrides=["seed=7"], **quiet)
    for name in ("train.jsonl", "val.jsonl", "manifest.json", "contamination.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()


def test_manifest_records_inputs_recipe_and_seed(tiny_build):
    _, manifest = tiny_build
    assert manifest["seed"] == 42 and manifest["recipe"] == "tiny"
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["config"]["dedup"]["threshold"] == 0.85
    assert "git_sha" in manifest


def test_malformed_source_fails_naming_file_and_line(tmp_path):
    bad = tmp_path / "meta.jsonl"
    bad.write_text(json.dumps({"query": "q", "response": "r\nThe answer is: 1"}) + "\n"
                   + json.dumps({"question": "q", "answer": "#### 1"}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: bad\nsources:\n  - {{name: m, adapter: metamathqa, path: {bad}}}\n")
    with pytest.raises(DataError, match=rf"{bad}:2: missing field\(s\) 'query', 'response'"):
        build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)


def test_cli_builds_and_reports_bad_keys(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "arithmo.data", "build", str(TINY), "--out", str(tmp_path / "o"),
                         "val_size=10", "dedup.near=false"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "rows in" in ok.stdout and len(_read(tmp_path / "o" / "val.jsonl")) == 10
    bad = subprocess.run([sys.executable, "-m", "arithmo.data", "build", str(TINY), "--out", str(tmp_path / "x"),
                          "dedup.treshold=0.5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown key 'dedup.treshold' (did you mean 'dedup.threshold'?)" in bad.stderr


def test_verify_pot_drops_failing_and_wrong_programs(tmp_path):
    pytest.importorskip("arithmo.sandbox.pool", reason="needs the PoT sandbox (arithmo.sandbox.pool)")
    rows = [("Add 2 and 3.", "print(2 + 3)", "5"),           # correct
            ("Add 2 and 4.", "print(2 + 5)", "6"),           # runs, wrong answer
            ("Add 2 and 5.", "print(2 / 0)", "7"),           # crashes
            ("Add 2 and 6.", "while True:\n    pass", "8"),  # never ends
            ("Add 2 and 7.", "x = 2 + 7", "9")]              # prints nothing: ensure_print adds print(x)
    src = tmp_path / "lila.jsonl"
    src.write_text("".join(json.dumps({"input": q, "output_program": p, "output_answer": a, "split": "train",
                                       "dataset": "t"}) + "\n" for q, p, a in rows))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: v\nsources:\n  - {{name: lila, adapter: lila, path: {src}}}\n"
                      "dedup: {near: false}\ntransforms: {verify_pot: true, program_timeout_s: 2.0}\nval_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    assert manifest["sources"]["lila"]["dropped"] == {"pot_failed": 1, "pot_timeout": 1, "pot_wrong_answer": 1}
    kept = sorted(r["completion"] for r in _read(tmp_path / "out" / "train.jsonl"))
    assert kept == ["print(2 + 3)", "x = 2 + 7\nprint(x)"]
