"""Transforms: the standard answer line, programs that print, PoT hints and triggers, lowercasing."""

import random

import pytest

from arithmo.data.transforms import ensure_print, format_cot_answer, maybe_lowercase
from arithmo.prompts import POT_HINTS, add_pot_hint, stable_rng, strip_pot_trigger

# (solution, expected completion, expected answer, action)
ANSWER_FORMAT_CASES = [
    # already in MetaMath form: untouched
    ("3 + 4 = 7.\nThe answer is: 7", "3 + 4 = 7.\nThe answer is: 7", "7", "kept"),
    # GSM8K tail folded into the standard line
    ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "Natalia sold 48/2 = <<48/2=24>>24 clips.\nThe answer is: 72", "72", "folded_hash"),
    # MathInstruct's "The answer is X." (no colon, trailing period) reworded
    ("So it costs $5.\nThe answer is 5.", "So it costs $5.\nThe answer is: 5", "5", "normalized"),
    # a decimal's point is not the sentence's full stop
    ("Half of 5 is 2.5\nThe answer is 2.5", "Half of 5 is 2.5\nThe answer is: 2.5", "2.5", "normalized"),
    # multiple-choice answers keep their letter
    ("Option C fits. The answer is C", "Option C fits.\nThe answer is: C", "C", "normalized"),
]


@pytest.mark.parametrize("solution, completion, answer, action", ANSWER_FORMAT_CASES)
def test_format_cot_answer(solution, completion, answer, action):
    assert format_cot_answer(solution) == (completion, answer, action)


def test_boxed_answer_is_appended_as_the_line():
    pytest.importorskip("arithmo.grading.extract", reason="needs arithmo.grading (extract_answer)")
    completion, answer, action = format_cot_answer("So $x = \\boxed{\\frac{1}{2}}$.")
    assert action == "appended" and answer == "\\frac{1}{2}"
    assert completion.endswith("\nThe answer is: \\frac{1}{2}")
    # "The answer is" opening a sentence that runs on is not an answer line, and no marker follows
    text = "The answer is not obvious. We compute 2+2 and stop"
    assert format_cot_answer(text) == (text, None, "no_answer")


@pytest.mark.parametrize("program, expected, action", [
    ("print(1 + 1)", "print(1 + 1)", "kept"),
    ("answer = 5 + 6", "answer = 5 + 6\nprint(answer)", "print_added"),             # Lila style
    ("n0 = 3\nt0 = n0 * 2\nresult = t0 - 1\nx = 0", "n0 = 3\nt0 = n0 * 2\nresult = t0 - 1\nx = 0\nprint(result)", "print_added"),
    ("a = 2\nb = 3\nc = a * b", "a = 2\nb = 3\nc = a * b\nprint(c)", "print_added"),  # last assignment
    ("import math\nmath.sqrt(16)", "import math\nprint(math.sqrt(16))", "print_added"),  # bare expression
    ("def f(:\n  pass", "def f(:\n  pass", "unparsable"),                              # left for verification
    ("import math", "import math", "no_result"),
])
def test_ensure_print(program, expected, action):
    assert ensure_print(program) == (expected, action)


@pytest.mark.parametrize("question, stripped, removed", [
    ("What is 2+2? Let's write a Python program to solve it.", "What is 2+2?", True),
    ("What is 2+2? Please write a program to solve it", "What is 2+2?", True),          # no final period
    ("What is 2+2? Let's program in Python in the response.", "What is 2+2?", True),
    ("What is 2+2? Python it up!", "What is 2+2?", True),
    ("What is 2+2? Let's write a program. Python it up!", "What is 2+2?", True),        # stacked triggers
    ("A program costs $5. How much do 3 programs cost?", "A program costs $5. How much do 3 programs cost?", False),
    ("Write a program to add 2 and 3.", "Write a program to add 2 and 3.", False),     # the whole question
    ("Solve for x: 2x = 4.", "Solve for x: 2x = 4.", False),                           # a request, not for code
])
def test_strip_pot_trigger(question, stripped, removed):
    assert strip_pot_trigger(question) == (stripped, removed)


def test_every_hint_is_recognised_as_a_trigger():
    assert len(set(POT_HINTS)) == len(POT_HINTS) >= 100
    for hint in POT_HINTS:
        assert strip_pot_trigger(f"How many apples are left? {hint}") == ("How many apples are left?", True), hint


def test_hints_are_drawn_stably_per_row_and_vary_across_rows():
    drawn = {add_pot_hint("Q?", stable_rng(42, f"row{i}")) for i in range(400)}
    assert len(drawn) > 90  # 400 draws from 120 phrases cover most of them
    assert add_pot_hint("Q?", stable_rng(42, "row1")) == add_pot_hint("Q?", stable_rng(42, "row1"))
    assert stable_rng(42, "row1").random() != stable_rng(43, "row1").random()


def test_lowercase_share():
    rng = random.Random(0)
    lowered = sum(maybe_lowercase("What Is X?", 0.3, rng)[1] for _ in range(5000))
    assert 1350 < lowered < 1650  # 30% of 5000 = 1500, +-4.6 standard deviations
    assert maybe_lowercase("What Is X?", 1.0, rng) == ("what is x?", True)
    assert maybe_lowercase("What Is X?", 0.0, rng) == ("What Is X?", False)
