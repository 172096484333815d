"""PoT, hybrid, maj@k and resume with a scripted stand-in model, so every rate is known exactly.

The items are the first rows of the demo's held-out set (data_recipes/tiny/heldout.jsonl). The stand-in
writes one correct program, one that crashes, one that never ends, one reply without a program and one
program that prints a wrong number; the checks below are exact fractions of 5.
"""

import json

import pytest
from transformers import AutoTokenizer

from _eval_fakes import ScriptedLM
from _shared import REPO
from arithmo.io import DataError
from arithmo.evaluation import evaluate_items
from arithmo.evaluation.scoring import majority_vote
from arithmo.prompts import POT_HINTS

ITEMS = [json.loads(line) for line in open(REPO / "data_recipes" / "tiny" / "heldout.jsonl")][:5]
GOLDS = ["35", "10", "69", "25", "172"]
POT = {  # question -> PoT completion
    ITEMS[0]["question"]: "```python\nshells = 14 + 21\nprint(shells)\n```",
    ITEMS[1]["question"]: "```python\nleft = 36 / 0\nprint(left)\n```",
    ITEMS[2]["question"]: "```python\nwhile True:\n    pass\n```",
    ITEMS[3]["question"]: "I am not sure how to do this one.",
    ITEMS[4]["question"]: "```python\nprint(57 + 5 * 23 + 1)\n```",
}
COT = {  # question -> CoT completion (hybrid's fallback)
    ITEMS[1]["question"]: "36 - 26 = 10.\nThe answer is: 10",
    ITEMS[2]["question"]: "The answer is: 70",
    ITEMS[3]["question"]: "Each friend gets 25 pencils",
}


def scripted_respond(prompt, sampled, sample):
    question = next(q for q in POT if q in prompt)
    return POT[question] if POT_HINTS[0] in prompt else COT.get(question, "no idea")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def run(tokenizer, style, items=ITEMS, respond=scripted_respond, **kwargs):
    model = ScriptedLM(tokenizer, respond)
    kwargs.setdefault("program_timeout_s", 1.0)
    lines, metrics = evaluate_items(model, tokenizer, items, style, max_new_tokens=64, workers=2, **kwargs)
    return model, lines, metrics


def test_items_fixture_matches_golds():
    assert [item["answer"] for item in ITEMS] == GOLDS


def test_pot_rates_are_exact(tokenizer):
    model, lines, metrics = run(tokenizer, "pot")
    assert [line["extracted"] for line in lines] == ["35", None, None, None, "173"]
    assert [line["correct"] for line in lines] == [True, False, False, False, False]
    assert lines[0]["exec"] == {"stdout": "35\n", "error": None, "timed_out": False}
    assert lines[1]["exec"]["error"].startswith("ZeroDivisionError") and not lines[1]["exec"]["timed_out"]
    assert lines[2]["exec"]["timed_out"] is True
    assert lines[3]["program"] is None and lines[3]["exec"] is None
    assert metrics["n"] == 5
    assert metrics["accuracy"] == 1 / 5 and metrics["accuracy_flexible"] == 1 / 5
    assert metrics["exec_error_rate"] == 1 / 5
    assert metrics["exec_timeout_rate"] == 1 / 5
    assert metrics["no_program_rate"] == 1 / 5
    assert metrics["no_answer_rate"] == 3 / 5
    assert metrics["by_type"]["add"] == {"n": 1, "correct": 1, "accuracy": 1.0}
    assert sum(group["n"] for group in metrics["by_level"].values()) == 5
    assert all(POT_HINTS[0] in prompt for prompt in model.prompts), "PoT prompts carry the hint"
    assert len(model.prompts) == 5


def test_hybrid_falls_back_to_cot_when_the_program_gives_no_answer(tokenizer):
    model, lines, metrics = run(tokenizer, "hybrid")
    assert [line["answer_source"] for line in lines] == ["pot", "cot", "cot", None, "pot"]
    assert [line["fallback"] is not None for line in lines] == [False, True, True, True, False]
    assert lines[1]["fallback"]["completion"] == COT[ITEMS[1]["question"]]
    assert POT_HINTS[0] not in lines[1]["fallback"]["prompt"]
    assert lines[1]["exec"]["error"].startswith("ZeroDivisionError"), "the PoT attempt stays on the line"
    assert [line["extracted"] for line in lines] == ["35", "10", "70", None, "173"]
    assert [line["extracted_flexible"] for line in lines] == ["35", "10", "70", "25", "173"]
    assert metrics["accuracy"] == 2 / 5
    assert metrics["accuracy_flexible"] == 3 / 5
    assert metrics["cot_fallback_rate"] == 3 / 5
    assert metrics["exec_error_rate"] == 1 / 5 and metrics["exec_timeout_rate"] == 1 / 5
    assert metrics["no_answer_rate"] == 1 / 5
    assert len(model.prompts) == 5 + 3, "CoT is asked only for the three failures"


SAMPLED = {  # question -> (greedy completion, the k=3 sampled completions)
    ITEMS[0]["question"]: ("The answer is: 34", ["The answer is: 35", "The answer is: 34", "The answer is: 35.0"]),
    ITEMS[1]["question"]: ("The answer is: 10", ["no idea", "The answer is: 9", "The answer is: 11"]),
    ITEMS[2]["question"]: ("The answer is: 69", ["hmm", "no idea", "still no idea"]),
}


