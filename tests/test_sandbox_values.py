"""Issue 11, "programs that print nothing": the value of a last bare expression, or of an uncalled PAL-style
`solution()`, becomes the program's answer (computed inside the sandbox, never in the evaluator), only when
the program printed nothing. Rows: (program, expected stdout, expected value_from), with the pitfall.
"""

import pytest

from arithmo.grading import answer_from_output
from arithmo.sandbox import ExecResult, Sandbox

ROWS = [
    ("a = 2\nb = 3\na + b", "5\n", "last expression"),                     # the example: a bare sum
    ("def solution():\n    x = 3\n    return x * 4", "12\n", "solution()"),  # PAL style, never called
    ("def solution():\n    return 7\nsolution()", "7\n", "last expression"),  # called as the last line
    ("def solution():\n    return 7\nanswer = solution()", "7\n", "solution()"),  # stored, not printed: called again
    ("x = 5\nprint(x)", "5\n", None),                                       # printed: the printed text counts
    ("print(1)\n2 + 2", "1\n", None),                                       # printed something: no value added
    ("print(3)\ndef solution():\n    return 9", "3\n", None),               # printed: solution() is not called
    ("x = 5", "", None),                                                    # no print, no expression: no answer
    ("None", "", None),                                                     # a None value is no answer
    ("x = 4\nprint(x) if False else None", "", None),                       # an expression that is None
    ("def solution(n):\n    return n", "", None),                           # needs an argument: not called
    ("def solution():\n    return None", "", None),                         # returns nothing: no answer
    ("def solution():\n    print(8)", "8\n", None),                         # prints instead of returning
    ("for i in range(3):\n    i", "", None),                                # only a top-level last statement
    ("import numpy as np\nnp.float64(18.0)", "18.0\n", "last expression"),  # str(), not numpy 2's repr
    ("import sympy as sp\nx = sp.symbols('x')\nsp.solve(x**2 - 5*x + 6, x)", "[2, 3]\n", "last expression"),
    ("'The answer is 5'", "The answer is 5\n", "last expression"),          # a str as it is, no quotes
    ("x = [1, 2]\nx", "[1, 2]\n", "last expression"),
    ("(1+3j)", "(1+3j)\n", "last expression"),
    ("import os\nos.write(1, b'7\\n')\n3", "7\n", None),                    # printed past print(): the parent sees it
    ("import sys\nsys.stdout.write('')\n6", "6\n", "last expression"),      # an empty write prints nothing
]


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=1) as sandbox:
        yield sandbox


@pytest.mark.parametrize("code, stdout, value_from", ROWS)
def test_the_answer_of_a_program_that_prints_nothing(box, code, stdout, value_from):
    result = box.run([code], timeout_s=5.0)[0]
    assert result == ExecResult(stdout, None, False, value_from)
    # callers read the answer with answer_from_output(result.stdout): the value reaches it like a printed line
    assert (answer_from_output(result.stdout) is None) == (stdout == "")
    assert result.to_record() == {"stdout": stdout, "error": None, "timed_out": False}  # the record is unchanged


ERRORS = [
    ("1 / 0", "ZeroDivisionError: division by zero", False),                # the expression is part of the program
    ("x = 10**5000\nx", "ValueError: Exceeds the limit (4300 digits) for integer string conversion; use "
     "sys.set_int_max_str_digits() to increase the limit (turning the last expression value into text)", False),
    ("'a' * 100", "the last expression value is longer than the output limit (10 bytes)", False),  # as a flood
    ("def solution():\n    while True:\n        pass", "timed out after 1 s", True),  # solution() runs in time
]


@pytest.mark.parametrize("code, error, timed_out", ERRORS)
def test_a_value_that_fails_is_an_error_not_an_answer(box, code, error, timed_out):
    result = box.run([code], timeout_s=1.0, max_output_bytes=10)[0]
    assert result == ExecResult("", error, timed_out)


def test_random_generators_are_fresh_in_every_program(box):
    """A forked child starts with the zygote's generator states: each program must draw differently, as
    fresh interpreters would (stdlib random, numpy's global generator, sympy's)."""
    code = ("import random, numpy, sympy\nfrom sympy.core.random import randint\n"
            "print(random.random(), numpy.random.rand(), randint(0, 10**9))")
    first, second = (box.run([code], timeout_s=5.0)[0].stdout.split() for _ in range(2))
    assert len(first) == 3 and all(a != b for a, b in zip(first, second))
