"""Whether a predicted answer equals the gold one: normalize both, then compare by shape.

Stages, first match wins: the same normalized text; the same structure (matrix, union of intervals,
ordered tuple or interval, set or unordered list, equation) compared item by item; numbers (exact
for integers and fractions, a relative tolerance for decimals); sympy for everything else, under ONE
time budget for the whole comparison (deadline.py; grade_timeout_s shared by every sympy step of it).
Unordered items are matched in polynomial time (text pairs first, then memoized verdicts and a bipartite
matching, at most MAX_PAIRED_ITEMS items); symbolic.py refuses oversized expressions before sympy runs.

Decisions a lax grader gets wrong, each covered by a test in tests/test_grading_equal.py:
- Percent: a side with a percent mark is read as its number and as that number /100 (issue 25; CMATH's
  own scorer reads a percent gold as its fraction, Wei et al. 2023): `50\\%`, `50%`, `50` and `0.5` all equal
  `50%`. A side without a mark is never scaled: `0.5` is NOT `50` and `50` is NOT `0.5` (unlike
  Qwen2.5-Math's grader, which tries reference/100, reference and reference*100 on any number).
- Brackets: `(1,2)` and `[1,2)` and `[1,2]` are three different things; `(1,2)` is not `(2,1)`.
  Sets `\\{1,2\\}` and bare lists `1, 2` (MATH: "enter all solutions, separated by commas") ignore order.
- A vector written as a tuple is not a `pmatrix` column: MATH's vector answers are matrices.
- Relations: `x \\ge 3` is `3 \\le x` (a relation reads the same from either side, its sign turned
  round), and a one-variable inequality is the interval it describes: `x > 3` is `(3, \\infty)`,
  `1 < x \\le 2` is `(1, 2]`, `x < -1 or x > 2` is `(-\\infty,-1)\\cup(2,\\infty)`.
- Numbers: integers and fractions compare exactly (10001 is not 10000 even though a 1e-4 relative
  tolerance would say so). When the other side is an integer, only float noise is forgiven (1e-9
  relative, 1e-12 absolute: a program printing 24.000000000000004 or 5.6e-17 for 0).
- Exact and decimal golds (issue 11). A DECIMAL gold (it has a decimal point) accepts any answer
  within 1e-4 relative, as in Qwen2.5-Math's evaluation grader `numeric_equal` (math.isclose,
  rel_tol=1e-4). An EXACT gold (integer, fraction, radical, pi, ...) needs an exact answer: `0.5` for
  `\\frac{1}{2}` and `0.\\overline{3}` for `\\frac{1}{3}` are exact, `1.732` for `\\sqrt{3}` and `0.3333` for
  `\\frac{1}{3}` are a person's rounding and are wrong. The one inexact decimal taken is a value at
  machine precision, which is how a program prints an exact result: at least 7 significant digits
  (float32 prints 6-9 digits, float64 15-17; a hand rounding keeps 2-5) and within 1e-6 relative
  (float32's epsilon 2**-23 = 1.2e-7, a few roundings): `0.3333333333333333` is `\\frac{1}{3}`,
  `1.7320508075688772` is `\\sqrt{3}`.
"""

from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from fractions import Fraction

from arithmo.deadline import DeadlineExceeded, call_with_deadline
from arithmo.grading.extract import extract_answer
from arithmo.grading.latex_text import name_order, split_top_level
from arithmo.grading.normalize import UNITS, normalize_answer
from arithmo.grading.symbolic import equations_equal, expressions_equal

# 2: grader v2 (issue 11): Python printouts, \pm, relations, exact golds, units, joined answers.
# 3: grader v3 (issue 25): mixed numbers by form, e, degrees in trig, glued units, percent as a fraction, think
#    blocks and <answer> tags, Chinese answer markers and units, linear-time readers.
# 4: issue 25 review: one time budget per comparison, polynomial list matching, size caps before sympy; the last
#    marker on a line wins; magnitudes and value-changing words are no units, variables are no units, one unit
#    table (km is not cm), single-letter units against a bare number; named values by name; equations as
#    equations; digit groups and mixed numbers in the last number; the outer box.
GRADER_VERSION = "arithmo-grader-4"

