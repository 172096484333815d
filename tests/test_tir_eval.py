"""style=tir with a scripted model: code blocks run in the sandbox as the solution is written, their outputs are
inserted, state persists across blocks, a crashing and a looping block are handled, the round limit holds, and
every item counts (issue 19)."""

import json

import pytest
from transformers import AutoTokenizer

from _eval_fakes import ScriptedLM
from arithmo.evaluation import evaluate_items
from arithmo.prompts import TIR_INSTRUCTION

# question -> the solution's segments: the model writes segment i after the i-th output block.
SCRIPTS = {
    # state persists: the second block uses `total` from the first
    "Q1 apples": ["Count them.\n```python\ntotal = 14 + 21\nprint(total)\n```\n",
                  "Double it.\n```python\nprint(total * 2)\n```\n",
                  "So the answer is \\boxed{70}."],
    # a crashing block: the error line is shown, the model recovers in the next block
    "Q2 crash": ["```python\nprint(1 / 0)\n```\n", "Oops.\n```python\nprint(36 - 26)\n```\n",
                 "The answer is: 10"],
    # a looping block: the time limit stops it, the model answers anyway (wrongly)
    "Q3 loop": ["```python\nwhile True:\n    pass\n```\n", "The answer is: 5"],
    # never stops writing code: the round limit (max_tool_calls=3) ends it, without an answer
    "Q4 forever": ["```python\nprint('again')\n```\n"] * 10,
    # no code at all: plain chain of thought
    "Q5 plain": ["7 + 5 = 12. The answer is: 12"],
}
GOLDS = {"Q1 apples": "70", "Q2 crash": "10", "Q3 loop": "9", "Q4 forever": "1", "Q5 plain": "12"}
ITEMS = [{"id": q, "benchmark": "t", "question": q, "answer": GOLDS[q], "meta": {}} for q in SCRIPTS]


def respond(prompt, sampled, sample):
    question = next(q for q in SCRIPTS if q in prompt)
    done = prompt.count("```output\n")  # how many blocks the interpreter answered so far
    segments = SCRIPTS[question]
    return segments[min(done, len(segments) - 1)]


@pytest.fixture(scope="module")
def run(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = ScriptedLM(tokenizer, respond)
    lines, metrics = evaluate_items(model, tokenizer, ITEMS, "tir", max_new_tokens=400, workers=2,
                                    program_timeout_s=1.0, max_tool_calls=3, template="plain")
    return {line["id"]: line for line in lines}, metrics, model


def test_outputs_are_inserted_and_state_persists(run):
    lines, _, model = run
    line = lines["Q1 apples"]
    assert [call["output"].strip() for call in line["tool_calls"]] == ["35", "70"]
    assert "```output\n35\n```" in line["completion"] and "```output\n70\n```" in line["completion"]
    assert line["extracted"] == "70" and line["correct"] and line["stopped"] == "answered"
    assert TIR_INSTRUCTION in line["prompt"]
    # the model was prompted with its own text plus the inserted output, round after round
    assert any("```output\n35\n```" in prompt and "Double it" not in prompt for prompt in model.prompts)


def test_a_crashing_block_shows_its_error_and_the_solution_goes_on(run):
    line = run[0]["Q2 crash"]
    first, second = line["tool_calls"]
    assert first["error"] and "ZeroDivisionError" in first["output"] and not first["timed_out"]
    assert second["error"] is None and second["output"].strip() == "10"
    assert line["correct"]


def test_a_looping_block_times_out(run):
    line = run[0]["Q3 loop"]
    assert line["tool_calls"][0]["timed_out"] and line["extracted"] == "5" and not line["correct"]


def test_the_round_limit_holds_and_every_item_counts(run):
    lines, metrics, _ = run
    assert len(lines["Q4 forever"]["tool_calls"]) == 3 and lines["Q4 forever"]["stopped"] == "max_tool_calls"
    assert lines["Q4 forever"]["extracted"] is None and not lines["Q4 forever"]["correct"]
    assert lines["Q5 plain"]["tool_calls"] == [] and lines["Q5 plain"]["correct"]
    assert metrics["n"] == 5 and metrics["accuracy"] == pytest.approx(3 / 5)
    tir = metrics["tir"]
    assert tir["tool_calls"] == 2 + 2 + 1 + 3 + 0 and tir["tool_calls_per_item"] == pytest.approx(8 / 5)
    assert tir["tool_error_rate"] == pytest.approx(1 / 8) and tir["tool_timeout_rate"] == pytest.approx(1 / 8)
    assert tir["accuracy_by_tool_calls"] == {"0": {"n": 1, "correct": 1, "accuracy": 1.0},
                                             "1": {"n": 1, "correct": 0, "accuracy": 0.0},
                                             "2": {"n": 2, "correct": 2, "accuracy": 1.0},
                                             "3": {"n": 1, "correct": 0, "accuracy": 0.0}}
    assert tir["stopped"] == {"answered": 4, "no_code": 0, "max_tool_calls": 1, "token_budget": 0}
    json.dumps(metrics)  # metrics.json-ready


SESSION_SCRIPTS = {
    # a number drawn at random in block 1 is the same number in block 2: one interpreter, not a replay
    "Q6 random": ["```python\nimport random\nx = random.random()\nprint(round(x, 12))\n```\n",
                  "```python\nprint(round(x, 12))\n```\n", "The answer is: 1"],
    # three blocks of ~1.2 s each under program_timeout_s=3: each pays only its own time
    "Q7 slow": ["```python\nimport time\ntime.sleep(1.2)\ns = 1\nprint(s)\n```\n",
                "```python\ntime.sleep(1.2)\ns += 1\nprint(s)\n```\n",
                "```python\ntime.sleep(1.2)\ns += 1\nprint(s)\n```\n", "The answer is: 3"],
}


def test_blocks_share_one_interpreter_session(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)

    def respond(prompt, sampled, sample):
        question = next(q for q in SESSION_SCRIPTS if q in prompt)
        segments = SESSION_SCRIPTS[question]
        return segments[min(prompt.count("```output\n"), len(segments) - 1)]

    items = [{"id": q, "benchmark": "t", "question": q, "answer": a, "meta": {}}
             for q, a in (("Q6 random", "1"), ("Q7 slow", "3"))]
    lines, _ = evaluate_items(ScriptedLM(tokenizer, respond), tokenizer, items, "tir", max_new_tokens=400,
                              workers=2, program_timeout_s=3.0, max_tool_calls=4, template="plain")
    by_id = {line["id"]: line for line in lines}
    first, second = (call["output"].strip() for call in by_id["Q6 random"]["tool_calls"])
    assert first == second and first, "the random state of block 1 persists into block 2"
    slow = by_id["Q7 slow"]["tool_calls"]
    assert [call["output"].strip() for call in slow] == ["1", "2", "3"]
    assert not any(call["timed_out"] for call in slow), "no block pays for the ones before it"
    assert by_id["Q7 slow"]["correct"]
