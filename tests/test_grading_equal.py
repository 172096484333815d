"""Normalization and equivalence: tables of answers a lax grader gets wrong, timeouts, bad input."""

import math
import os
import threading
import time

import pytest

from arithmo.grading import GRADER_VERSION, grade, grading_counts, is_equivalent, normalize_answer
from arithmo.deadline import DeadlineExceeded, call_with_deadline, worker_starts

# (raw, normalized) — one row per rule family in normalize.py
NORMALIZE_CASES = [
    ("1,\\!000,\\!000", "1000000"),                  # MATH thousands with negative thin spaces
    ("14{,}916", "14916"),                           # {,} thousands
    ("\\$115,000", "115000"),                        # money sign and thousands
    ("2.50", "2.5"),                                 # trailing zeros
    ("5.0", "5"),                                    # a whole number written as a decimal
    ("-.5", "-0.5"),                                 # a leading point
    ("\\dfrac{1}{3}", "\\frac{1}{3}"),               # \dfrac
    ("\\tfrac12", "\\frac{1}{2}"),                   # \tfrac and the \frac12 shorthand
    ("\\frac 97", "\\frac{9}{7}"),                   # \frac with a space and two digits
    ("\\frac9{5}", "\\frac{9}{5}"),                  # one shorthand argument
    ("\\sqrt5", "\\sqrt{5}"),                        # \sqrt shorthand
    ("118 \\text{ dollars}", "118"),                 # a unit in \text
    ("440\\text{ cm}^2", "440"),                     # a squared unit
    ("18 dollars", "18"),                            # a unit word without \text
    ("\\text{Friday}", "Friday"),                    # a text answer keeps its word
    ("180^{\\circ}", "180"),                         # degrees
    ("144^\\circ", "144"),
    ("65\\%", "65%"),                                # one percent mark
    ("b=0", "0"),                                    # a single-variable assignment
    ("(x, y) = (1, 2)", "(1,2)"),                    # a tuple of variables assigned
    ("x \\in [1,2]", "[1,2]"),                       # membership in an interval
    ("x + y = 5", "x+y=5"),                          # an equation is kept whole
    ("\\left( \\frac{1}{2}, 3 \\right)", "(\\frac{1}{2},3)"),  # \left \right
    ("\\text{(B)}", "B"),                            # a multiple-choice letter
    ("$\\boxed{7}$.", "7"),                          # wrappers and a full stop
    ("\\pi r^2", "\\pi r^2"),                        # the space after a command is meaningful
    ("\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),  # matrix rows survive
    ("(1,000)", "(1,000)"),                          # inside brackets a comma separates items
    ("0,100", "0,100"),                              # not a thousands number: a list
    # grader v2 rules (issue 11)
    ("32, 349", "32, 349"),                          # a comma and a space: a list, kept apart from 32,349
    ("\\\\frac{1}{2}", "\\frac{1}{2}"),                # escaped twice (a JSON dump)
    ("185\\", "185"),                               # a stray trailing backslash
    ("0.\\overline{6}", "\\frac{2}{3}"),               # a repeating decimal keeps its point: a fraction
    ("12\\text{ km/h}", "12"),                       # a unit with a slash
    ("\\cfrac{1}{4}", "\\frac{1}{4}"),                 # \cfrac is \frac
    ("2 \\pm \\sqrt{3}", "2+\\sqrt{3},2-\\sqrt{3}"),     # plus-minus is two answers
    ("$3$ or $-5$", "3,-5"),                         # answers joined by a word
    ("x=3, x=-5", "3,-5"),                           # a list of assignments to one variable
]


@pytest.mark.parametrize("raw, normalized", NORMALIZE_CASES)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized
    assert normalize_answer(normalized) == normalized  # idempotent


# (pred, gold, expected) — each row names the pitfall it covers
EQUIVALENCE_CASES = [
    # --- percent: explicit, never x100 guessing
    ("50", "50\\%", True),
    ("50%", "50\\%", True),
    ("50 percent", "50\\%", True),
    ("0.5", "50\\%", True),                      # issue 25: a percent gold is also its fraction (CMATH's scorer)
    ("0.5", "50", False),                        # ... but a gold without the mark is never scaled
    ("50", "0.5", False),
    ("0.05", "50\\%", False),                    # the fraction is /100, not /1000
    ("5000", "50\\%", False),
    # --- ordered tuples, intervals, sets, lists
    ("(1,2)", "(2,1)", False),                   # order matters in a tuple
    ("(1, 2)", "(1,2)", True),
    ("[1,2)", "[1,2]", False),                   # half-open is not closed
    ("(1,2)", "[1,2]", False),
    ("\\left[ -\\frac{1}{2}, \\frac{1}{2} \\right]", "[-0.5, 0.5]", True),
    ("\\{2,1\\}", "\\{1,2\\}", True),            # a set ignores order
    ("\\{1,2\\}", "\\{1,2,3\\}", False),
    ("3, 1, 2", "1,2,3", True),                  # MATH "enter all solutions, separated by commas"
    ("1, 2", "1,2,3", False),                    # a missing solution
    ("1, 1, 2", "1,2,2", False),                 # multiplicity counts
    ("(0,1)", "0,1", False),                     # an interval is not a list of two values
    ("(-\\infty,5)\\cup(5,\\infty)", "(5,\\infty)\\cup(-\\infty,5)", True),   # union order
    ("(-\\infty,5]\\cup(5,\\infty)", "(-\\infty,5)\\cup(5,\\infty)", False),  # one bracket differs
    ("(1, \\frac{9}{2})", "(1,4.5)", True),      # items compare as numbers
    # --- thousands separators vs tuples (decision: normalize.py module doc)
    ("1,000", "1000", True),
    ("1,000,000", "1000000", True),
    ("(1,000)", "1000", False),                  # in brackets the comma separates items
    ("0,100", "100", False),
    # --- numbers
    ("12", "1.2", False),
    ("10001", "10000", False),                   # integers exactly: 1e-4 relative would accept this
    ("10000.5", "10000", False),
    ("24.000000000000004", "24", True),          # a program's float noise
    ("5.551115123125783e-17", "0", True),        # 0.1 + 0.2 - 0.3 printed by a program
    ("0.001", "0", False),
    ("1/2", "0.5", True),                        # fraction vs decimal
    ("\\frac{1}{2}", "0.5", True),
    ("\\frac{1}{2}", "\\frac{2}{1}", False),     # numerator and denominator swapped
    ("-\\frac{1}{2}", "\\frac{-1}{2}", True),
    ("0.3333", "\\frac13", False),               # grader v2: an exact gold needs an exact answer (equal.py doc)
    ("0.333", "\\frac13", False),                # rounded too far
    ("0.3333333333333333", "\\frac{1}{3}", True),  # a program printing 1/3: machine precision is taken
    ("22.75", "22.8", False),
    ("2.0", "2", True),
    ("-0", "0", True),
    ("31/5", "6\\frac15", True),                 # MATH mixed numbers: 6 1/5, not 6 * 1/5
    ("6.2", "6 \\frac{1}{5}", True),
    ("6/5", "6\\frac15", False),
    ("1.41421", "\\sqrt{2}", False),             # grader v2: a hand rounding of an irrational is not exact
    ("1.4142135623730951", "\\sqrt{2}", True),   # math.sqrt(2) printed by a program
    ("1.4", "\\sqrt{2}", False),
    # --- units, marks, wrappers
    ("\\$6", "6", True),
    ("144", "144^\\circ", True),
    ("85", "85\\text{ feet}", True),
    ("18 dollars", "18", True),
    ("$\\boxed{7}$", "7", True),
    # --- variables and equations
    ("x=5", "5", True),                          # a single variable assignment
    ("x=5", "5x", False),                        # an assignment is not a product
    ("5x", "5", False),
    ("y = 2x", "y=2x", True),
    ("2x", "y = 2x", True),
    ("9x^2 - 16y^2 = 144", "\\frac{x^2}{16} - \\frac{y^2}{9} = 1", True),  # the same curve
    ("x^2 + y^2 = 2", "x^2 + y^2 = 1", False),
    ("x + y = 5", "x + y = 6", False),
    # --- symbolic forms
    ("x(x+1)^2", "x^3 + 2x^2 + x", True),
    ("x(x+1)^2", "x^3 + 2x^2 + 2x", False),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True),
    ("\\frac{\\sqrt{5}-1}{2}", "\\frac{2}{1+\\sqrt{5}}", True),  # equal, different radicals
    ("\\sqrt[3]{8}", "2", True),
    ("28-2\\pi", "-2\\pi+28", True),
    ("\\frac{2a+b}{2}", "a + \\frac{b}{2}", True),
    ("\\frac{1}{2-x}", "-\\frac{1}{x-2}", True),
    ("x", "y", False),                           # different variables
    ("-15+8i", "8i - 15", True),                 # complex numbers
    ("8+i", "8-i", False),
    ("\\frac{1}{2004!}", "\\frac{1}{2004 !}", True),  # a large factorial is fine
    ("10^{10^{10}}", "1", False),                # a power tower is refused before it is computed
    # --- matrices
    ("\\begin{pmatrix} 48/65 \\\\ 6/65 \\end{pmatrix}",
     "\\begin{pmatrix} \\frac{48}{65} \\\\ \\frac{6}{65} \\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 7 \\end{pmatrix}", "\\begin{pmatrix} 7 \\\\ 1 \\end{pmatrix}", False),
    ("\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", True),
    ("(1, 7)", "\\begin{pmatrix} 1 \\\\ 7 \\end{pmatrix}", False),  # MATH vectors are matrices
    # --- text and choices
    ("\\text{odd}", "odd", True),
    ("Odd", "\\text{odd}", True),
    ("even", "\\text{odd}", False),
    ("(B)", "\\text{(B)}", True),
    ("B", "\\text{(B)}", True),
    ("C", "\\text{(B)}", False),
    ("2112_6", "2112_6", True),
    ("2112_6", "21126", False),                  # a base-6 numeral is not a Python 2112_6 literal
    # --- nothing
    (None, "5", False),
    ("", "5", False),
    ("\\boxed{}", "5", False),
]


