"""Grader v3 review (issue 25): the kinds a fresh reviewer found, as (input, expected) rows with the pitfall named
per row; as many "must NOT be equal" rows as "equal" ones. Every row failed before the fix it names.
"""

import pytest

from arithmo.grading import answer_from_output, extract_answer, is_equivalent
from arithmo.grading.equal import grade

# (pred, gold): must NOT be equal
NOT_EQUAL = [
    # words after a number are not all units
    ("5 thousand", "5"),                 # a magnitude scales the number (5000)
    ("1.2 million", "1.2"),              # ... a decimal one too
    ("5 dozen", "5"),                    # 60
    ("5 hundred", "5"),                  # 500
    ("5\\text{ thousand}", "5"),         # ... also inside \text
    ("2 thirds", "2"),                   # a fraction word: 2/3
    ("2\\text{ thirds}", "2"),
    ("3 squared", "3"),                  # an operation: 9
    ("3\\text{ squared}", "3"),
    ("5 below zero", "5"),               # a sign in words: -5
    ("5\\text{ below zero}", "5"),
    ("5\\text{ or more}", "5"),          # a bound, not a value
    ("5 times", "5"),                    # a multiplier
    ("3\\text{ times}", "3"),
    # variables are not units
    ("3 ab", "3"),                       # two letters that are no known unit
    ("2 xy", "2"),
    ("\\frac12 ab", "\\frac12"),
    ("2\\mathrm{ab}", "2"),
    ("5 \\text{ xy}", "5"),
    # named values are paired by name, not by the order written
    ("y=1, x=2", "(1,2)"),               # x is 2: (x, y) = (2, 1)
    ("b=1, a=2", "(1,2)"),
    ("y=1, x=2", "1, 2"),                # against a bare list too: the values in the order of the names
    # different known units on both sides
    ("10 km", "10 cm"),
    ("10\\text{ km}", "10\\text{ cm}"),
    ("10cm", "10 mm"),
    ("10 m", "10 cm"),                   # a one-letter unit against a known one
    # single letters stay variables where the other side is not a bare number
    ("3x", "3"),
    ("2 s", "2x"),
    # equations compared as equations
    ("y=2x", "y=x/2"),
    ("2x - y + 3 = 0", "y = 2x - 3"),
    ("\\frac{7}{2}=3.6", "3.6"),         # a computation that is wrong is not its result
    ("x^2=4", "x=2"),
    # degrees, sets, letters
    ("\\sin^2 30^\\circ", "\\frac12"),   # the square applies
    ("\\{1\\}", "2"),
    ("AB", "ab"),                        # case matters for letters
    ("(1,000, 2,000)", "(1,2)"),         # thousands commas are not item commas here
]

# (pred, gold): equal
EQUAL = [
    ("5 thousand", "5000"),              # magnitudes scaled
    ("1.2 million", "1200000"),
    ("5 dozen", "60"),
    ("5 hundred", "500"),
    ("5\\text{ thousand}", "5000"),
    ("5 thousand dollars", "5000"),      # a magnitude, then a unit
    ("18 apples", "18"),                 # a counted noun is still dropped
    ("\\$5\\text{ per hour}", "5"),      # a rate unit
    ("5 square feet", "5"),
    ("12 km/h", "12"),
    ("10 kilometers", "10 km"),          # one table: spellings of one unit agree
    ("10 feet", "10 ft"),
    ("10 km", "10"),                     # a bare number against a unit stays equal
    # single-letter units against a bare number
    ("10 m", "10"),
    ("10m", "10"),
    ("5 g", "5"),
    ("3 L", "3"),
    ("2 h", "2"),
    ("5 s", "5"),
    ("5 m^2", "5"),
    ("5\\text{m}^2", "5"),
    ("5\\text{ m}", "5"),
    # named values by name
    ("y=1, x=2", "(2,1)"),
    ("x=1, y=2", "(1,2)"),
    # equations as equations
    ("y=2x", "2x=y"),
    ("y=2x", "2y=4x"),
    ("2x - y + 3 = 0", "y = 2x + 3"),
    ("\\frac{7}{2}=3.5", "3.5"),
    ("y = 2x", "2x"),
    # the rest of the review's right answers
    ("\\sin^2 30^\\circ", "\\frac14"),
    ("\\cos^{2}(60^\\circ)", "0.25"),
    ("ab", "ba"),                        # a product of variables
    ("xy", "yx"),
    ("\\{1\\}", "1"),                    # a one-item set
    ("\\{(1,2)\\}", "(1,2)"),
    ("(1,000, 2,000)", "(1000,2000)"),   # thousands commas in a ', ' list
]