def sampled_respond(prompt, sampled, sample):
    greedy, samples = next(v for q, v in SAMPLED.items() if q in prompt)
    return samples[sample] if sampled else greedy


def test_maj_k_votes_beside_greedy(tokenizer):
    model, lines, metrics = run(tokenizer, "cot", items=ITEMS[:3], respond=sampled_respond, k=3, temperature=0.8)
    assert [(line["id"], line["sample"]) for line in lines] == [
        (item["id"], sample) for item in ITEMS[:3] for sample in (None, 0, 1, 2)]
    assert metrics["accuracy"] == 2 / 3  # greedy: 34 (wrong), 10, 69
    # votes: {35, 35.0} beat 34 -> right; 9 and 11 tie -> the earlier, 9 -> wrong; no answers -> none
    assert metrics["maj_k"] == {"k": 3, "temperature": 0.8, "accuracy": 1 / 3, "correct": 1, "no_answer_rate": 1 / 3}
    greedy_calls = [c for c in model.calls if not c["do_sample"]]
    sampled_calls = [c for c in model.calls if c["do_sample"]]
    assert greedy_calls and all(c["n"] == 1 for c in greedy_calls)
    assert sampled_calls and all(c["n"] == 3 and c["temperature"] == 0.8 and c["top_k"] == 0 for c in sampled_calls)


def test_majority_vote_pools_equivalent_answers():
    assert majority_vote(["1/2", "3", "0.5", "3", None]) == "1/2"  # 2 votes each: the earlier group wins
    assert majority_vote(["3", "\\frac{1}{2}", "0.5"]) == "\\frac{1}{2}"
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


def test_resume_skips_done_items_and_redoes_broken_ones(tokenizer, tmp_path):
    path = tmp_path / "predictions.jsonl"
    _, full_lines, full = run(tokenizer, "pot", predictions_path=path, save_every=2)
    assert len(path.read_text().splitlines()) == 5
    # A crash: three whole lines, then half of the fourth.
    kept = path.read_text().splitlines()
    path.write_text("\n".join(kept[:3]) + "\n" + kept[3][: len(kept[3]) // 2])
    model, lines, again = run(tokenizer, "pot", predictions_path=path)
    assert len(model.prompts) == 2, "only the two unfinished items are generated again"
    assert again["resumed_items"] == 3
    assert {k: v for k, v in again.items() if k not in ("seconds", "resumed_items")} == \
           {k: v for k, v in full.items() if k not in ("seconds", "resumed_items")}
    assert lines == full_lines
    assert len(path.read_text().splitlines()) == 5
    # A smaller n reads its items from the file and leaves the other lines alone.
    model, lines, subset = run(tokenizer, "pot", items=ITEMS[:2], predictions_path=path)
    assert model.prompts == [] and subset["n"] == 2 and subset["accuracy"] == 1 / 2
    assert len(path.read_text().splitlines()) == 5
    # resume=False starts over.
    model, _, _ = run(tokenizer, "pot", predictions_path=path, resume=False)
    assert len(model.prompts) == 5 and len(path.read_text().splitlines()) == 5


def test_resume_with_maj_k_redoes_items_missing_samples(tokenizer, tmp_path):
    path = tmp_path / "predictions.jsonl"
    run(tokenizer, "cot", items=ITEMS[:3], respond=sampled_respond, k=3, temperature=0.8, predictions_path=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    # Drop the last sample of the second item: that item must run again, the others not.
    rows = [r for r in rows if not (r["id"] == ITEMS[1]["id"] and r["sample"] == 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model, lines, metrics = run(tokenizer, "cot", items=ITEMS[:3], respond=sampled_respond, k=3, temperature=0.8,
                                predictions_path=path)
    assert model.prompts and all(ITEMS[1]["question"] in p for p in model.prompts)
    assert metrics["resumed_items"] == 2 and len(lines) == 12
    assert metrics["maj_k"]["accuracy"] == 1 / 3


def test_resume_refuses_another_style(tokenizer, tmp_path):
    path = tmp_path / "predictions.jsonl"
    run(tokenizer, "pot", items=ITEMS[:1], predictions_path=path)
    with pytest.raises(DataError, match="style 'pot', this run is 'cot'"):
        run(tokenizer, "cot", items=ITEMS[:1], predictions_path=path)


def test_argument_errors(tokenizer):
    with pytest.raises(ValueError, match="style"):
        run(tokenizer, "pal")
    with pytest.raises(ValueError, match="empty list"):
        run(tokenizer, "cot", items=[])
    with pytest.raises(ValueError, match="temperature > 0"):
        run(tokenizer, "cot", k=4, temperature=0.0)


def test_plain_template_stops_before_an_invented_next_question(tiny_base_model_dir):
    base_tokenizer = AutoTokenizer.from_pretrained(tiny_base_model_dir)  # no chat template: plain prompts
    rambling = "14 + 21 = 35.\nThe answer is: 35\n\nQuestion: And 36 more?\n\nAnswer: The answer is: 71"
    model, lines, metrics = run(base_tokenizer, "cot", items=ITEMS[:1], respond=lambda p, s, j: rambling)
    assert model.calls[0]["stop_strings"] == ["\nQuestion:"]
    assert lines[0]["prompt"] == f"Question: {ITEMS[0]['question']}\n\nAnswer:"
    assert lines[0]["completion"] == "14 + 21 = 35.\nThe answer is: 35\n"
    assert lines[0]["extracted"] == "35" and metrics["accuracy"] == 1.0