@pytest.mark.parametrize("pred, gold, expected", EQUIVALENCE_CASES)
def test_is_equivalent(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


def test_grader_version_and_grade():
    assert GRADER_VERSION == "arithmo-grader-4"
    assert grade("2 + 3 = 5.\nThe answer is: 5", "5") == {
        "extracted_strict": "5", "extracted_flexible": "5", "correct_strict": True, "correct_flexible": True}
    # strict finds no marker; flexible's last number is right
    assert grade("2 + 3 makes 5", "5") == {
        "extracted_strict": None, "extracted_flexible": "5", "correct_strict": False, "correct_flexible": True}
    assert grade("so \\boxed{\\frac{1}{2}}", "0.5")["correct_strict"] is True


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="gold answer is empty"):
        is_equivalent("5", "  ")
    with pytest.raises(TypeError, match="gold must be a str, got int"):
        is_equivalent("5", 5)
    with pytest.raises(TypeError, match="pred must be a str or None, got float"):
        is_equivalent(5.0, "5")
    with pytest.raises(TypeError, match="normalize_answer expects a str answer, got NoneType"):
        normalize_answer(None)
    with pytest.raises(ValueError, match="positive number of seconds"):
        call_with_deadline(sum, ([1],), 0)


def test_model_output_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    attacks = [f"__import__('os').system('touch {marker}')", f"open('{marker}', 'w')",
               "().__class__.__bases__[0].__subclasses__()", "x.__class__"]
    for attack in attacks:
        assert is_equivalent(attack, "5") is False
    assert not marker.exists()