REL_TOL = 1e-4          # Qwen2.5-Math evaluation/grader.py numeric_equal: isclose(rel_tol=1e-4)
COMPUTED_MIN_DIGITS = 7      # significant digits that mark a machine-precision decimal (module doc)
COMPUTED_REL_TOL = 1e-6      # float32 epsilon 2**-23 = 1.2e-7, times a few roundings
FLOAT_NOISE_REL_TOL = 1e-9   # float64 carries ~16 digits; 1e-9 leaves room for a few rounding steps
FLOAT_NOISE_ABS_TOL = 1e-12  # 0.1 + 0.2 - 0.3 prints 5.551115123125783e-17
EXACT_FORM_REL_TOL = 1e-12   # two exact forms (\sqrt{2}/2 vs 1/\sqrt{2}) evaluated to 30 digits
_MAX_DEPTH = 6
MAX_COMPARED_CHARS = 2000  # normalized answers longer than this are compared by text only (bounded work)

logger = logging.getLogger(__name__)
_counts = {"symbolic_timeouts": 0, "symbolic_errors": 0}

_INTEGER = re.compile(r"^-?\d+$")
# Unambiguous digit runs (`\d+\.?\d*` split one run two ways: quadratic on a long number with a tail).
_DECIMAL = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$", re.IGNORECASE)
_SLASH_FRACTION = re.compile(r"^(-?\d+)/(\d+)$")
_LATEX_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_MIXED_NUMBER = re.compile(r"^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")  # MATH's 6\frac{1}{5} is 6 1/5
_MATRIX = re.compile(r"^\\begin\{pmatrix\}(.*)\\end\{pmatrix\}$", re.DOTALL)
_DECIMAL_POINT = re.compile(r"\d\.\d|\d(?:\.\d*)?e[-+]?\d", re.IGNORECASE)
_WORD = re.compile(r"^[A-Za-z][A-Za-z ]+$")
_MATH_WORDS = {"pi", "oo"}  # constants as a program prints them (sympy writes oo): compared as math


def grading_counts() -> dict[str, int]:
    """Symbolic comparisons that ran out of time or failed in this process (each counted as not equal)."""
    return dict(_counts)


# ---------------------------------------------------------------- structure
_split_top_level = split_top_level
# Relation signs after normalization (\\geq, \\geqslant, \\gt, unicode are already \\ge, >, ...).
_RELATION = re.compile(r"\\(?:le|ge|ne)(?![a-zA-Z])|<|>")
_FLIPPED = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "\\ne": "\\ne"}
_VARIABLE = re.compile(r"^[a-zA-Z]$")


def _split_relation(text: str) -> tuple[list[str], list[str]] | None:
    """(sides, signs) of `a < b \\le c` at the top level (outside brackets), or None without a sign."""
    sides, signs, depth, start, index = [], [], 0, 0, 0
    while index < len(text):
        char = text[index]
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        match = _RELATION.match(text, index) if depth == 0 else None
        if match:
            sides.append(text[start:index].strip())
            signs.append(match.group(0))
            index = start = match.end()
            continue
        index += 1
    if not signs:
        return None
    sides.append(text[start:].strip())
    return (sides, signs) if all(sides) else None


def _oriented(sides: list[str], signs: list[str]) -> tuple[list[str], list[str]]:
    """A chain written with > / \\ge turned round to < / \\le: `x \\ge 3` is `3 \\le x`."""
    if all(sign in (">", "\\ge") for sign in signs):
        return sides[::-1], [_FLIPPED[sign] for sign in reversed(signs)]
    return sides, signs


def _relation_as_interval(sides: list[str], signs: list[str]) -> str | None:
    """The interval a one-variable inequality describes (`3 < x` -> `(3,\\infty)`), or None."""
    sides, signs = _oriented(sides, signs)
    if any(sign not in ("<", "\\le") for sign in signs):
        return None
    opening = {"<": "(", "\\le": "["}
    closing = {"<": ")", "\\le": "]"}
    if len(sides) == 2 and _VARIABLE.match(sides[0]) and not _VARIABLE.match(sides[1]):
        return f"(-\\infty,{sides[1]}{closing[signs[0]]}"
    if len(sides) == 2 and _VARIABLE.match(sides[1]) and not _VARIABLE.match(sides[0]):
        return f"{opening[signs[0]]}{sides[0]},\\infty)"
    if len(sides) == 3 and _VARIABLE.match(sides[1]):
        return f"{opening[signs[0]]}{sides[0]},{sides[2]}{closing[signs[1]]}"
    return None


