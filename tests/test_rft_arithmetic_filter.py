"""RFT's own-arithmetic filter (`arithmo.rft.dedup.wrong_equations`, issue 25): it must never flag a correct
solution (every GSM8K reference solution we hold is one) and must flag every planted wrong equation, in the
notations GSM8K solutions use. Rows are (text, expected) with the pitfall in a comment; as many "must flag"
rows as "must not flag" ones.
"""

import json
import re
from pathlib import Path

import pytest

from arithmo.rft.dedup import checked_equations, wrong_equations

GSM8K = Path("/work/shared/data/gsm8k")
ANNOTATION = re.compile(r"<<[^<>]*>>")

# (text, whether it holds) - each a notation that was misread before or a close cousin of one
CORRECT = [
    ("20% * $50 = $10", True),                 # issue 25: read as 20*50=10 before (percent is a fraction)
    ("4/5 * 1/4 = 1/5", True),                 # issue 25: the result 1/5 is a fraction, not the 1 before it
    ("3 / 6 = 50%", True),                     # a percent result
    ("50% * 50% = 25%", True),
    ("1/3 = 33%", True),                       # a percent rounded to the digits shown
    ("3 / 4 * 2 = 1 1/2", True),               # a mixed number result
    ("2 + 1 1/2 = 3 1/2", True),               # mixed numbers on both sides
    ("1 1/2 / 1/2 = 3", True),                 # a written fraction is one value after a division
    ("8 x 1 1/2 = 12", True),                  # x as times, then a mixed number
    ("650 000/2 = 325 000", True),             # issue 25: space-grouped thousands
    ("$400 000 x 3/100 = $12 000", True),
    ("1/2 (68) + 10 = 44", True),              # a bracket after a number multiplies
    ("4 * 60 / 5 = 4 * 12 = 48", True),        # a chain: each link holds
    ("8 * 2 + 4 * 5 + 12 * 4 = 16 + 20 + 48 = 84", True),
    ("6120 + 6120 / 2 = 6120 + 3060 = 9180", True),
    ("10/3 = 3.33", True),                     # a decimal rounded to the digits shown
    ("$1,200 + $300 = $1,500", True),          # thousands commas and dollars
    ("\\frac{3}{4} \\times 8 = 6", True),       # LaTeX operators
    ("7 \u2212 2 = 5", True),                  # unicode minus
    ("(3 + 4) * 2 = 14", True),
    # issue 25 review: percent, mixed numbers and units decided by form
    ("12 1/2 % * 80 = 10", True),              # a mixed-number percent: 12.5% of 80 (was flagged)
    ("15% * 80 = 12", True),                   # a percent of an amount is a/100 * b
    ("$200 * 5% = $10 interest", True),        # the amount first
    ("1/2 * 50% = 25%", True),                 # a percent of a fraction stays a percent
    ("10 years * 5% = 50%", True),             # a share over whole periods, at most 100% (GSM8K train row)
    ("10% of 200 = 20", True),                 # percent-of
    ("50% of 1/2 = 1/4", True),
    ("100 + 20% = 120", True),                 # a percent increase is a * (1 + b/100)
    ("$40 - 10% = $36", True),                 # a discount
    ("2 1/2 * 4 = 10", True),                  # a mixed number times a number
    ("1 1/2 + 1 1/2 = 3", True),               # two mixed numbers
    ("2 hours * 60 = 120 minutes", True),      # a unit word between the number and its operator
    ("1 1/2 hours * 60 = 90 minutes", True),   # ... after a mixed number
]
NOT_CHECKED = [
    ("X*2 - $40 = $250", None),                # issue 25: an equation with a variable is not arithmetic
    ("M + 4 + 2 = 8", None),                   # a variable on the left
    ("100/5 = 5A/5", None),                    # a variable glued to the number
    ("192 / 1.2 = 1.2Y / 1.2", None),
    ("60g * 4/5 = 240g/5", None),              # a unit glued to the number
    ("$50 - 20% = $40", None),                 # 20% of 50: a percent added to a plain number
    ("60 students x 2/3 = 40 students", None),  # the run belongs to the words before it
    ("30/100%1000 = 300", None),               # no reading makes sense of it
]
WRONG = [
    ("29 * 8 = 224", False),                   # the slip RFT must not teach
    ("20% * $50 = $15", False),
    ("4/5 * 1/4 = 1/4", False),
    ("3 / 6 = 60%", False),
    ("1/3 = 30%", False),
    ("3 / 4 * 2 = 1 1/4", False),
    ("2 + 1 1/2 = 4", False),
    ("1 1/2 / 1/2 = 4", False),
    ("8 x 1 1/2 = 13", False),
    ("650 000/2 = 300 000", False),
    ("$400 000 x 3/100 = $12 001", False),
    ("1/2 (68) + 10 = 45", False),
    ("4 * 60 / 5 = 4 * 12 = 50", False),       # the last link of a chain
    ("4 * 12 = 48 = 50", False),               # a lone number chained to a result
    ("6120 + 6120 / 2 = 6120 + 3000 = 9120", False),
    ("10/3 = 3.4", False),                     # rounded wrongly
    ("$1,200 + $300 = $1,600", False),
    ("\\frac{3}{4} \\times 8 = 5", False),
    ("7 \u2212 2 = 4", False),
    ("(3 + 4) * 2 = 15", False),
    # issue 25 review: planted slips that a second reading let through
    ("20% * 50 = 1000", False),                # the percent dropped: 20*50
    ("15% * 80 = 1200", False),
    ("25% * 40 = 1000%", False),               # the percent moved to the result: 25*40 as 1000%
    ("$200 * 5% = $1000", False),
    ("50% * 1/2 = 1/2", False),                # a percent of a fraction: 25% or 0.25, never 1/2
    ("10% of 200 = 25", False),                # percent-of
    ("50% of 1/2 = 1/2", False),
    ("100 + 20% = 150", False),                # a percent increase
    ("$40 - 10% = $30", False),
    ("3 1/2 * 2 = 1", False),                  # the whole number dropped from a mixed number (1/2*2)
    ("1 1/2 + 1 1/2 = 2", False),              # 1/2 + 1 1/2 read as one cut
    ("2 hours * 60 = 100 minutes", False),     # a unit word between the number and its operator
    ("1 1/2 hours * 60 = 60 minutes", False),
]


