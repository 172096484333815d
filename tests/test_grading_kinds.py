"""Grader v2 (issue 11): the kinds of answer the v1 grader marked wrongly, one table per kind.

Each table's first rows are the issue's examples; the others are cases of the same kind. Every row is
(pred, gold, expected) with a comment naming the pitfall. The rules are in normalize.py (tables),
latex_text.py (escaping, repeating decimals, assignments, plus-minus) and equal.py (relations, exact
golds).
"""

import pytest

from arithmo.grading import is_equivalent, normalize_answer

PLUS_MINUS = [
    ("2+\\sqrt{3}, 2-\\sqrt{3}", "2 \\pm \\sqrt{3}", True),   # issue 11
    ("\\{-4, 4\\}", "\\pm 4", True),                         # issue 11: a set against plus-minus
    ("4", "\\pm 4", False),                                   # issue 11: one of the two answers is not both
    ("2-\\sqrt{3}, 2+\\sqrt{3}", "2 \\pm \\sqrt{3}", True),   # any order
    ("2+\\sqrt{3}", "2 \\pm \\sqrt{3}", False),               # half of the answer
    ("-4, 4", "\\pm 4", True),
    ("x = \\pm 4", "-4, 4", True),                            # an assignment of plus-minus
    ("\\frac{-1+\\sqrt{5}}{2}, \\frac{-1-\\sqrt{5}}{2}", "\\frac{-1\\pm\\sqrt{5}}{2}", True),  # inside a fraction
    ("\\frac{-1+\\sqrt{5}}{2}", "\\frac{-1\\pm\\sqrt{5}}{2}", False),
    ("\\pm\\sqrt{2}", "\\sqrt{2}, -\\sqrt{2}", True),         # plus-minus in the prediction
    ("3 \\pm 2i", "3+2i, 3-2i", True),                        # complex conjugates
    ("x = 3 \\pm 2", "1, 5", True),                           # the two values computed
    ("\u00b1 4", "-4, 4", True),                              # unicode plus-minus
    ("\\pm 2, \\pm 3", "2, -2, 3, -3", True),                 # several plus-minus items
    ("1 \\mp \\sqrt{2}", "1 \\pm \\sqrt{2}", True),           # minus-plus is the same pair
    ("\\pm 4", "\\pm 5", False),
]

UNITS = [
    ("12", "12\\text{ km/h}", True),                          # issue 11: a unit with a slash
    ("12", "12\\textnormal{ km/h}", True),                    # issue 11: \textnormal
    ("12", "12 \\mbox{ km/h}", True),                         # issue 11: \mbox
    ("5", "5\\mathrm{~cm}", True),                            # \mathrm with a tie
    ("20", "20\\text{ cm}^2", True),                          # a squared unit
    ("20", "20 \\text{cm}^{2}", True),                        # a braced exponent
    ("15", "\\$15", True),                                    # dollars before
    ("15", "15\\text{ dollars}", True),                       # dollars after
    ("9.8", "9.8 \\text{ m/s}^2", True),                      # a compound unit with an exponent
    ("7", "7\\,\\text{m}", True),                             # a one-letter unit after a thin space
    ("4", "4 \\text{ sq. ft.}", True),                        # points in the unit
    ("60", "60 km/h", True),                                  # a plain unit word with a slash
    ("12", "12 \\text{ km}/\\text{h}", True),                 # a unit in two pieces
    ("100", "100\\text{ square units}", True),
    ("5", "\\text{5 cm}", True),                              # the number inside the text command
    ("3+4i", "3+4\\mathrm{i}", True),                         # \mathrm{i} is the imaginary unit, not a unit
    ("3", "3+4\\mathrm{i}", False),
    ("13", "12\\text{ km/h}", False),                         # units go, the number still counts
    ("\\text{odd}", "\\textnormal{odd}", True),               # a word answer keeps its word
    ("3, 4", "3\\text{ cm}, 4\\text{ cm}", True),             # units on each item of a list
    ("12", "12 cm\u00b2", True),                              # a unicode superscript
    ("5", "5\\,\\mu\\text{m}", True),                         # a prefix outside the text command
    ("12", "12\\text{ km}\\,\\text{h}^{-1}", True),             # a negative exponent
]

