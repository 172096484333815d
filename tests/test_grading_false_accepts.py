"""Grader v3 (issue 25): one table per kind of rule, each with as many "must NOT be equal" rows as "equal" rows.

A rule that removes or joins characters (digit groups, spaces, units, remarks, marks, escapes) can turn a wrong
answer into the right one; every such rule has its false-accept rows here. Rows are (pred, gold, expected) with
the pitfall in a comment. The rules live in normalize.py (tables), latex_text.py, symbolic.py and equal.py.
"""

import pytest

from arithmo.grading import extract_answer, is_equivalent

MIXED_NUMBERS = [  # decided by form: a whole number then a proper fraction is their sum
    ("1 1/2", "3/2", True),                          # issue 25
    ("1 1/2", "1.5", True),
    ("1 \\frac{1}{2} + 3", "4.5", True),            # issue 25: the mixed number is one value inside a sum
    ("2\\frac{3}{4}", "\\frac{11}{4}", True),       # MATH's own spelling
    ("-1 1/2", "-1.5", True),
    ("12 000", "12000", True),                       # a digit group still joins
    ("1 000 000", "1000000", True),
    ("3 1/2, 1 1/4", "3.5, 1.25", True),             # in a list
    ("1 1/2", "11/2", False),                        # issue 25: was joined to 11/2
    ("1 1/2", "5.5", False),                         # issue 25
    ("2 3/4", "23/4", False),                        # issue 25
    ("1 \\frac{1}{2} + 3", "3.5", False),            # issue 25: not 1 * 1/2 + 3
    ("1 2", "12", False),                            # two numbers with a space are not one number
    ("12 00", "1200", False),                        # a digit group has three digits
    ("1 3/2", "13/2", False),                        # an improper fraction after a space: no mixed number, no join
    ("1234 567", "1234567", False),                  # a first group has at most three digits
]

SPACES_AND_ESCAPES = [
    ("\\pi\\,e", "\\pi e", True),                    # issue 25: \, before a letter is a space
    ("2\\,\\sqrt{3}", "2\\sqrt{3}", True),
    ("1,\\!000", "1000", True),
    ("\\\\frac{1}{2} + \\sqrt{3}", "\\frac{1}{2}+\\sqrt{3}", True),  # issue 25: escaped twice in part of it
    ("\\\\sqrt{3}", "\\sqrt{3}", True),
    ("\\frac{\\\\pi}{2}", "\\frac{\\pi}{2}", True),
    ("\\pi\\,e", "\\pi", False),                     # the space goes, the letter stays
    ("2\\,3", "23", False),                          # a thin space between digits is no digit group
    ("1,\\!001", "1000", False),
    ("\\\\frac{1}{3} + \\sqrt{3}", "\\frac{1}{2}+\\sqrt{3}", False),
    ("\\\\sqrt{2}", "\\sqrt{3}", False),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", False),  # a row break stays
]

UNITS = [
    ("10cm", "10", True),                            # issue 25: a unit glued to the number
    ("\\frac{1}{2}cm", "\\frac12", True),            # issue 25
    ("5kg", "5", True),
    ("12\\text{元}", "12", True),                    # issue 25: CMATH's Chinese unit
    ("300平方米", "300", True),
    ("18 dollars", "18", True),
    ("7\\text{ cm}^2", "7", True),
    ("10cm", "100", False),                          # the unit goes, the number stays
    ("10x", "10", False),                            # a letter after a number is a variable, not a unit
    ("2ab", "2", False),
    ("12\\text{元}", "13", False),
    ("300平方米", "30", False),
    ("18 dollars", "1.8", False),
    ("7\\text{ cm}^2", "49", False),                 # the unit's exponent is not the number's
]

REMARKS = [
    ("\\frac{737}{39}\\;\\text{(about 18.9 cards)}", "\\frac{737}{39}", True),  # issue 25: a trailing remark
    ("5 (approximately)", "5", True),
    ("\\frac{737}{39} \\approx 18.9", "\\frac{737}{39}", True),
    ("(1, 2)", "(1, 2)", True),                      # a tuple is no remark
    ("\\frac{737}{39}\\;\\text{(about 18.9 cards)}", "18.9", False),  # the remark is not the answer
    ("5 (approximately)", "6", False),
    ("\\frac{737}{39} \\approx 18.9", "18.9", False),
    ("(1, 2)", "1", False),
]