@pytest.mark.parametrize("pred, gold", NOT_EQUAL)
def test_not_equal(pred, gold):
    assert is_equivalent(pred, gold) is False


@pytest.mark.parametrize("pred, gold", EQUAL)
def test_equal(pred, gold):
    assert is_equivalent(pred, gold) is True


def test_as_many_not_equal_rows_as_equal_rows():
    assert len(NOT_EQUAL) >= len(EQUAL)


# (completion, mode, extracted): extraction
EXTRACTED = [
    ("The answer is 5. Actually, the final answer is 6.", "strict", "6"),   # a self-correction on one line
    ("Answer: 5. Correction: Answer: 6", "strict", "6"),                    # ... after a label with a colon
    ("The answer is: 5. Wait, the answer is: 6", "strict", "6"),
    ("The answer is 18, since 3*6=18.", "strict", "18"),                    # a reason after the value
    ("答案是 18，", "strict", "18"),                                         # a Chinese comma ends the value
    ("答案是 18, 因为…", "strict", "18"),
    ("答案是负5", "strict", "-5"),                                           # 负 is a minus sign
    ("The town has 12 000 people.", "flexible", "12 000"),                  # digit groups read whole
    ("She needs 3 1/4 cups of flour.", "flexible", "3 1/4"),                # a mixed number read whole
    ("\\boxed{\\frac{1}{\\boxed{2}}}", "strict", "\\frac{1}{\\boxed{2}}"),  # the outer box
    # ... and what must not change
    ("so $x = \\boxed{\\frac{130}{231}}$. The final answer is positive, because two of the three are negative.",
     "strict", "\\frac{130}{231}"),                                         # a word then a reason is no answer
    ("The answer is 1,000.", "strict", "1,000"),                            # a thousands comma is no reason
    ("答案是 1,000。", "strict", "1,000"),
    ("In 2019 100 people came", "flexible", "100"),                         # four digits start no digit group
    ("\\boxed{1} and \\boxed{2}", "strict", "2"),                           # two boxes side by side: the last
]


@pytest.mark.parametrize("completion, mode, extracted", EXTRACTED)
def test_extract(completion, mode, extracted):
    assert extract_answer(completion, mode=mode) == extracted


# (completion, gold, correct): the whole path, wrong answers the old reading accepted
GRADED = [
    ("The answer is 5. Actually, the final answer is 6.", "5", False),  # the corrected answer counts
    ("The answer is 5. Actually, the final answer is 6.", "6", True),
    ("答案是负5", "5", False),
    ("答案是负5", "-5", True),
    ("The town has 12 000 people.", "0", False),      # flexible read 000 before
    ("The town has 12 000 people.", "12000", True),
    ("She needs 3 1/4 cups.", "1/4", False),           # flexible read 1/4 before
    ("She needs 3 1/4 cups.", "13/4", True),
    ("\\boxed{\\frac{1}{\\boxed{2}}}", "2", False),    # the inner box answered before
    ("\\boxed{\\frac{1}{\\boxed{2}}}", "\\frac12", True),
]


@pytest.mark.parametrize("completion, gold, correct", GRADED)
def test_grade_flexible(completion, gold, correct):
    assert grade(completion, gold)["correct_flexible"] is correct


# (printout, gold, equal): a printed dict pairs values by name
PRINTED = [
    ("{y: 1, x: 2}", "(1,2)", False),
    ("{y: 1, x: 2}", "(2,1)", True),
]


@pytest.mark.parametrize("printout, gold, equal", PRINTED)
def test_printed_dict_by_name(printout, gold, equal):
    assert is_equivalent(answer_from_output(printout), gold) is equal