WRAPPERS = [
    ("7", "\\textbf{7}", True),                               # issue 11: bold
    ("\\frac{1}{4}", "\\cfrac{1}{4}", True),                  # issue 11: \cfrac
    ("\\frac12", "\\!\\tfrac12", True),                       # issue 11: \tfrac12 with \! spacing
    ("\\frac{1}{2}", "\\tfrac{1}{\\!2}", True),
    ("7", "\\mathbf{7}", True),
    ("7", "\\boldsymbol{7}", True),
    ("7", "{\\bf 7}", True),                                  # an old font switch
    ("7", "\\textcolor{red}{7}", True),                       # a colour
    ("0.25", "\\cfrac{1}{\\,4\\,}", True),                    # \cfrac with spacing, against a decimal
    ("\\frac{2}{3}", "\\cfrac{1}{1+\\cfrac{1}{2}}", True),    # a real continued fraction
    ("7", "**7**", True),                                     # Markdown bold
    ("8", "\\textbf{7}", False),
    ("7", "\\framebox{7}", True),
    ("7", "\\colorbox{yellow}{7}", True),
]

REPEATING_DECIMALS = [
    ("0.\\overline{6}", "\\frac{2}{3}", True),                # issue 11: the point is kept
    ("0.\\overline{3}", "\\frac13", True),
    ("0.1\\overline{6}", "\\frac{1}{6}", True),               # digits before the repeating block
    ("1.\\overline{27}", "\\frac{14}{11}", True),             # a whole part and two repeating digits
    ("0.\\overline{142857}", "\\frac{1}{7}", True),
    ("-0.\\overline{3}", "-\\frac{1}{3}", True),              # a sign
    ("0.\\bar{3}", "\\frac13", True),                         # \bar instead of \overline
    ("0.\\overline{9}", "1", True),                           # 0.999... is 1
    (".\\overline{3}", "\\frac13", True),                     # no leading zero
    ("0.\\overline{12}", "\\frac{4}{33}", True),
    ("0.\\overline{6}", "0.6", False),                        # not the terminating decimal
    ("0.\\overline{6}", "6", False),                          # the v1 normalizer made this 06
    ("0.666...", "\\frac{2}{3}", True),                       # dots: the last digit repeats
    ("0.1666\\ldots", "\\frac{1}{6}", True),
    ("0.142857142857...", "\\frac{1}{7}", True),              # a six-digit block seen twice
    ("0.(6)", "\\frac{2}{3}", True),                          # the repeating block in brackets
    ("0.1(6)", "\\frac{1}{6}", True),
    ("0.(6)", "\\frac{1}{6}", False),
]

RELATIONS = [
    ("3 \\leq x", "x \\geq 3", True),                         # issue 11: read from the other side
    ("x > 3", "3 < x", True),
    ("x >= 3", "x \\geq 3", True),                            # as a program prints it
    ("x \u2265 3", "3 \u2264 x", True),                       # unicode signs
    ("x \\gt 3", "x>3", True),                                # \gt
    ("x > 3", "x \\geq 3", False),                            # strict is not inclusive
    ("x < 3", "x > 3", False),
    ("x \\geq 3", "x \\geq 4", False),
    ("2 \\geq x > 1", "1 < x \\le 2", True),                  # a chain turned round
    ("y \\leq 2x+1", "2x+1 \\geq y", True),                   # expressions on both sides
    ("x \\ne 3", "3 \\neq x", True),
    ("x \\geq 3", "[3, \\infty)", True),                      # an inequality is its interval
    ("x > 3", "(3,\\infty)", True),
    ("x \\le 5", "(-\\infty, 5]", True),
    ("1 < x \\leq 2", "(1, 2]", True),
    ("x \\ge 3", "(3,\\infty)", False),                       # the bracket counts
    ("f(4) > f(1) > f(2)", "f(2) < f(1) < f(4)", True),       # a MATH gold that is a chain
    ("x < -1 \\text{ or } x > 2", "(-\\infty,-1)\\cup(2,\\infty)", True),  # inequalities joined by 'or': a union
    ("x \\le -1 \\text{ or } x > 2", "(-\\infty,-1)\\cup(2,\\infty)", False),
]

JOINED_BY_WORDS = [
    ("$3$ or $-5$", "3, -5", True),                           # issue 11
    ("3 or -5", "-5, 3", True),
    ("x = 3 \\text{ or } x = -5", "3, -5", True),             # \text{ or } and assignments
    ("x=3 or x=-5", "3, -5", True),
    ("3 \\text{ and } 4", "3, 4", True),
    ("3, 4, and 5", "3, 4, 5", True),                         # a serial comma before 'and'
    ("$x=1$ and $x=2$", "1, 2", True),
    ("1 \\quad\\text{or}\\quad 2", "1, 2", True),             # spacing around the word
    ("x=1, y=2", "(1, 2)", True),                             # different variables: an ordered pair
    ("3 or 5", "3", False),                                   # an extra answer
    ("3 or -5", "3, 5", False),
]