# A comparison that sympy cannot finish quickly but that is under the size caps (168 terms once expanded, under
# symbolic.MAX_EXPANDED_TERMS): simplify takes 3.7 s here. (x+y+z+w)^{40} is now refused before sympy runs.
SLOW_PRED, SLOW_GOLD = "(a+b+c+d)^{6}(x+y)", "(a+b+c+d)^{5}(x+y+1)"


def test_symbolic_timeout_on_the_main_thread_is_counted():
    before = grading_counts()["symbolic_timeouts"]
    start = time.perf_counter()
    assert is_equivalent(SLOW_PRED, SLOW_GOLD, grade_timeout_s=0.3) is False
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"the 0.3 s limit took {elapsed:.2f} s to stop sympy"
    assert grading_counts()["symbolic_timeouts"] == before + 1
    assert is_equivalent("x(x+1)^2", "x^3 + 2x^2 + x")  # the alarm is disarmed afterwards
    time.sleep(0.4)  # a stray re-firing timer would raise here


def test_someone_elses_alarm_is_left_alone():
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        assert is_equivalent("2\\sqrt{2}", "\\sqrt{8}")  # runs in the worker: the timer is in use
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 5.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_symbolic_timeout_off_the_main_thread_kills_the_worker():
    results = {}

    def work():
        results["equal"] = is_equivalent("x(x+1)^2", "x^3 + 2x^2 + x")
        start = time.perf_counter()
        results["slow"] = is_equivalent(SLOW_PRED, SLOW_GOLD, grade_timeout_s=0.3)
        results["slow_s"] = time.perf_counter() - start
        results["after"] = is_equivalent("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}")
        results["worker_result"] = call_with_deadline(math.factorial, (5,), 5.0)
        try:
            call_with_deadline(time.sleep, (10.0,), 0.2)
        except DeadlineExceeded:
            results["raised"] = True
        try:
            call_with_deadline(math.factorial, (-1,), 5.0)
        except RuntimeError as error:
            results["error"] = str(error)

    starts_before = worker_starts()
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert results == {"equal": True, "slow": False, "slow_s": results["slow_s"], "after": True,
                       "worker_result": 120, "raised": True,
                       "error": "the grading worker process failed: "
                                "ValueError: factorial() not defined for negative values"}
    assert results["slow_s"] < 1.0
    assert worker_starts() >= starts_before + 2  # a fresh worker after each of the two kills


@pytest.mark.skipif(os.name != "posix", reason="the worker reads its pipe with select()")
def test_worker_runs_grading_functions_by_reference():
    from arithmo.grading.symbolic import expressions_equal

    results = []
    thread = threading.Thread(target=lambda: results.append(
        call_with_deadline(expressions_equal, ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}", 1e-12, 0.0), 5.0)))
    thread.start()
    thread.join(timeout=30)
    assert results == [True]