def _closing_index(text: str) -> int | None:
    """Index where the bracket opening `text` closes (intervals close with either kind)."""
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _shape(text: str) -> tuple[str, object]:
    """(kind, parts) of a normalized answer; kind is matrix/union/set/sequence/list/relation/equation/scalar."""
    matrix = _MATRIX.match(text)
    if matrix:
        rows = [row for row in matrix.group(1).split("\\\\") if row.strip()]
        return "matrix", [row.split("&") for row in rows]
    if len(_split_top_level(text, "\\cup")) > 1:
        return "union", _split_top_level(text, "\\cup")
    if text.startswith("\\{") and text.endswith("\\}"):
        inner = text[2:-2]
        return "set", _split_top_level(inner, ",") if inner else []
    if text[:1] in "([" and text[-1:] in ")]" and _closing_index(text) == len(text) - 1:
        items = _split_top_level(text[1:-1], ",")
        if len(items) > 1:
            return "sequence", (text[0], items, text[-1])
    items = _split_top_level(text, ",")
    if len(items) > 1:
        return "list", items
    relation = _split_relation(text)
    if relation is not None:
        return "relation", relation
    sides = _split_top_level(text, "=")
    if len(sides) == 2 and all(sides):
        return "equation", sides
    return "scalar", text


MAX_LIST_ITEMS = 64  # a longer list is compared by its items' text only (bounded work; no answer lists more)
MAX_PAIRED_ITEMS = 16  # items left after pairing by text that are compared pairwise (n*n verdicts, each bounded)


def _match_unordered(preds: list[str], golds: list[str], deadline: float, depth: int) -> bool:
    """Whether the items pair up one to one, in polynomial time (issue 25 review: backtracking without memo
    took 54.8 s on a 92-character pair). Items with the same normalized text pair first (a multiset); the
    rest, at most MAX_PAIRED_ITEMS of them, get one verdict per (pred, gold) pair (memoized, all under the
    comparison's one deadline), then a maximum bipartite matching (Kuhn's augmenting paths, O(n^3)) decides."""
    if len(preds) != len(golds):
        return False
    if len(preds) > MAX_LIST_ITEMS:  # items of a normalized answer: compared as they are
        return sorted(item.strip() for item in preds) == sorted(item.strip() for item in golds)
    pred_keys, gold_keys = [normalize_answer(item) for item in preds], [normalize_answer(item) for item in golds]
    unmatched_golds = list(golds)
    rest_preds = []
    for pred, key in zip(preds, pred_keys):
        if key in gold_keys:
            index = gold_keys.index(key)
            del gold_keys[index], unmatched_golds[index]
        else:
            rest_preds.append(pred)
    preds, golds = rest_preds, unmatched_golds
    if not preds:
        return True
    if len(preds) > MAX_PAIRED_ITEMS:
        return False  # more differently written items than any answer lists: not compared pairwise
    verdicts: dict[tuple[int, int], bool] = {}

    def equal(pred_index: int, gold_index: int) -> bool:
        key = (pred_index, gold_index)
        if key not in verdicts:
            verdicts[key] = _equal(preds[pred_index], golds[gold_index], deadline, depth)
        return verdicts[key]

    for gold_index in range(len(golds)):  # a gold no prediction equals: no need for the rest
        if not any(equal(pred_index, gold_index) for pred_index in range(len(preds))):
            return False
    owner: dict[int, int] = {}  # pred index -> gold index it is matched to

    def augment(gold_index: int, seen: set[int]) -> bool:
        for pred_index in range(len(preds)):
            if pred_index not in seen and equal(pred_index, gold_index):
                seen.add(pred_index)
                if pred_index not in owner or augment(owner[pred_index], seen):
                    owner[pred_index] = gold_index
                    return True
        return False

    return all(augment(gold_index, set()) for gold_index in range(len(golds)))