ESCAPES = [
    ("\\\\frac{1}{2}", "\\frac{1}{2}", True),                 # issue 11: escaped twice (JSON dump)
    ("185\\", "185", True),                                   # issue 11: a stray trailing backslash
    ("\\\\sqrt{2}", "\\sqrt{2}", True),
    ("\\\\dfrac{3}{4}", "0.75", True),
    ("\\\\frac{\\\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}", True),
    ("\\\\{1, 2\\\\}", "\\{1, 2\\}", True),                   # an escaped set
    ("50\\\\%", "50\\%", True),                               # an escaped percent
    ("\\\\begin{pmatrix} 1 \\\\\\\\ 2 \\\\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True),
    ("\\\\frac{1}{3}", "\\frac{1}{2}", False),                # unescaped, still compared
    ("42\\\\", "42", True),                                   # a trailing row break
]

THOUSANDS = [
    ("32, 349", "32349", False),                              # issue 11: a list of two numbers
    ("32,349", "32349", True),                                # a separator: a comma and three digits, no space
    ("1, 000", "1000", False),
    ("1,234,567", "1234567", True),
    ("12,34", "1234", False),                                 # a group of two digits is not a separator
    ("1,000.5", "1000.5", True),
    ("\\$1,000", "1000", True),
    ("10, 000", "10000", False),
    ("32, 349", "32, 349", True),                             # the list equals itself
    ("32, 349", "349, 32", True),                             # ... in any order
]

EXACT_GOLDS = [
    ("1.732", "\\sqrt{3}", False),                            # issue 11: a hand rounding of an exact gold
    ("1.7320508075688772", "\\sqrt{3}", True),                # a program's float: machine precision
    ("3.14", "\\pi", False),
    ("3.14159", "\\pi", False),                               # 6 digits is still a hand rounding
    ("3.141592653589793", "\\pi", True),
    ("0.333", "\\frac{1}{3}", False),
    ("0.6667", "\\frac{2}{3}", False),
    ("0.6666667", "\\frac{2}{3}", True),                      # float32's 7 digits
    ("0.6666666666666666", "\\frac{2}{3}", True),
    ("0.5", "\\frac{1}{2}", True),                            # a terminating decimal IS exact
    ("0.125", "\\frac{1}{8}", True),
    ("0.1\\pi", "\\frac{\\pi}{10}", True),                    # an exact decimal inside an expression
    ("0.785", "\\frac{\\pi}{4}", False),
    ("2.24", "\\sqrt{5}", False),
    ("\\frac{1}{3}", "0.3333", True),                         # a decimal gold keeps 1e-4 relative
    ("2.5", "2.50001", True),
    ("2.5", "2.51", False),
    ("2.9999999999999996", "3", True),                        # an integer gold forgives float noise only
    ("2.9999", "3", False),
    ("-0.5 + 0.866025403784439i", "-\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i", True),  # sympy Floats, a computed root
    ("-0.5 + 0.866i", "-\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i", False),             # ... rounded by hand
    ("0.70710678", "\\frac{\\sqrt{2}}{2}", True),              # 8 digits
    ("0.7071", "\\frac{\\sqrt{2}}{2}", False),
]


@pytest.mark.parametrize("pred, gold, expected", PLUS_MINUS + UNITS + WRAPPERS + REPEATING_DECIMALS + RELATIONS
                         + JOINED_BY_WORDS + ESCAPES + THOUSANDS + EXACT_GOLDS)
def test_grader_v2_kinds(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("text", [pred for pred, _, _ in PLUS_MINUS + UNITS + WRAPPERS + REPEATING_DECIMALS
                                  + RELATIONS + JOINED_BY_WORDS + ESCAPES + THOUSANDS + EXACT_GOLDS])
def test_normalizing_twice_changes_nothing(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


@pytest.mark.parametrize("number", ["5.0", "-3", "+5", "1,000", "1,000.50", "0.10", "007", "  42  ", "2.500", "-0"])
def test_plain_number_fast_path_matches_the_full_pipeline(number, monkeypatch):
    from arithmo.grading import normalize

    fast = normalize_answer(number)
    monkeypatch.setattr(normalize, "_PLAIN_NUMBER", normalize.re.compile(r"(?!)"))  # never matches: all rules run
    assert normalize_answer(number) == fast