@pytest.mark.parametrize("text, holds", CORRECT + NOT_CHECKED + WRONG)
def test_each_notation(text, holds):
    found = [verdict for _, verdict in checked_equations(text)]
    if holds is None:  # not checked: never flagged
        assert False not in found and wrong_equations(text) == [], (text, checked_equations(text))
    elif holds:
        assert found and all(verdict is True for verdict in found), (text, checked_equations(text))
    else:
        assert False in found, (text, checked_equations(text))


def test_the_wrong_equation_is_named_as_written():
    text = "Omar reads 29 * 8 = 224 pages. With 40 more that is 224 + 40 = 264 pages.\nThe answer is: 264"
    assert wrong_equations(text) == ["29*8=224"]
    assert wrong_equations("It needs 3 / 4 * 2 = 1 1/4 feet.") == ["3/4*2=1 1/4"]


def _rows(name: str) -> list[dict]:
    path = GSM8K / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real GSM8K rows live in the shared data folder of the dev machines")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 300, f"{path}: expected the shared sample's rows, found {len(rows)}"
    return rows


@pytest.mark.parametrize("name", ["train_first500.jsonl", "test_first300.jsonl"])
def test_no_gsm8k_reference_solution_is_flagged(name):
    """GSM8K's reference solutions are all correct: none may be flagged (24 of 7,473 were, issue 25)."""
    flagged = {row["question"][:60]: wrong_equations(row["answer"]) for row in _rows(name)}
    flagged = {question: found for question, found in flagged.items() if found}
    assert not flagged, f"{len(flagged)} correct reference solutions flagged: {list(flagged.items())[:5]}"


def test_planted_wrong_equations_are_all_flagged():
    """Every train row's solution with one wrong equation planted, in the calculator annotations (how GSM8K
    writes them) and, annotations removed, in the text (how a model trained without them writes)."""
    rows = _rows("train_first500.jsonl")
    missed = []
    for number, row in enumerate(rows):
        annotation = ANNOTATION.search(row["answer"])
        if annotation:  # the first annotation's result made wrong: <<48/2=24>> -> <<48/2=25>>
            lhs, _, rhs = annotation.group(0)[2:-2].partition("=")
            planted = f"<<{lhs}={_off_by_one(rhs)}>>"
            text = row["answer"][:annotation.start()] + planted + row["answer"][annotation.end():]
            if not wrong_equations(text):
                missed.append(("annotation", planted))
        plain = ANNOTATION.sub("", row["answer"])
        wrong_text, _ = WRONG[number % len(WRONG)]
        lines = plain.split("\n")
        lines.insert(len(lines) // 2, f"So {wrong_text} in all.")
        if wrong_text.replace(" ", "") not in " ".join(wrong_equations("\n".join(lines))).replace(" ", "") \
                and not wrong_equations("\n".join(lines)):
            missed.append(("text", wrong_text))
    assert not missed, f"{len(missed)} planted wrong equations not flagged: {missed[:5]}"


def _off_by_one(value: str) -> str:
    number = float(value.replace(",", ""))
    return str(int(number) + 1) if number == int(number) else f"{number + 1:g}"