def _assigned_values(answer: str) -> list[str] | None:
    """The values of a list of assignments to different variables (`x=1, y=2, z=3` -> 1, 2, 3), else None."""
    items = split_top_level(answer.strip().strip("$"), ",")
    if len(items) < 2 or len(items) > MAX_LIST_ITEMS:
        return None
    matches = [_ASSIGNMENT.match(item) for item in items]
    if not all(matches) or len({match.group(1) for match in matches}) != len(matches):
        return None
    # in the order of the variables' NAMES (x, y, z), not the order written: y=1, x=2 is (2, 1) (issue 25 review)
    return [match.group(2) for match in sorted(matches, key=lambda match: name_order(match.group(1)))]


_ASSIGNMENT = re.compile(r"^\s*((?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?)\s*=\s*([^=]+)$")


# Units (issue 25 review). A single letter after a number (10 m, 5 g, 3 L, 2 h, 5 s, 5 m^2) is a unit only where the
# other side is a bare number: elsewhere it may be a variable (3x). When both sides name a known unit and the
# units differ (10 km vs 10 cm), the answers differ; a bare number against a unit stays equal.
_SINGLE_LETTER_UNITS = {"m": "m", "g": "g", "L": "l", "l": "l", "h": "h", "s": "s"}
_LETTER_UNIT = re.compile(r"^(?P<number>.*?[\d}])(?P<unit>[mgLlhs])(?:\^[23])?$")
_UNIT_TAIL = re.compile(r"(?<=[\d}\s])\s*(?P<unit>[a-zA-Z]+)(?:/[a-zA-Z]+)?\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*\.?\s*$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textrm|mbox|operatorname)\s*\{([^{}]*)\}|\\[,;: !]|\$")


def _numeric(text: str) -> bool:
    """No letters outside LaTeX commands: a number or an expression of numbers (`\\frac{1}{2}`, `2\\sqrt{3}`)."""
    return re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", text)) is None


def _unit_of(raw: str) -> str | None:
    """The canonical unit (normalize.UNITS, or a single letter) that ends `raw` after a number, else None."""
    tail = _TEXT_WRAPPER.sub(lambda match: " " + (match.group(1) or "") + " ", raw[-200:])
    match = _UNIT_TAIL.search(tail)
    if match is None or not re.search(r"[\d}]\s*$", tail[:match.start("unit")]):
        return None
    word = match.group("unit")
    if len(word) == 1:
        return _SINGLE_LETTER_UNITS.get(word)
    return UNITS.get(word, UNITS.get(word.lower()))


def _without_letter_unit(text: str, other: str) -> str:
    """`text` without a single-letter unit (`10m` -> `10`) when both its number and `other` are numeric."""
    match = _LETTER_UNIT.match(text)
    if match and _numeric(match.group("number")) and _numeric(other):
        return match.group("number")
    return text


_RELATION_TEXT = re.compile(r"[<>]|\\(?:le|ge|ne|leq|geq|neq|lt|gt)(?![a-zA-Z])|\\(?:approx|pm|mp)(?![a-zA-Z])")


def _raw_equation(raw: str) -> tuple[str, str] | None:
    """(lhs, rhs), normalized, when `raw` is one equation with letters in it (`y = 2x`, `2x - y + 3 = 0`), else None."""
    text = raw.strip().strip("$")
    if text.count("=") != 1 or _RELATION_TEXT.search(text) or not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", text)):
        return None
    sides = split_top_level(text, "=")
    if len(sides) != 2 or not all(side.strip() for side in sides) or "," in text:
        return None
    lhs, rhs = normalize_answer(sides[0]), normalize_answer(sides[1])
    return (lhs, rhs) if lhs and rhs else None


