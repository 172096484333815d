"""The app and `python -m arithmo.eval` score the same completions the same way: one rule for each of the
strict/flexible CoT answer, the program's answer, the hybrid fallback and the majority vote.

The same scripted completions go to evaluation (`arithmo.evaluation.predict.predict` with a sandbox) and to
the app (`DemoSession` with a scripted generator); every verdict, graded answer and vote must agree.
"""

import re

import pytest
from _demo_fakes import ScriptedGenerator, is_pot_prompt

from arithmo.app.files import Example
from arithmo.app.session import DemoSession
from arithmo.evaluation.predict import predict
from arithmo.evaluation.scoring import majority_vote
from arithmo.sandbox import Sandbox
from arithmo.prompts import POT_HINTS

# (question, gold, CoT completion, PoT completion): each row is a pitfall where two copies of a rule drift.
CASES = [
    ("q1", "35", "14 + 21 = 35.\nThe answer is: 35", "```python\nprint(14 + 21)\n```"),  # both styles right
    ("q2", "10", "I think it is 10 apples", "```python\nprint(36 / 0)\n```"),  # no answer line: flexible only;
    # a crashing program: hybrid falls back to the CoT reply
    ("q3", "0.5", "The answer is: \\frac{1}{2}", "```python\nprint(1/2)\n```"),  # equivalent forms
    ("q4", "7", "The answer is: 8", "no program here"),  # wrong CoT; no program: hybrid falls back
    ("q5", "12", "so \\boxed{12}", "```python\nx = 5\n```"),  # boxed is strict; a program that prints nothing
    ("q6", "3", "The answer is: 3", "```python\nprint('3 apples')\n```"),  # words around a printed number
    ("q7", "2, 3", "x = \\boxed{2} or x = \\boxed{3}", "```python\nprint([2, 3])\n```"),  # several boxes answer a
    # list gold only when the gold is passed to extraction; a printed list is the list
]
GOLD = {q: gold for q, gold, _, _ in CASES}
COT = {q: cot for q, _, cot, _ in CASES}
POT = {q: pot for q, _, _, pot in CASES}


def reply(prompt: str, use_adapter: bool = True, seed: int = 0) -> str:
    question = next(q for q in GOLD if re.search(rf"\b{q}\b", prompt))  # the question ids are q1..q7
    return POT[question] if is_pot_prompt(prompt) else COT[question]


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(workers=1)
    yield box
    box.close()


def evaluation_lines(style: str, sandbox) -> dict[str, dict]:
    items = [{"id": q, "benchmark": "t", "question": q, "answer": GOLD[q], "meta": {}} for q in GOLD]

    def complete(prompts, num_samples, sampled):
        return [[reply(prompt) for _ in range(num_samples)] for prompt in prompts]

    lines = predict(items, style, complete, [None], tokenizer=None, template="plain", pot_hint=POT_HINTS[0],
                    run=lambda programs: sandbox.run(programs, timeout_s=3.0), grade_timeout_s=2.0)
    return {line["id"]: line for line in lines}


@pytest.mark.parametrize("style", ["cot", "pot", "hybrid"])
def test_app_and_evaluation_give_the_same_verdicts(style, sandbox):
    lines = evaluation_lines(style, sandbox)
    examples = [Example(q, GOLD[q], "t") for q in GOLD]
    session = DemoSession(ScriptedGenerator(reply), examples=examples, sandbox=sandbox)
    for question in GOLD:
        view = list(session.answer(question, style, 0.0, 64, 1))[-1]
        line = lines[question]
        assert view.graded_answer == line["extracted"], (style, question)
        assert view.correct == line["correct"], (style, question, view.status)
    # and they are not all the same verdict: the table exercises both outcomes
    assert {line["correct"] for line in lines.values()} == {True, False}


@pytest.mark.parametrize("answers", [
    ["0.5", "3", "\\frac{1}{2}", None],    # equivalent forms pool; a missing answer does not vote
    ["1", "2", "2", "1"],                  # a tie goes to the earliest group
    [None, None, None, None],              # nobody answered: no vote
    ["x", "12", "12.0", "x"],              # 12 and 12.0 are one answer: 2 vs 2, x came first
])
def test_app_vote_is_maj_at_k(answers, sandbox):
    replies = {seed: (f"The answer is: {answer}" if answer is not None else "no idea")
               for seed, answer in enumerate(answers)}
    session = DemoSession(ScriptedGenerator(lambda prompt, use_adapter, seed: replies[seed]), sandbox=sandbox)
    view = list(session.answer("q", "cot", 0.8, 64, k=len(answers)))[-1]
    assert view.graded_answer == majority_vote(answers)
    assert sum(row[1] for row in view.votes) == len(answers)


def test_app_tir_shows_each_block_and_agrees_with_evaluation(sandbox):
    """The TIR style in the app: text, the code block, its sandbox output inserted, the answer; the same verdict
    as style=tir in evaluation on the same scripted solution."""
    from arithmo.evaluation.tir import predict_tir

    segments = ["Add them.\n```python\nx = 14 + 21\nprint(x)\n```\n", "So \\boxed{35}."]

    def script(prompt, use_adapter=True, seed=0):
        return segments[min(prompt.count("```output\n"), len(segments) - 1)]

    session = DemoSession(ScriptedGenerator(script), examples=[Example("Shells?", "35", "t")], sandbox=sandbox)
    shown = []  # the view is one object updated in place: keep what it showed at each step
    for final in session.answer("Shells?", "tir", 0.0, 128, 1):
        shown.append(final.completion)
    assert "```output\n35\n```" in final.completion and final.completion.rstrip().endswith("So \\boxed{35}.")
    assert final.graded_answer == "35" and final.correct is True
    assert any("```output" not in text and "```python" in text for text in shown), \
        "the code block is shown before its output"
    lines = predict_tir([{"id": "s", "benchmark": "t", "question": "Shells?", "answer": "35", "meta": {}}],
                        lambda prompts, n, sampled, max_new_tokens=None: [[script(p)] * n for p in prompts], [None],
                        tokenizer=None, template="plain", open_session=lambda: sandbox.session(timeout_s=3.0),
                        grade_timeout_s=2.0)
    assert lines[0]["extracted"] == final.graded_answer and lines[0]["correct"] == final.correct
