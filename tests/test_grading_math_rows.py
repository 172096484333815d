"""Real rows: every MATH dev row and GSM8K test row graded against its own solution comes out correct.

MATH rows carry no `answer` field (fields: problem, level, type, solution, idx), so the gold is the
last \\boxed{} of the solution, found here by a brace counter written independently of
arithmo.grading; the grader must extract the same text from the whole solution and call it
equivalent, also in the forms a model writes it ("The answer is: ...", \\dfrac, no spaces).
Wrong answers made from each gold (an integer + 1, a fraction upside down, a tuple reversed) must be
rejected.
"""

import json
import re

import pytest
from _shared import shared_file

from arithmo.grading import answer_from_output, extract_answer, grading_counts, is_equivalent

# Rows whose solution is malformed for this check: none so far (all 500 MATH and 300 GSM8K rows pass).
MALFORMED_ROWS: dict[int, str] = {}


def _last_boxed(solution: str) -> str:
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    assert start != -1, "no \\boxed in the solution"
    brace = solution.index("{", start)
    depth = 0
    for index in range(brace, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[index], 0)
        if depth == 0:
            return solution[brace + 1: index]
    raise AssertionError("unbalanced \\boxed")


def _rows(relative: str) -> list[dict]:
    path = shared_file(relative)
    rows = []
    for number, line in enumerate(open(path, encoding="utf-8"), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise AssertionError(f"{path}:{number}: not JSON ({error})") from error
    return rows


def _failures(rows, check) -> list[str]:
    failures = []
    for row in rows:
        problem = check(row)
        if problem:
            failures.append(problem)
    return failures


def test_every_math_row_grades_its_own_solution_correct():
    rows = _rows("math/test_dev500.jsonl")
    assert len(rows) == 500 and set(rows[0]) == {"problem", "level", "type", "solution", "idx"}
    timeouts_before = grading_counts()["symbolic_timeouts"]
    shapes = {"decimal": 0, "list": 0}

    def check(row):
        if row["idx"] in MALFORMED_ROWS:
            return None
        gold = _last_boxed(row["solution"])
        extracted = extract_answer(row["solution"])
        forms = {
            "extracted": extracted,
            "extracted with the gold": extract_answer(row["solution"], gold=gold),
            "answer line": extract_answer(f"Some work.\nThe answer is: {gold}"),
            "boxed line": extract_answer(f"The answer is $\\boxed{{{gold}}}$."),
            "ANSWER: line": extract_answer(f"Some work.\nANSWER: {gold}"),
            "bold final answer": extract_answer(f"Some work.\n**Final Answer:** ${gold}$"),
            "dfrac": gold.replace("\\frac", "\\dfrac"),
            "no spaces": gold.replace(" ", ""),
            "escaped twice": gold.replace("\\", "\\\\"),  # as in a JSON dump
        }
        decimal = _decimal_form(gold)
        if decimal is not None:
            shapes["decimal"] += 1
            forms["decimal"] = decimal  # the numeric path, not string equality
        items = _top_level_items(gold)
        if len(items) > 1 and not re.sub(r"^\\left", "", gold).startswith(("(", "[")):
            forms["reordered list"] = ", ".join(reversed(items))  # "enter all solutions": any order
            shapes["list"] += 1
        if extracted != gold:
            return f"idx {row['idx']}: extracted {extracted!r}, the last \\boxed is {gold!r}"
        for name, form in forms.items():
            if not is_equivalent(form, gold):
                return f"idx {row['idx']}: {name} form {form!r} is not equivalent to gold {gold!r}"
        return None

    failures = _failures(rows, check)
    assert not failures, f"{len(failures)} of {len(rows)} rows fail:\n" + "\n".join(failures)
    assert grading_counts()["symbolic_timeouts"] == timeouts_before
    assert shapes["decimal"] >= 300 and shapes["list"] >= 5, shapes  # the forms above were exercised


def _decimal_form(gold: str) -> str | None:
    """`gold` as a 12-significant-digit decimal when it is an integer or a simple fraction."""
    from fractions import Fraction

    fraction = re.fullmatch(r"(-?)\\[dt]?frac\{?(\d+)\}?\{?(\d+)\}?", gold.replace(" ", ""))
    if fraction:
        sign, top, bottom = fraction.groups()
        value = Fraction(int(top), int(bottom)) * (-1 if sign else 1)
    elif re.fullmatch(r"-?\d+", gold):
        value = Fraction(int(gold))
    else:
        return None
    return f"{float(value):.12g}" + ("" if value.denominator != 1 else ".0")


def _top_level_items(gold: str) -> list[str]:
    items, depth, start = [], 0, 0
    for index, char in enumerate(gold):
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        if char == "," and depth == 0 and not re.match(r",\\!\d{3}|,\d{3}", gold[index:]):
            items.append(gold[start:index].strip())
            start = index + 1
    return items + [gold[start:].strip()]


def _wrong_forms(gold: str) -> list[str]:
    """Answers that differ from `gold`: an integer off by one, a fraction upside down, a tuple reversed."""
    wrong = []
    tuple_match = re.fullmatch(r"(?:\\left)?\((.*?)(?:\\right)?\)", gold.strip())
    if tuple_match:
        items = _top_level_items(tuple_match.group(1))
        if len(items) > 1 and len(set(items)) == len(items):
            wrong.append("(" + ", ".join(reversed(items)) + ")")
    if re.fullmatch(r"-?\d+", gold):
        wrong.append(str(int(gold) + 1))
    fraction = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
    if fraction and fraction.group(2) != fraction.group(3):
        sign, top, bottom = fraction.groups()
        wrong.append(f"{sign}\\frac{{{bottom}}}{{{top}}}")
    return wrong


def test_math_golds_reject_near_misses():
    rows = _rows("math/test_dev500.jsonl")
    checked = {"any": 0, "tuple": 0}

    def check(row):
        gold = _last_boxed(row["solution"])
        for wrong in _wrong_forms(gold):
            checked["any"] += 1
            checked["tuple"] += wrong.startswith("(")
            if is_equivalent(wrong, gold):
                return f"idx {row['idx']}: {wrong!r} accepted for gold {gold!r}"
        return None

    failures = _failures(rows, check)
    assert not failures, "\n".join(failures)
    assert checked["any"] > 300 and checked["tuple"] >= 10, checked  # most golds are integers or fractions


@pytest.mark.parametrize("relative, field", [("gsm8k/test_first300.jsonl", "answer"),
                                             ("metamath_eval/GSM8K_test_first300.jsonl", "response")])
def test_every_gsm8k_row_grades_its_own_solution_correct(relative, field):
    rows = _rows(relative)
    assert len(rows) == 300

    def check(row):
        solution = row[field]
        gold = solution.rsplit("####", 1)[1].strip()
        extracted = extract_answer(solution)
        if extracted != gold or not is_equivalent(extracted, gold):
            return f"{gold!r}: extracted {extracted!r}"
        value = int(gold.replace(",", ""))
        for form in (f"The answer is: {gold}", f"The answer is {value:,}.", f"{gold}.0",
                     f"Final Answer: The total is {gold}.", f"The final answer is **{gold}**.", f"ANSWER: ${gold}$"):
            if not is_equivalent(extract_answer(form, mode="flexible"), gold):
                return f"{gold!r}: the form {form!r} is not equivalent"
        # what a PoT program prints for it: int, float, numpy 2 scalars, a one-item list
        for printed in (f"{value}\n", f"{float(value)}\n", f"np.int64({value})\n", f"[np.float64({float(value)})]\n",
                        f"[{value}]\n", f"Total: {value}\n"):
            if not is_equivalent(answer_from_output(printed), gold):
                return f"{gold!r}: the printout {printed!r} read as {answer_from_output(printed)!r}"
        if is_equivalent(str(int(gold.replace(",", "")) + 1), gold):
            return f"{gold!r}: gold + 1 accepted"
        return None

    failures = _failures(rows, check)
    assert not failures, f"{len(failures)} of {len(rows)} rows fail:\n" + "\n".join(failures)