def _equal(raw_pred: str, raw_gold: str, deadline: float, depth: int = 0) -> bool:
    pred, gold = normalize_answer(raw_pred), normalize_answer(raw_gold)
    if not pred or not gold:
        return False
    if re.search(r"[a-zA-Z]", raw_pred[-200:]) and re.search(r"[a-zA-Z]", raw_gold[-200:]):
        pred_unit, gold_unit = _unit_of(raw_pred), _unit_of(raw_gold)
        if pred_unit and gold_unit and pred_unit != gold_unit:
            return False  # 10 km is not 10 cm
    pred, gold = _without_letter_unit(pred, gold), _without_letter_unit(gold, pred)
    if pred == gold:
        return True
    if depth > _MAX_DEPTH or max(len(pred), len(gold)) > MAX_COMPARED_CHARS:
        return False
    depth += 1
    pred_equation, gold_equation = _raw_equation(raw_pred), _raw_equation(raw_gold)
    if pred_equation is not None and gold_equation is not None:
        # both written as equations: compared as equations (y=2x is 2x=y is 2y=4x; 2x-y+3=0 is y=2x+3), even
        # where normalizing dropped a lone variable on the left (issue 25 review)
        return _with_deadline(equations_equal, (pred_equation, gold_equation), deadline)
    pred_kind, pred_parts = _shape(pred)
    gold_kind, gold_parts = _shape(gold)
    for kind, parts, other in ((pred_kind, pred_parts, gold), (gold_kind, gold_parts, pred)):
        if kind == "equation" and all(_numeric(side) for side in parts) and _shape(other)[0] == "scalar":
            # \frac{7}{2}=3.5 against 3.5: a computation and its result, the result compared when the two agree
            return _equal(parts[1], other, deadline, depth) and _equal(parts[0], parts[1], deadline, depth)
        if kind == "set" and len(parts) == 1 and _shape(other)[0] != "set":
            return _equal(parts[0], other, deadline, depth)  # \{1\} is the one answer 1
    for assigned, other_kind, other_parts in ((raw_pred, gold_kind, gold_parts), (raw_gold, pred_kind, pred_parts)):
        # `x=1, y=2, z=3` against a bare `1, 2, 3`: the values in the order of the variables' names
        values = _assigned_values(assigned) if other_kind == "list" and "=" in assigned else None
        if values is not None:
            return len(values) == len(other_parts) and all(
                _equal(value, part, deadline, depth) for value, part in zip(values, other_parts))
    unordered = {"set", "list"}
    if pred_kind in unordered and gold_kind in unordered:
        return _match_unordered(pred_parts, gold_parts, deadline, depth)
    if {pred_kind, gold_kind} == {"relation", "sequence"}:
        # x > 3 against (3, \\infty): the inequality as its interval
        relation, other = (pred_parts, gold) if pred_kind == "relation" else (gold_parts, pred)
        interval = _relation_as_interval(*relation)
        return interval is not None and _equal(interval, other, deadline, depth)
    if {pred_kind, gold_kind} == {"list", "union"}:
        # "x < -1 or x > 2" (a list of inequalities once 'or' is a comma) against (-\\infty,-1)\\cup(2,\\infty)
        items, union = (pred_parts, gold_parts) if pred_kind == "list" else (gold_parts, pred_parts)
        intervals = [_relation_as_interval(*relation) if (relation := _split_relation(item)) else None
                     for item in items]
        return None not in intervals and _match_unordered(intervals, union, deadline, depth)
    if pred_kind == "relation" and gold_kind == "relation":
        return _relations_equal(pred_parts, gold_parts, deadline, depth)
    if pred_kind != gold_kind:
        return False
    if pred_kind == "matrix":
        return (len(pred_parts) == len(gold_parts)
                and all(len(p_row) == len(g_row) for p_row, g_row in zip(pred_parts, gold_parts))
                and all(_equal(p, g, deadline, depth) for p_row, g_row in zip(pred_parts, gold_parts)
                        for p, g in zip(p_row, g_row)))
    if pred_kind == "union":
        return _match_unordered(pred_parts, gold_parts, deadline, depth)
    if pred_kind == "sequence":
        (p_open, p_items, p_close), (g_open, g_items, g_close) = pred_parts, gold_parts
        return (p_open == g_open and p_close == g_close and len(p_items) == len(g_items)
                and all(_equal(p, g, deadline, depth) for p, g in zip(p_items, g_items)))
    if pred_kind == "equation":
        return _with_deadline(equations_equal, (tuple(pred_parts), tuple(gold_parts)), deadline)
    return _scalar_equal(pred, gold, deadline)


def _relations_equal(pred: tuple, gold: tuple, deadline: float, depth: int) -> bool:
    (pred_sides, pred_signs), (gold_sides, gold_signs) = _oriented(*pred), _oriented(*gold)
    if pred_signs == ["\\ne"] and gold_signs == ["\\ne"] and not _same_sides(pred_sides, gold_sides, deadline, depth):
        pred_sides = pred_sides[::-1]  # x \\ne 3 is 3 \\ne x
    return pred_signs == gold_signs and _same_sides(pred_sides, gold_sides, deadline, depth)