MARKS = [
    ("\\sin 30^\\circ", "\\frac12", True),           # issue 25: degrees inside a trig function
    ("\\cos(60^\\circ)", "\\frac{1}{2}", True),
    ("\\tan 45\u00b0", "1", True),
    ("144^\\circ", "144", True),                     # elsewhere a degree mark is a unit
    ("0.25", "25%", True),                           # issue 25: a percent gold is also its fraction (CMATH)
    ("25\\%", "0.25", True),
    ("\\sin 30^\\circ", "\\sin 30", False),          # 30 degrees is not 30 radians
    ("\\sin 30^\\circ", "\\frac{\\sqrt{3}}{2}", False),
    ("\\tan 45\u00b0", "\\tan 45", False),
    ("144^\\circ", "14.4", False),
    ("0.25", "25", False),                           # no percent mark: never scaled
    ("2.5", "25%", False),
]

CONSTANTS_AND_POWERS = [
    ("e^{\\ln 2}", "2", True),                       # issue 25: e is Euler's number
    ("\\ln(e^2)", "2", True),
    ("e^{i\\pi}", "-1", True),
    ("0002^{99}", "2^{99}", True),                   # issue 25: leading zeros inside an expression
    ("2^\\frac12", "\\sqrt2", True),                 # issue 25: an unbraced command exponent
    ("x^{0.5}", "\\sqrt{x}", True),                  # issue 25: a decimal exponent is exact
    ("\\mathbb{R}", "(-\\infty,\\infty)", True),     # issue 25
    ("2.718281828459045", "e", True),                # a program's float for e
    ("e^{\\ln 2}", "3", False),
    ("\\ln(e^2)", "e^2", False),
    ("e^{i\\pi}", "1", False),
    ("0002^{99}", "2^{98}", False),
    ("2^\\frac12", "2", False),
    ("x^{0.5}", "x^2", False),
    ("\\mathbb{R}", "[0,\\infty)", False),
    ("2.718", "e", False),                           # a hand rounding of an exact gold
]

LISTS = [
    ("3or5", "3, 5", True),                          # issue 25: or without spaces
    ("x=1orx=2", "1, 2", True),
    ("x=1, y=2, z=3", "1, 2, 3", True),              # issue 25: assignments against a bare list
    ("x=1, y=2, z=3", "(1, 2, 3)", True),
    ("3or5", "35", False),
    ("3or5", "3", False),
    ("x=1, y=2, z=3", "3, 2, 1", False),             # the values in the variables' order
    ("x=1, y=2", "1, 2, 3", False),
]

FULL_WIDTH = [
    ("\uff12\uff15", "25", True),                    # full-width digits
    ("\uff11\uff0e\uff15", "1.5", True),
    ("\uff12\uff15\uff05", "25%", True),
    ("\uff08\uff11\uff0c\uff12\uff09", "(1, 2)", True),
    ("\uff12\uff15", "52", False),
    ("\uff11\uff0e\uff15", "15", False),
    ("\uff12\uff15\uff05", "2.5", False),
    ("\uff08\uff11\uff0c\uff12\uff09", "(2, 1)", False),
]


@pytest.mark.parametrize("pred, gold, expected",
                         MIXED_NUMBERS + SPACES_AND_ESCAPES + UNITS + REMARKS + MARKS + CONSTANTS_AND_POWERS + LISTS
                         + FULL_WIDTH)
def test_is_equivalent(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("table", [MIXED_NUMBERS, SPACES_AND_ESCAPES, UNITS, REMARKS, MARKS, CONSTANTS_AND_POWERS,
                                   LISTS, FULL_WIDTH])
def test_every_table_has_as_many_false_rows_as_true_rows(table):
    assert sum(expected for *_, expected in table) <= sum(not expected for *_, expected in table)


# (completion, strict answer): markers of reasoning models and Chinese benchmarks; None = no answer
EXTRACTION = [
    ("答案是 18。", "18"),                                           # issue 25: MGSM zh's marker
    ("所以答案是：\uff11\uff18。", "18"),                              # full-width digits and colon
    ("答：还剩7个。", "7"),                                           # a school answer line
    ("最终答案为 \\boxed{60}元", "60"),
    ("<think>The answer is 5</think>The answer is 7", "7"),         # issue 25: the think block is not searched
    ("</think>\nSo \\boxed{9}.", "9"),                               # <think> was in the prompt
    ("<answer>42</answer>", "42"),                                   # issue 25: R1-style tags
    ("<think>hmm</think><answer>\\boxed{3}</answer>", "3"),
    ("<think>The answer is 5", None),                                # issue 25: an unfinished think block
    ("<think>\\boxed{5}", None),
    ("<think>a</think> no answer here", None),
    ("<answer>\nA long solution.\nStill going.\n</answer>", None),   # a whole solution in the tags has no marker
    ("答案是什么呢？", None),                                           # a question about the answer
    ("我们来看答案", None),
]


@pytest.mark.parametrize("completion, expected", EXTRACTION)
def test_extraction_markers(completion, expected):
    assert extract_answer(completion, mode="strict") == expected
