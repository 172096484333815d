"""The near-duplicate check against test questions, the contamination report and its manifest summary."""

import json
import re

import numpy as np
import pytest

from arithmo.data.build import build_from_recipe
from arithmo.data.decontaminate import EXACT, NEAR, NGRAM, NONE, fingerprint, match_benchmarks
from arithmo.data.normalize import normalize_text as N

from _shared import REPO, shared_file

TINY = REPO / "data_recipes" / "tiny.yaml"


def _rows(path, key):
    return [json.loads(line)[key] for line in open(path)]


@pytest.fixture(scope="module")
def gsm_test():
    return _rows(shared_file("gsm8k/test_first300.jsonl"), "question")


@pytest.fixture(scope="module")
def math_test():
    return _rows(shared_file("math/test_dev500.jsonl"), "problem")


def _check(texts, questions, threshold=0.8, originals=None):
    bench = fingerprint("t", questions, {}, 10)
    m = match_benchmarks([N(t) for t in texts], [N(o) for o in (originals or [""] * len(texts))], [bench], 10,
                         threshold)["t"]
    return m


def _swap_sentences(text):
    sentences = re.split(r"(?<=[.?!])\s+", text)
    sentences[0], sentences[1] = sentences[1], sentences[0]
    return " ".join(sentences)


def test_rewrites_the_ngram_check_misses_are_caught_near(gsm_test, math_test):
    # Pitfall: a question with its first two sentences swapped has no 10-gram in common when its sentences
    # are short, and one replaced word in a short MATH problem breaks every 10-gram; the word set survives.
    swapped = [q for q in gsm_test if len(re.split(r"(?<=[.?!])\s+", q)) >= 3]
    rows = [_swap_sentences(q) for q in swapped]
    m = _check(rows, gsm_test, threshold=None)
    missed = [i for i in range(len(rows)) if m.check[i] == NONE]
    assert missed, "the fixture should include swaps the 10-gram check misses"
    m = _check([rows[i] for i in missed], gsm_test)
    assert (m.check == NEAR).all()
    # One word in the middle of a MATH problem replaced: every pair the 10-gram check misses and whose word
    # sets (computed here, independently) reach 0.8 with the test's numbers kept must come back as near.
    edited = []
    for p in math_test:
        words = p.split()
        words[len(words) // 2] = "zebra"
        edited.append(" ".join(words))
    m_off = _check(edited, math_test, threshold=None)
    m = _check(edited, math_test)
    caught = 0
    for i, (e, p) in enumerate(zip(edited, math_test)):
        if m_off.check[i] != NONE:
            continue
        a, b = set(N(e).split()), set(N(p).split())
        digits = {w for w in b if w.isdigit()} <= {w for w in a if w.isdigit()}
        expected = NEAR if len(a & b) / len(a | b) >= 0.8 and digits else None
        if expected is not None:
            assert m.check[i] == NEAR, (e, p)
            caught += 1
    assert caught >= 10


def test_no_false_positives_on_gsm8k_train_and_template_siblings(gsm_test):
    train = _rows(shared_file("gsm8k/train_first500.jsonl"), "question")
    m = _check(train, gsm_test)
    assert (m.check == NONE).all()  # GSM8K train and test are disjoint problems (max word-set J 0.55)
    # same words, another number: a sibling with another answer is kept, and the report says why
    test = "Compute the exact value of $\\cos 120^\\circ$ and write it in simplest radical form."
    m = _check([test.replace("120", "150"), test.replace("simplest", "the simplest")], [test])
    assert m.check.tolist() == [NONE, NGRAM] and m.numbers_differ.tolist() == [True, False]


def test_checks_are_filed_strongest_first_and_originals_count(gsm_test):
    swappable = [q for q in gsm_test if len(re.split(r"(?<=[.?!])\s+", q)) >= 3]
    q = next(q for q in swappable if _check([_swap_sentences(q)], gsm_test, threshold=None).check[0] == NONE)
    rows = [q.upper(), "Prefix words here. " + q, _swap_sentences(q), "An unrelated question about trains?"]
    originals = ["", "", "", q]  # a MetaMathQA row rewritten from the test question
    m = _check(rows, gsm_test, originals=originals)
    assert m.check.tolist() == [EXACT, NGRAM, NEAR, EXACT]
    assert m.via_original.tolist() == [False, False, False, True]
    assert (m.test_index == gsm_test.index(q)).all()
    assert m.similarity[0] == pytest.approx(1.0) and 0.8 <= m.similarity[2] <= 1.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_contam")
    return out, build_from_recipe(TINY, out, log=lambda line: None)


def test_tiny_build_writes_the_report_and_its_summary(tiny):
    out, manifest = tiny
    report = (out / "contamination.md").read_text()
    summary = manifest["decontamination"]
    held = summary["benchmarks"]["tiny_heldout"]
    assert held["rows_matched"] == sum(held["by_check"].values()) > 0
    dropped = sum(s["dropped"].get("contaminated", 0) for s in manifest["sources"].values())
    assert summary["rows_dropped"] == dropped
    assert held["by_check"]["ngram"] > 0 and held["by_check"]["near"] > 0  # templated text: both checks fire
    # the table row and the pairs side by side
    c = held["by_check"]
    assert f"| tiny_heldout | 60 | {c['exact']} | {c['ngram']} | {c['near']} | {held['rows_matched']} |" in report
    assert "### Matched, least similar first" in report and "### Closest kept pairs" in report
    assert "kept: a test number is missing" in report
    pair = re.search(r"^\| [01]\.\d{3} \| (ngram|near) \| `(\w+/\d{7})` \| (.+?) \| (.+?) \|$", report, re.M)
    assert pair is not None
    train_ids = {json.loads(line)["id"] for line in open(out / "train.jsonl")}
    assert pair.group(2) not in train_ids  # a matched row is not in the output


def test_report_when_decontamination_is_off(tmp_path):
    build_from_recipe(TINY, tmp_path, overrides=["decontaminate.enabled=false", "dedup.near=false"],
                      log=lambda line: None)
    report = (tmp_path / "contamination.md").read_text()
    assert "Decontamination disabled by the recipe" in report
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["decontamination"]["benchmarks"] == {} and manifest["decontamination"]["enabled"] is False


def test_near_check_can_be_turned_off_and_threshold_is_read(tmp_path):
    manifest = build_from_recipe(TINY, tmp_path, overrides=["decontaminate.near=false"], log=lambda line: None)
    held = manifest["decontamination"]["benchmarks"]["tiny_heldout"]
    assert held["by_check"]["near"] == 0 and manifest["decontamination"]["near_threshold"] is None
    strict = build_from_recipe(TINY, tmp_path / "s", overrides=["decontaminate.near_threshold=0.95"],
                               log=lambda line: None)
    assert strict["decontamination"]["benchmarks"]["tiny_heldout"]["by_check"]["near"] == 0
    assert np.isclose(strict["decontamination"]["near_threshold"], 0.95)


def test_skipped_benchmarks_are_reported_not_silent(tmp_path):
    src = REPO / "data_recipes" / "tiny" / "lila.jsonl"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: s\nsources:\n  - {{name: lila, adapter: lila, path: {src}}}\n"
                      f"decontaminate:\n  benchmarks:\n    - {{name: gone, benchmark: gsm8k, path: {tmp_path / 'no.jsonl'}, "
                      "required: false}\nval_size: 0\n")
    lines = []
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lines.append)
    assert "skipped" in manifest["decontamination"]["benchmarks"]["gone"]
    assert any("WARNING: decontamination against gone skipped" in line for line in lines)
    assert "| gone | skipped: not loaded:" in (tmp_path / "out" / "contamination.md").read_text()
    assert "contaminated" not in manifest["sources"]["lila"]["dropped"]