def _same_sides(pred: list[str], gold: list[str], deadline: float, depth: int) -> bool:
    return len(pred) == len(gold) and all(_equal(p, g, deadline, depth) for p, g in zip(pred, gold))


# ---------------------------------------------------------------- numbers and expressions
def _exact_number(text: str) -> Fraction | None:
    """The value of an integer, decimal, a/b, \\frac{a}{b} or mixed number; None for anything else."""
    if _DECIMAL.match(text):
        return Fraction(text)
    for pattern in (_SLASH_FRACTION, _LATEX_FRACTION):
        match = pattern.match(text)
        if match:
            *sign, numerator, denominator = match.groups()
            if int(denominator) == 0:
                return None
            value = Fraction(int(numerator), int(denominator))
            return -value if sign and sign[0] == "-" else value
    mixed = _MIXED_NUMBER.match(text)
    if mixed and int(mixed.group(4)) != 0:
        value = int(mixed.group(2)) + Fraction(int(mixed.group(3)), int(mixed.group(4)))
        return -value if mixed.group(1) == "-" else value
    return None


_DECIMAL_LITERAL = re.compile(r"(?<![\d.])(?:\d*\.\d+|\d+\.\d*|\d+(?=e[-+]?\d))", re.IGNORECASE)  # one start per run


def _significant_digits(text: str) -> int:
    """The most significant digits among the decimals in `text` (`0.3333` has 4, `1.5\\sqrt{2}` 2, a
    program's `-0.5 + 0.866025403784439i` 15: its short decimals are exact, its long one is computed)."""
    counts = [len(literal.replace(".", "").lstrip("0").rstrip("0") or "0")
              for literal in _DECIMAL_LITERAL.findall(text)]
    return max(counts) if counts else 0


def _tolerance(pred_text: str, gold_text: str, pred_decimal: bool, gold_decimal: bool) -> tuple[float, float] | None:
    """(rel_tol, abs_tol) for a comparison where some side has a decimal; None: only exact equality."""
    if _INTEGER.match(pred_text) or _INTEGER.match(gold_text):
        return FLOAT_NOISE_REL_TOL, FLOAT_NOISE_ABS_TOL
    if gold_decimal:
        return REL_TOL, 0.0
    if pred_decimal and _significant_digits(pred_text) >= COMPUTED_MIN_DIGITS:
        return COMPUTED_REL_TOL, 0.0  # a program's float for an exact gold (module doc)
    return None


def _numbers_equal(pred: Fraction, gold: Fraction, pred_text: str, gold_text: str) -> bool:
    if pred == gold:
        return True  # 0.5 is 1/2 exactly
    pred_decimal = "." in pred_text or "e" in pred_text.lower()
    gold_decimal = "." in gold_text or "e" in gold_text.lower()
    if not (pred_decimal or gold_decimal):
        return False
    tolerance = _tolerance(pred_text, gold_text, pred_decimal, gold_decimal)
    if tolerance is None:
        return False  # 0.3333 is not 1/3: an exact gold needs an exact answer
    rel_tol, abs_tol = tolerance
    difference = abs(pred - gold)
    return difference <= max(rel_tol * max(abs(pred), abs(gold)), abs_tol)


def _with_deadline(function, args: tuple, deadline: float) -> bool:
    """`function(*args)` within what is left of the comparison's one time budget (`deadline`, time.monotonic()
    seconds); a budget already spent counts as not equal without calling it."""
    remaining = deadline - time.monotonic()
    try:
        if remaining <= 0:
            raise DeadlineExceeded("the comparison's time budget is spent")
        return bool(call_with_deadline(function, args, remaining))
    except DeadlineExceeded:
        _counts["symbolic_timeouts"] += 1
        logger.warning("symbolic comparison %r ran past the comparison's time budget: counted as not equal",
                       args[:2])
    except Exception as error:  # sympy raises TypeError, RecursionError, ... on odd input (the worker: RuntimeError)
        _counts["symbolic_errors"] += 1
        logger.warning("symbolic comparison %r failed (%s): counted as not equal", args[:2], error)
    return False


