"""Issue 26 review: exact values compare exactly in the symbolic path, and e-notation is read as a number.

Rows are (pred, gold, expected) through arithmo.grading.is_equivalent, each with the pitfall it guards.
"""

import pytest

from arithmo.grading import is_equivalent
from arithmo.grading.symbolic import NotConvertible, latex_to_sympy_text, to_sympy

LARGE_EXACT = [
    # must NOT: a near miss of a large exact value (a 1e-12 relative tolerance called these equal)
    ("2^{100}-1", "2^{100}", False),
    ("2^{40}", "2^{40}-1", False),
    ("10^{20}", "10^{20}+1", False),
    ("\\binom{100}{50}", "\\binom{100}{50}+1", False),
    ("2^{100}\\sqrt{2}", "(2^{100}+1)\\sqrt{2}", False),  # irrational, relative difference 8e-31
    ("2^{40}", "1099511627775", False),                    # power against its neighbour written out
    # must NOT: past float range both sides were inf, and inf == inf
    ("2^{2016}", "2^{2015}", False),
    ("10^{400}", "10^{401}", False),
    ("10^{400}\\sqrt{2}", "10^{401}\\sqrt{2}", False),
    ("1.5\\times 10^{400}", "10^{400}", False),            # measured side, overflow: still no inf == inf
    # equal: the same large exact value written two ways
    ("2^{10}", "1024", True),
    ("2^{100}", "1267650600228229401496703205376", True),
    ("\\binom{100}{50}", "100891344545564193334812497256", True),
    ("10^{400}", "10^{400}", True),
    ("2^{2015}\\cdot 2", "2^{2016}", True),
    # equal: exact forms sympy cannot prove equal by simplifying, whose difference evaluates to no bit
    ("\\sqrt{3+2\\sqrt{2}}", "1+\\sqrt{2}", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    # a measured side keeps its tolerance, in sympy's own floats (any exponent)
    ("1.00001\\times 10^{400}", "10^{400}", False),        # gold exact: no tolerance for a hand rounding
    ("3.83\\times 10^{400}", "3.83e400", True),
]


@pytest.mark.parametrize("pred, gold, expected", LARGE_EXACT)
def test_large_exact_values_compare_exactly(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


SCIENTIFIC = [
    # Minerva's golds write e-notation with an unsigned exponent
    ("3.83 \\times 10^{35}", "3.83e35", True),
    ("4500", "4.5e3", True),
    ("6.3 \\times 10^{8}", "6.3e8", True),
    ("4.5\\cdot 10^{33}", "4.5e33", True),
    ("2000", "2e3", True),
    # must NOT: another value
    ("3.83 \\times 10^{34}", "3.83e35", False),
    ("4.6e3", "4.5\\times 10^{3}", False),
    ("6.3 \\times 10^{9}", "6.3e8", False),
    ("2e3", "6e", False),                  # 2e3 is 2000, not 2*e*3
    # the other reading: a bare e is Euler's number
    ("2e", "2\\cdot e", True),
    ("2e^{3}", "2\\exp(3)", True),
    ("2e", "2", False),
]


@pytest.mark.parametrize("pred, gold, expected", SCIENTIFIC)
def test_e_notation_by_form(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("text, value", [
    ("3.83e35", 383 * 10**33),      # a number literal
    ("4.5e3", 4500),
    ("2e3/4", 500),                 # arithmetic on a literal, no variable beside it
    ("2e", None),                   # 2*E: not a literal (no digits after e)
])
def test_scientific_literal_values(text, value):
    import sympy

    expr = to_sympy(text)
    assert (expr == value) if value is not None else (expr == 2 * sympy.E)


@pytest.mark.parametrize("text", [
    "x+2e3",    # beside a variable: x + 2000 or x + 2*e*3? not guessed
    "e3",       # no digits before e: an identifier, not a literal
    "2e3x",     # followed by a letter: not a literal
])
def test_e_notation_beside_variables_is_not_guessed(text):
    with pytest.raises(NotConvertible):
        latex_to_sympy_text(text)