def test_the_reasoning_sets_are_decontaminated_and_reported(tmp_path):
    # Issue 26: a training copy of an AIME 2024 problem (a NuminaMath row, as AoPS problems often are) is found
    # and dropped; a clean row is NOT; each new set gets its row in contamination.md.
    fixtures = REPO / "tests" / "fixtures" / "benchmarks"
    aime = json.loads((fixtures / "aime24.jsonl").read_text().splitlines()[0])
    rows = [{"source": "amc_aime", "problem": aime["problem"], "solution": "... so the answer is $\\boxed{204}$."},
            {"source": "synthetic_math", "problem": "What is $12 \\cdot 7$?", "solution": "$\\boxed{84}$"}]
    src = tmp_path / "numina.jsonl"
    src.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\nsources:\n  - {{name: numina, adapter: numinamath, path: {src}}}\ndecontaminate:\n  benchmarks:\n"
        f"    - {{name: aime24, benchmark: aime24, path: {fixtures / 'aime24.jsonl'}}}\n"
        f"    - {{name: olympiadbench, benchmark: olympiadbench, path: {fixtures / 'olympiadbench.jsonl'}}}\n"
        "val_size: 0\n")
    manifest = build_from_recipe(recipe, tmp_path / "out", log=lambda line: None)
    record = manifest["decontamination"]["benchmarks"]
    assert record["aime24"]["rows_matched"] == 1 and record["aime24"]["by_check"]["exact"] == 1
    assert record["olympiadbench"]["rows_matched"] == 0 and record["olympiadbench"]["questions"] == 5
    report = (tmp_path / "out" / "contamination.md").read_text()
    assert "| aime24 | 3 | 1 |" in report and "| olympiadbench | 5 | 0 |" in report