def _percent_readings(text: str) -> list[str]:
    """`25%` is read as 25 (a unit: "what percent ...", gold 25) and as the fraction 25/100 (CMATH's own scorer
    reads a percent gold as its fraction); text without a percent mark has its one reading."""
    if not text.endswith("%"):
        return [text]
    number = text[:-1]
    if _INTEGER.match(number):
        return [number, f"\\frac{{{number}}}{{100}}"]
    if _DECIMAL.match(number):
        return [number, str(Decimal(number).scaleb(-2))]
    return [number, f"\\frac{{{number}}}{{100}}"]


def _scalar_equal(pred: str, gold: str, deadline: float) -> bool:
    # A percent mark is read both ways (module doc): 50% is 50 and 0.5; a side without one is never scaled.
    readings = [(p, g) for p in _percent_readings(pred) for g in _percent_readings(gold)]
    if pred.endswith("%") and gold.endswith("%"):
        readings = readings[:1]  # both in percent: the numbers themselves
    return any(_one_scalar_equal(p, g, deadline) for p, g in readings)


def _one_scalar_equal(pred: str, gold: str, deadline: float) -> bool:
    if pred == gold:
        return True
    if any(_WORD.match(text) and text.lower() not in _MATH_WORDS for text in (pred, gold)):
        # text answers (odd, Friday, circle); one letter is a choice or a variable: case matters
        if max(len(pred), len(gold)) <= 3 and pred.isalpha() and gold.isalpha():
            # two or three letters may be a product of variables: ab is ba, AB is not ab (issue 25 review)
            return sorted(pred) == sorted(gold) or (
                len(pred) > 1 and pred.lower() == gold.lower() and not (pred.isupper() or gold.isupper()))
        return len(pred) > 1 and pred.lower() == gold.lower()
    pred_number, gold_number = _exact_number(pred), _exact_number(gold)
    if pred_number is not None and gold_number is not None:
        return _numbers_equal(pred_number, gold_number, pred, gold)
    pred_decimal, gold_decimal = bool(_DECIMAL_POINT.search(pred)), bool(_DECIMAL_POINT.search(gold))
    tolerance = _tolerance(pred, gold, pred_decimal, gold_decimal) if pred_decimal or gold_decimal else None
    # No tolerance: two exact forms (\\sqrt{2}/2 and 1/\\sqrt{2}) still agree to 30 digits.
    rel_tol, abs_tol = tolerance if tolerance is not None else (EXACT_FORM_REL_TOL, 0.0)
    return _with_deadline(expressions_equal, (pred, gold, rel_tol, abs_tol), deadline)


# ---------------------------------------------------------------- public
def is_equivalent(pred: str | None, gold: str, grade_timeout_s: float = 2.0) -> bool:
    """Whether answer `pred` equals `gold` (see the module doc); None is never equivalent.

    `grade_timeout_s` (seconds; the same name as eval's config key) is ONE time budget for the whole
    comparison: every symbolic (sympy) step of it, however many items a list holds, shares it (issue 25
    review: one budget per sympy call made a list of n items cost n budgets). Running out counts as not equal
    and is counted in `grading_counts()`. Raises ValueError for a budget that is not a positive number.
    """
    if not isinstance(gold, str):
        raise TypeError(f"is_equivalent: gold must be a str, got {type(gold).__name__}: {gold!r}")
    if not gold.strip():
        raise ValueError("is_equivalent: the gold answer is empty")
    if pred is None:
        return False
    if not isinstance(pred, str):
        raise TypeError(f"is_equivalent: pred must be a str or None, got {type(pred).__name__}: {pred!r}")
    if not (isinstance(grade_timeout_s, (int, float)) and grade_timeout_s > 0):
        raise ValueError(f"is_equivalent: grade_timeout_s must be a positive number of seconds, got {grade_timeout_s!r}")
    return _equal(pred, gold, time.monotonic() + grade_timeout_s)


def grade(completion: str, gold: str) -> dict:
    """Extract the answer from `completion` both ways and compare each with `gold`.

    The gold is passed to `extract_answer`, so several `\\boxed{}` answers count together when the
    gold lists several answers (extract.py). Returns {"extracted_strict", "extracted_flexible",
    "correct_strict", "correct_flexible"}.
    """
    strict = extract_answer(completion, mode="strict", gold=gold)
    flexible = extract_answer(completion, mode="flexible", gold=gold)
    return {
        "extracted_strict": strict,
        "extracted_flexible": flexible,
        "correct_strict": is_equivalent(strict, gold),
        "correct_flexible": is_equivalent(flexible, gold),
    }
