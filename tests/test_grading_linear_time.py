"""Every reader of model text or program output works in time linear in its length, under its size cap
(issue 25): adversarial texts up to the output cap (64 KiB) go to extraction, program-answer reading,
normalisation, comparison and RFT's arithmetic filter, and none may take more than 50 ms.

Each text is a pitfall that made a reader quadratic or exponential before (named in its comment). The time
is the CPU time of the calling thread (`time.thread_time`: the function's own work, not the time other
processes on a loaded machine take), best of three runs; inputs are cut at 64 KiB (the sandbox's output
limit), and answer-sized pitfalls are also fed at the normaliser's own cap (MAX_ANSWER_CHARS).
"""

import time

import pytest

from arithmo.grading import (
    answer_from_output,
    extract_answer,
    extract_program,
    is_equivalent,
    normalize_answer,
    read_python_value,
)
from arithmo.grading.normalize import MAX_ANSWER_CHARS
from arithmo.grading.pyoutput import NotReadable, last_printed_value
from arithmo.rft.dedup import wrong_equations

CAP = 64 * 1024  # bytes a program may print (sandbox output limit); completions are no longer in practice
LIMIT_S = 0.050


def _fill(unit: str, size: int = CAP, head: str = "", tail: str = "") -> str:
    body = unit * (max(1, size - len(head) - len(tail)) // max(1, len(unit)) + 1)
    return (head + body)[: size - len(tail)] + tail


# (name, text): a pitfall in each comment
ADVERSARIAL = [
    ("spaced numbers + word", " ".join(map(str, range(10, 12000)))[:CAP - 3] + " cm"),  # print(*range(10, 50), "cm"):
    # the spaced-number regex backtracked exponentially (20 numbers 0.75 s, doubling)
    ("spaced numbers short", " ".join(map(str, range(10, 50))) + " cm"),                # the 123-byte printout
    ("unclosed fbox", _fill("\\fbox{")),                    # 10,900 unclosed \fbox{: 29 s in the box scan
    ("unclosed boxed", _fill("\\boxed{1")),
    ("boxes", _fill("\\boxed{1} ")),                        # every box collected once, not rescanned
    ("text units", _fill("\\text{a}", head="5")),            # 5 + 8,000 \text{a}: 20 s in normalisation
    ("text units at cap", _fill("\\text{a}", MAX_ANSWER_CHARS, head="5")),
    ("text units + x", _fill("\\text{ cm}", MAX_ANSWER_CHARS, head="5", tail="x")),  # units that end in no end
    ("open braces", _fill("{")),
    ("close braces", _fill("}")),
    ("open brackets", _fill("(")),
    ("square brackets", _fill("[")),
    ("numpy-like", _fill("[1. 2. ", tail="x")),                # numpy str pattern with ambiguous digit runs
    ("digits", _fill("1")),
    ("trailing zeros", _fill("0", MAX_ANSWER_CHARS, head="1.", tail="1")),  # (\d+\.\d*?)0+ backtracking
    ("trailing zeros long", _fill("0", head="1.", tail="1")),
    ("repeating dots", _fill("6", MAX_ANSWER_CHARS, head="0.", tail="...")),
    ("digit groups", _fill(" 000", MAX_ANSWER_CHARS, head="1")),
    ("spaced digits", _fill("1 ", MAX_ANSWER_CHARS)),
    ("mixed numbers", _fill("1 1/2 ", MAX_ANSWER_CHARS)),
    ("thousands", _fill(",000", MAX_ANSWER_CHARS, head="1")),
    ("answer is", _fill("The answer is ")),
    ("answer colon", _fill("Answer: ")),
    ("answer lines", _fill("Answer:\n")),                   # each marker copied the rest of the text
    ("final answer bold", _fill("**Final Answer:**\n")),
    ("hash lines", _fill("\n#### ")),
    ("run-on", _fill("Question: 1\nAnswer: 2\n")),          # each new question searched the text before it
    ("run-on late marker", _fill("\nQuestion: 1", tail="The answer is 5")),
    ("think open", _fill("<think>")),
    ("think close", _fill("</think>")),
    ("answer tags", _fill("<answer>")),
    ("answer tags closed", _fill("<answer>1</answer>")),
    ("zh markers", _fill("答案是")),
    ("zh answer lines", _fill("\n答：")),
    ("full width", _fill("１２")),
    ("fracs", _fill("\\frac{")),
    ("fracs closed", _fill("\\frac{1}{2}")),
    ("sqrt", _fill("\\sqrt{")),
    ("powers", _fill("^{")),
    ("e powers", _fill("e^{\\ln ", MAX_ANSWER_CHARS)),
    ("trig degrees", _fill("\\sin 30^\\circ ", MAX_ANSWER_CHARS)),
    ("assignments", _fill("x=1, ", MAX_ANSWER_CHARS)),
    ("list", _fill("1, ", MAX_ANSWER_CHARS)),               # unordered matching backtracked over items
    ("distinct list", ", ".join(str(n) for n in range(1000))[:MAX_ANSWER_CHARS]),
    ("plus minus", _fill("\\pm 1, ", MAX_ANSWER_CHARS)),
    ("set", "\\{" + _fill("1,", MAX_ANSWER_CHARS - 4) + "\\}"),
    ("letters", _fill("a")),
    ("words", _fill("aa ")),
    ("is words", _fill("is ")),
    ("backslashes", _fill("\\")),
    ("double backslashes", _fill("\\\\frac ")),
    ("dollars", _fill("$")),
    ("bold", _fill("**")),
    ("fences", _fill("```")),
    ("fence language", _fill("a", head="```")),             # language and info string competed for letters
    ("unclosed code", _fill("x = (", head="```python\n")),
    ("code lines", _fill("x = 1\n")),
    ("remarks", _fill(" (about", MAX_ANSWER_CHARS, head="5")),
    ("or", _fill("3or", MAX_ANSWER_CHARS)),
    ("glued units", _fill("10cm ", MAX_ANSWER_CHARS)),
    ("slashes", _fill("1/")),
    ("minus", _fill("-")),
    ("equals", _fill("=")),
    ("relations", _fill("<", MAX_ANSWER_CHARS)),
    ("repeating brackets", _fill("1", MAX_ANSWER_CHARS, head="0.", tail="(")),
    ("overline", _fill("\\overline{", MAX_ANSWER_CHARS)),
    ("percent", _fill("%")),
    ("chinese units", _fill("元", head="12")),
    ("equations", _fill("3 * 4 = 12 ")),                   # RFT's filter: one check per equation
    ("equation chain", _fill(" = 1 + 1", head="2")),
    ("money equations", _fill("$1 000 x 3/100 = $30 ")),
]

READERS = {
    "extract strict": lambda text: extract_answer(text, mode="strict"),
    "extract flexible": lambda text: extract_answer(text, mode="flexible"),
    "extract with a list gold": lambda text: extract_answer(text, mode="strict", gold="1, 2, 3"),
    "extract_program": extract_program,
    "answer_from_output": answer_from_output,
    "last_printed_value": last_printed_value,
    "read_python_value": lambda text: _readable(text),
    "normalize_answer": normalize_answer,
    "is_equivalent to a number": lambda text: is_equivalent(text, "5"),
    "is_equivalent to itself changed": lambda text: is_equivalent(text, text[:-1] + "7"),
    "wrong_equations": wrong_equations,
}


def _readable(text: str) -> None:
    try:
        read_python_value(text)
    except NotReadable:
        pass


def _best_of_three(function, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        function(text)
        best = min(best, time.thread_time() - start)
        if best < LIMIT_S / 5:
            break  # clearly fast: no need to repeat
    return best


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_is_fast_on_adversarial_text(reader):
    function = READERS[reader]
    function("warm up 1 + 1 = 2")  # first-call imports (sympy) are not the reader's work
    slow = []
    for name, text in ADVERSARIAL:
        assert len(text.encode()) <= 3 * CAP, name
        seconds = _best_of_three(function, text[:CAP])
        if seconds > LIMIT_S:
            slow.append(f"{name}: {seconds * 1000:.0f} ms")
    assert not slow, f"{reader} took over {LIMIT_S * 1000:.0f} ms on: {', '.join(slow)}"


# ---------------------------------------------------------------- inputs that reach sympy and list matching
# (pred, gold): answer-sized texts that reach unordered matching or sympy (issue 25 review). Each must cost under
# 50 ms: refused by a size cap before sympy runs, or decided by cheap text and number comparisons.
_FORMS = ["x+1", "1+x", "(x+1)", "2x+1-x", "x+2-1", "x+3-2", "\\frac{2x+2}{2}", "x+4-3"]
REACHES_SYMPY = [
    (", ".join(f"{i}/{2 * i}" for i in range(1, 9)),          # numbers-only lists: 8 items, none equal: no
     ", ".join(f"{i}/{2 * i}" for i in range(11, 18)) + ", 3"),  # backtracking over 8! orders
    ("\\{" + ", ".join(f"{i}/{2 * i}" for i in range(1, 9)) + "\\}",  # the same as sets
     "\\{" + ", ".join(f"{i}/{2 * i}" for i in range(11, 18)) + ", 3\\}"),
    (", ".join(str(n) for n in range(40)), ", ".join(str(n) for n in range(1, 41))),  # 40 numbers, one off
    ("((20)!)!", "5"),                       # 20! = 2.4e18, its factorial: computed while parsing (no cap)
    ("(20!)!", "5"),
    ("(x+y+z)^{30}", "1"),                   # 496 terms once expanded: simplify ran to the budget
    ("(x+y+z)^{30}", "(x+y+z)^{29}(x+y+z)+1"),
    ("(1+x)^{1000}", "5"),                   # a huge degree
    ("\\binom{10^{9}}{10^{4}}", "5"),        # a binomial with ~50,000 digits (0.75 s)
    ("\\sin(" * 10 + "x" + ")" * 10, "5"),  # functions nested 10 deep: simplify ran to the budget
    ("10^{10^{10}}", "5"),                   # a power tower
    (", ".join(f"(x+y+z)^{{{30 + i}}}" for i in range(5)), "1, 2, 3, 4, 5"),  # 5 huge items: 5 budgets before
]


@pytest.mark.parametrize("pred, gold", REACHES_SYMPY)
def test_comparisons_that_reach_sympy_are_cheap_or_refused(pred, gold):
    is_equivalent("x+1", "1+x")  # warm up sympy
    seconds = min(_timed(lambda: is_equivalent(pred, gold)) for _ in range(3))
    assert seconds <= LIMIT_S, f"{pred!r} vs {gold!r} took {seconds * 1000:.0f} ms"


def _timed(function) -> float:
    start = time.thread_time()
    function()
    return time.thread_time() - start


# (pred, gold): lists whose items all need sympy (none equal by text): the WHOLE comparison shares one budget
# (grade_timeout_s), however many items (before: one budget per sympy call; 8 items of a symbolic list took
# 404 s by backtracking without memo).
BUDGET = 0.3
NEEDS_SYMPY = [
    (", ".join(_FORMS), ", ".join(f"{i}+x-{i - 1}" for i in range(2, 9)) + ", x+7"),  # the review's 112 characters
    (", ".join(["(a+b+c+d)^{6}(x+y)"] * 4), ", ".join(["(a+b+c+d)^{5}(x+y+1)"] * 4)),  # 4 slow items (3.7 s each)
    ("\\{" + ", ".join(["(a+b+c+d)^{6}(x+y)"] * 3) + "\\}", "\\{" + ", ".join(
        f"(a+b+c+d)^{{5}}(x+y+{k})" for k in range(1, 4)) + "\\}"),
]


@pytest.mark.parametrize("pred, gold", NEEDS_SYMPY)
def test_one_budget_for_the_whole_comparison(pred, gold):
    is_equivalent("x+1", "1+x")
    seconds = min(_timed(lambda: is_equivalent(pred, gold, grade_timeout_s=BUDGET)) for _ in range(3))
    assert seconds <= BUDGET + 0.15, f"{pred!r} vs {gold!r} took {seconds:.2f} s with a {BUDGET} s budget"
