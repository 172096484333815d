"""When two correct solutions of one question are the same reasoning path (RFT's de-duplication).

Yuan et al. 2023 ("Scaling relationship on learning mathematical reasoning with large language models",
sec. 3.3, RFT) keep, per question, only the sampled paths whose list of equations is new: two paths with the
same equations in the same order are one path, however their words differ. GSM8K solutions mark each
calculation as a calculator annotation `<<48/2=24>>`, which is where their equations come from.

- CoT: `equation_list(text)` is the key. Calculator annotations when the text has any; otherwise every
  `arithmetic expression = number` written in the text, after the normalisation rules below. A solution
  without a single equation has the empty list as its key, so one such solution is kept per question
  (the paper's criterion taken literally).
- A correct CoT solution whose own arithmetic is wrong somewhere (`wrong_equations`: `29 * 8 = 224` on the way to
  a right final answer) is not kept either: Yuan et al. filter out "calculation errors" by evaluating each
  equation, so the model is not trained on wrong arithmetic that happened to end well. Each equation is read in
  every way its notation allows (percent, digit groups, mixed numbers: `checked_equations`) and is wrong only
  when no reading holds, so no correct GSM8K reference solution is flagged (tested on every train row we have);
  values are computed over exact fractions by our own walker (numbers and + - * / ** only; nothing is evaluated).
- PoT: `program_key(code)` is the key: the program's syntax tree (parsed with `ast`, never run) with comments,
  formatting, docstrings and the names of its own variables taken out, so `total = a + b` and `s = a + b`
  (or the same program with other spacing or comments) are one program. Where it does not parse, its text
  with runs of whitespace collapsed.
"""

from __future__ import annotations

import ast
import builtins
import re
from fractions import Fraction

# (pattern, replacement, why): applied in order to CoT text before equations are read.
NORMALIZE_RULES: tuple[tuple[str, str, str], ...] = (
    (r"(?<=\d),(?=\d{3}(?!\d))", "", "thousands separators: '1,200' and '1200' are one number"),
    (r"\\times|\\cdot|[×✕⋅·∗]", "*", "multiplication written in LaTeX or unicode"),
    (r"\\div|÷", "/", "division written in LaTeX or unicode"),
    (r"[−–]", "-", "unicode minus and en dash used as minus"),
    (r"(?<=\d)\s*[xX]\s*(?=\d)", "*", "'3 x 4': a letter x between two numbers is a times sign"),
    (r"\\\$|\$", "", "currency signs: '$5 + $3 = $8' is 5+3=8"),
    (r"(?<=\d)\s*%", "", "percent signs follow their number; the equation is the same without them"),
)
_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement, _ in NORMALIZE_RULES)

_NUMBER = r"\d+(?:\.\d+)?"
_OPERAND = rf"\(*\s*-?{_NUMBER}\s*\)*"
# An expression is at least two numbers joined by + - * / ^ (parentheses allowed); its value one number.
_EQUATION = re.compile(rf"(?<![\w.])(?P<lhs>{_OPERAND}(?:\s*(?:\*\*|[-+*/^])\s*{_OPERAND})+)\s*=\s*(?P<rhs>-?{_NUMBER})"
                       rf"(?!\.?\d)")
_ANNOTATION = re.compile(r"<<(?P<lhs>[^<>=]+)=(?P<rhs>[^<>]+)>>")
_TRAILING_ZEROS = re.compile(r"(\d+)\.0+(?!\d)")  # '12.0' and '12' are one value


def normalize_math_text(text: str) -> str:
    """`text` with NORMALIZE_RULES applied (the form equations are read from)."""
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text


def _canonical(lhs: str, rhs: str) -> str:
    return _TRAILING_ZEROS.sub(r"\1", re.sub(r"\s+", "", f"{lhs}={rhs}").replace("^", "**"))


def equation_list(text: str) -> tuple[str, ...]:
    """The equations of a chain-of-thought solution, in order, each as `expr=value` without spaces.

    >>> equation_list("She has 3 * 4 = 12 apples, then 12 + 5 = 17.")
    ('3*4=12', '12+5=17')
    >>> equation_list("Natalia sold 48/2 = <<48/2=24>>24 clips in May.")
    ('48/2=24',)
    """
    text = normalize_math_text(text)
    annotations = list(_ANNOTATION.finditer(text))
    matches = annotations or list(_EQUATION.finditer(text))
    return tuple(_canonical(m.group("lhs"), m.group("rhs")) for m in matches)


_MAX_EXPONENT = 64  # 9 ** 9 ** 9 has 370 million digits: an equation with a larger power is not checked


def _value(node: ast.AST) -> Fraction:
    """The exact value of a parsed arithmetic expression; ValueError for anything but numbers and + - * / **."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise ZeroDivisionError("division by zero")
            return left / right
        if right.denominator != 1 or abs(right) > _MAX_EXPONENT or abs(left) > 10**6:
            raise ValueError("a power too large to check")
        return left ** int(right)
    raise ValueError(f"not arithmetic: {type(node).__name__}")


def equation_holds(equation: str) -> bool | None:
    """Whether an `expr=value` equation (as `equation_list` gives it) is right; None when it cannot be checked.

    An integer value must be exact (`10/3=3` is wrong); a decimal value may be the exact one rounded to the digits
    shown (`10/3=3.33` holds, `10/3=3.3` holds, `10/3=3.4` does not). A division by zero is wrong.
    """
    lhs, _, rhs = equation.partition("=")
    try:
        stated = Fraction(rhs)
        value = _value(ast.parse(lhs, mode="eval").body)
    except ZeroDivisionError:
        return False
    except (ValueError, SyntaxError, RecursionError, OverflowError):
        return None
    decimals = len(rhs.partition(".")[2])
    return abs(value - stated) < Fraction(1, 2 * 10**decimals) if decimals else value == stated


# ---------------------------------------------------------------- checking a solution's own arithmetic
# `wrong_equations` reads equations its own way (the dedup key above stays as it was): a solution's text is
# tokenised, and each `=` joins the arithmetic run just before it with the one just after it. An equation is
# wrong only when EVERY reading of its notation fails; one that cannot be read with certainty is not checked.
# Readings (each found in GSM8K's reference solutions, which are all correct):
# - a percent is its fraction or its number (`20% * $50 = $10`, `3 / 6 = 50%`); a percent added to or taken
#   from a plain number (`$50 - 20% = $40`) is not checked;
# - two numbers with only a space between them are one number in digit groups (`650 000/2`, `$12 000`), a
#   mixed number when a proper fraction follows (`1 1/2` is 3/2, `4/5 * 1/4 = 1/5` is not `= 1`), or unrelated
#   (the run starts or ends there); a bracket after a number multiplies (`1/2 (68)`) or starts the run;
# - a letter or a word glued to a number (`5A`, `1.2Y`, `240g/5`), and an operator that joins the run to a
#   word or variable (`X*2 - $40 = $250`, `M + 4 + 2 = 8`), make the equation one with a variable: not checked;
# - `x` or `X` between two numbers is a times sign; LaTeX `\times`, `\cdot`, `\frac{a}{b}` and unicode signs
#   are their ASCII operators; currency signs go.
_CHECK_RULES: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(pattern), replacement) for pattern, replacement in (
    (r"\\times|\\cdot|[×✕⋅·∗]", "*"),
    (r"\\div|÷", "/"),
    (r"[−–]", "-"),
    (r"\\frac\s*\{\s*(\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}", r"(\1/\2)"),
    (r"\\left|\\right|\\[()\[\]]", ""),
    (r"\\\$|\$|[€£¥]|\\%", lambda m: "%" if m.group(0) == "\\%" else ""),
    (r"(?<=\d),(?=\d{3}(?!\d))", ""),
))
_TOKEN = re.compile(r"(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<op>\*\*|[-+*/^])|(?P<pct>%)|(?P<open>\()|(?P<close>\))"
                    r"|(?P<eq>=+)|(?P<word>[A-Za-z]+)|(?P<space>[ \t]+)|(?P<other>.)")
_OPERAND_END = ("num", "pct", "close")
_OPERAND_START = ("num", "open")
_RUN_KINDS = ("num", "op", "pct", "open", "close")
_MAX_RUN_TOKENS = 60
_JOINING_WORDS = {"times", "of", "by", "per", "plus", "minus", "over", "into"}
_MAX_READINGS = 64


class _Tok:
    __slots__ = ("kind", "text", "spaced")

    def __init__(self, kind: str, text: str, spaced: bool) -> None:
        self.kind, self.text, self.spaced = kind, text, spaced  # spaced: whitespace before this token


def _tokens(line: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    spaced = False
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "space":
            spaced = True
            continue
        tokens.append(_Tok(kind, match.group(0), spaced))
        spaced = False
    for index, token in enumerate(tokens):  # `3 x 4`, `3x4`: x between two operands is a times sign
        if token.kind == "word" and token.text in ("x", "X") and 0 < index < len(tokens) - 1 \
                and tokens[index - 1].kind in _OPERAND_END and tokens[index + 1].kind in _OPERAND_START:
            token.kind, token.text = "op", "*"
    return tokens


def _glue_options(run: list[_Tok], index: int) -> list[str]:
    """How the gap between run[index] and run[index + 1] (two operands with no operator) reads: 'join' (digit
    groups), 'mixed' (a whole number and a proper fraction), 'times' (a bracket), 'cut' (unrelated)."""
    left, right = run[index], run[index + 1]
    options = ["cut"]
    if left.kind == "num" and right.kind == "num" and right.spaced:
        if "." not in left.text and len(right.text.split(".")[0]) == 3 and len(left.text) <= 3:
            options.append("join")
        if index + 3 < len(run) and run[index + 2].text == "/" \
                and run[index + 3].kind == "num" and "." not in left.text + right.text + run[index + 3].text \
                and 0 < int(right.text) < int(run[index + 3].text) \
                and not (index + 4 < len(run) and run[index + 4].kind in ("num", "open")):  # 12 1/2 % is 12.5%
            options.append("mixed")
    elif (left.kind in _OPERAND_END and right.kind == "open") or (left.kind == "close" and right.kind == "num"):
        options.append("times")
    return options


def _expression(run: list[_Tok], choices: dict[int, str], percent: str) -> str | None:
    """Python arithmetic for `run` under the given gap readings and percent reading, or None."""
    parts: list[str] = []
    index = 0
    while index < len(run):
        token = run[index]
        if token.kind == "num":
            text = token.text
            choice = choices.get(index)
            if choice == "join":  # 650 000: the next group belongs to this number
                while choices.get(index) == "join":
                    index += 1
                    text += run[index].text
                parts.append(text)
                index += 1
                continue
            if choice == "mixed":
                parts.append(f"({text}+{run[index + 1].text}/{run[index + 3].text})")
                index += 4
                continue
            parts.append(text)
        elif token.kind == "pct":
            parts.append("/100" if percent == "fraction" else "")
        elif token.kind == "op":
            parts.append("**" if token.text in ("^", "**") else token.text)
        else:
            parts.append(token.text)
        if choices.get(index) == "times":
            parts.append("*")
        index += 1
    return "".join(parts)


def _percent_of_quantity(run: list[_Tok]) -> bool:
    """Whether `run` multiplies or divides a percent by a whole amount (`20% * 50`, `$200 * 5%`): by form that is
    a/100 * b, a quantity (issue 25 review: reading `20% * 50 = 1000` as 20*50 let a wrong result through). A
    percent times a fraction or another percent (`50% * 1/2`, `50% * 50%`) stays a percent (both readings)."""
    for index, token in enumerate(run):
        if token.kind != "pct":
            continue
        after = run[index + 1: index + 4]
        if len(after) >= 2 and after[0].kind == "op" and after[0].text in "*/" and after[1].kind == "num" \
                and not (len(after) == 3 and (after[2].kind == "pct" or after[2].text == "/")):
            return True
        before = run[max(0, index - 4): index - 1]  # ..., factor, *, number (the percent's own number)
        if len(before) >= 2 and before[-1].kind == "op" and before[-1].text == "*" and before[-2].kind == "num" \
                and not (len(before) == 3 and before[0].kind == "op" and before[0].text == "/"):
            return True
    return False


def _share_result(run: list[_Tok]) -> bool:
    """Whether `run` is one percent of at most 100 (`50%`)."""
    return len(run) == 2 and run[0].kind == "num" and run[1].kind == "pct" and float(run[0].text) <= 100


def _percent_change(run: list[_Tok]) -> str | None:
    """`100 + 20%` (an increase) and `$40 - 10%` (a discount) are a * (1 +/- b/100) by form (issue 25 review: the
    run was not checked, so `100 + 20% = 150` passed); None for any other run."""
    if len(run) == 4 and [token.kind for token in run] == ["num", "op", "num", "pct"] and run[1].text in "+-":
        return f"{run[0].text}*(1{run[1].text}{run[2].text}/100)"
    return None


def _side_readings(run: list[_Tok], side: str, percent_modes: tuple[str, ...] = ("fraction", "number")
                   ) -> list[tuple[str, bool]] | None:
    """Every reading of an arithmetic run next to an `=` (`side` 'left' or 'right'), or None when the run is
    no arithmetic on its own (it starts or ends with an operator, is too long, or reads too many ways). Each
    reading is (Python arithmetic, whether it computes anything: a lone number does not). `percent_modes`: how
    a percent sign may read (a/100, or a number with a label), decided by form in `_link_holds`."""
    if not run or len(run) > _MAX_RUN_TOKENS:
        return None
    change = _percent_change(run)
    if change is not None:
        return [(change, True)]
    first_unary = run[0].kind == "op" and run[0].text == "-" and len(run) > 1 and not run[1].spaced
    if (run[0].kind == "op" and not first_unary) or run[-1].kind == "op":
        return None  # `X*2 - 40`: the run is joined to a variable or a word by that operator
    has_percent = any(token.kind == "pct" for token in run)
    if has_percent and any(token.kind == "op" and token.text in "+-" for token in run[1:]) \
            and any(token.kind == "num" and (i + 1 >= len(run) or run[i + 1].kind != "pct") for i, token in enumerate(run)):
        return None  # `$50 - 20% = $40` means 20% of 50: not checked
    gaps = [index for index in range(len(run) - 1)
            if run[index].kind in _OPERAND_END and run[index + 1].kind in _OPERAND_START]
    options = {gap: _glue_options(run, gap) for gap in gaps}
    readings: list[tuple[str, bool]] = []
    # a cut drops what lies beyond it (before it on the left of `=`, after it on the right)
    cuts = [None] + gaps
    for cut in cuts:
        if cut is None:
            kept_gaps, piece, offset = gaps, run, 0
        elif side == "left":
            kept_gaps, piece, offset = [g for g in gaps if g > cut], run[cut + 1:], cut + 1
        else:
            kept_gaps, piece, offset = [g for g in gaps if g < cut], run[:cut + 1], 0
        if cut is not None and "mixed" in options[cut]:
            continue  # a whole number and a proper fraction are one mixed number by form: 3 1/2 * 2 is 7, not 1/2*2
        combos: list[dict[int, str]] = [{}]
        for gap in kept_gaps:
            joined = [option for option in options[gap] if option != "cut"]
            if not joined:
                combos = []
                break
            combos = [{**combo, gap - offset: option} for combo in combos for option in joined]
            if len(combos) > _MAX_READINGS:
                return None
        for combo in combos:
            if any(choice == "join" and combo.get(gap + 1) == "mixed" for gap, choice in combo.items()):
                continue  # digit groups then a mixed number: not a form anyone writes
            if any(choice != "mixed" and "mixed" in options[gap + offset] for gap, choice in combo.items()):
                continue  # 1 1/2 + 1 1/2: each is a mixed number by form, never 11/2 or 1*1/2
            computes = any(token.kind in ("op", "pct") for token in piece) or bool(combo)
            for percent in (percent_modes if has_percent else ("number",)):
                expression = _balanced(_expression(piece, combo, percent), side)
                if expression is None:
                    continue
                readings.append((expression, computes))
                atomic = _SIMPLE_FRACTION.sub(r"(\1)", expression)  # 1 1/2 / 1/2: a written fraction is one value
                if atomic != expression:
                    readings.append((atomic, computes))
        if len(readings) > _MAX_READINGS:
            return None
    return readings or None


_SIMPLE_FRACTION = re.compile(r"(?<![\d.)])(\d+(?:\.\d+)?/\d+(?:\.\d+)?)(?![\d.(])")


def _balanced(expression: str | None, side: str) -> str | None:
    """`expression` without the brackets that open (left side) or close (right side) beyond the run."""
    if expression is None:
        return None
    if side == "left":
        while expression.startswith("(") and expression.count("(") > expression.count(")"):
            expression = expression[1:]
    else:
        while expression.endswith(")") and expression.count(")") > expression.count("("):
            expression = expression[:-1]
    return expression if expression.count("(") == expression.count(")") else None


def _exact(expression: str) -> tuple[Fraction, int] | None:
    """(value, decimals shown when the expression is one decimal number, else -1), or None."""
    try:
        value = _value(ast.parse(expression, mode="eval").body)
    except ZeroDivisionError:
        return None
    except (ValueError, SyntaxError, RecursionError, OverflowError, MemoryError):
        return None
    plain = _PLAIN_DECIMAL.fullmatch(expression)
    if plain is None:
        return value, -1
    # 10/3 = 3.33 shows 2 decimals; a percent 33.3% shows 3 of the fraction, 33% shows 2 (1/3 = 33%)
    return value, len(plain.group(1) or "") + (2 if plain.group(2) else 0) if (plain.group(1) or plain.group(2)) else -1


_PLAIN_DECIMAL = re.compile(r"\d+(?:\.(\d+))?(/100)?")


def _same(left: tuple[Fraction, int], right: tuple[Fraction, int]) -> bool:
    (first, first_decimals), (second, second_decimals) = left, right
    decimals = max(first_decimals, second_decimals)
    if decimals > 0:  # a decimal may be the exact value rounded to the digits shown: 10/3 = 3.33
        return abs(first - second) < Fraction(1, 2 * 10**decimals)
    return first == second


def _link_holds(left: list[_Tok], right: list[_Tok], chained: bool = False) -> bool | None:
    """Whether `left = right` holds in some reading; None when it cannot be checked. `chained`: the left side
    follows another `=` (`4 * 12 = 48 = 50`), so two lone numbers are compared too."""
    if not chained and not any(token.kind in ("op", "pct") for side in (left, right) for token in side):
        return None  # `2 hours = 120 minutes`: no arithmetic on either side
    # By form: a percent times a whole amount is a quantity (a/100 * b), and a percent on the other side is then
    # only a label: `25% * 40 = 1000%` is wrong, `25% * 40 = 10` right; elsewhere a percent reads both ways.
    left_quantity, right_quantity = _percent_of_quantity(left), _percent_of_quantity(right)
    both = ("fraction", "number")
    left_modes = ("fraction",) if left_quantity else ("number",) if right_quantity else both
    right_modes = ("fraction",) if right_quantity else ("number",) if left_quantity else both
    # ... except a share that adds up over whole periods and stays within the whole: GSM8K's "10 years * 5% = 50%"
    # (a percent result of at most 100%); past 100% (`25% * 40 = 1000%`) the dropped percent is the slip.
    if left_quantity and not right_quantity and _share_result(right):
        left_modes = both
    if right_quantity and not left_quantity and _share_result(left):
        right_modes = both
    left_readings = _side_readings(left, "left", left_modes)
    right_readings = _side_readings(right, "right", right_modes)
    if left_readings is None or right_readings is None:
        return None
    left_values = [(value, computes) for text, computes in left_readings if (value := _exact(text)) is not None]
    right_values = [(value, computes) for text, computes in right_readings if (value := _exact(text)) is not None]
    pairs = [(first, second) for first, first_computes in left_values for second, second_computes in right_values
             if first_computes or second_computes or chained]  # `1000 = 300` after a cut is no arithmetic
    if not pairs:
        return None
    return any(_same(first, second) for first, second in pairs)


def _written(run: list[_Tok]) -> str:
    """A run as written without spaces, except between two numbers (`1 1/2`, `650 000`)."""
    return "".join((" " if token.spaced and index and token.kind == run[index - 1].kind == "num" else "") + token.text
                   for index, token in enumerate(run))


def _line_links(line: str, annotation: bool = False, limit: int = 200) -> list[tuple[str, bool | None]]:
    """(equation as written, whether it holds) for every `=` of a line. `annotation`: a calculator annotation
    (`<<+30+46=76>>`, `<<14=14>>`), where a leading sign is a sign and a lone number is an asserted value."""
    if annotation:
        line = line.lstrip(" +")
    tokens = _tokens(line)
    found = []
    visited = 0
    for index, token in enumerate(tokens):
        if token.kind != "eq" or token.text != "=":
            continue
        visited += 1
        if visited > limit:
            break  # at most `limit` signs per line are read (MAX_CHECKED_EQUATIONS)
        start = index
        while start > 0 and tokens[start - 1].kind in _RUN_KINDS:
            start -= 1
        end = index + 1
        while end < len(tokens) and tokens[end].kind in _RUN_KINDS:
            end += 1
        left, right = tokens[start:index], tokens[index + 1:end]
        if not left or not right:
            continue
        if start >= 3 and tokens[start - 1].kind == "word" and tokens[start - 1].text.lower() == "of" \
                and tokens[start - 2].kind == "pct" and tokens[start - 3].kind == "num" and left[0].kind == "num":
            # `10% of 200 = 25`: a percent of an amount is a/100 * b (issue 25 review)
            start -= 3
            left = tokens[start:start + 2] + [_Tok("op", "*", True)] + left
        elif start >= 2 and left[0].kind == "op" and left[0].text in "*/" and tokens[start - 1].kind == "word" \
                and len(tokens[start - 1].text) >= 3 and tokens[start - 1].text.lower() not in _JOINING_WORDS \
                and tokens[start - 2].kind == "num":
            # `2 hours * 60 = 100 minutes`: a unit word between a number and its operator (issue 25 review)
            before = start - 1
            while before > 0 and tokens[before - 1].kind in _RUN_KINDS:
                before -= 1
            if tokens[before].kind != "op":
                left = tokens[before:start - 1] + left
                start = before
        if start > 0 and left[0].kind == "op" and tokens[start - 1].kind == "word" and not left[0].spaced:
            continue  # `X-3 = 5`: a variable before the sign
        if start > 0 and tokens[start - 1].kind == "word" and (len(tokens[start - 1].text) == 1
                                                                or tokens[start - 1].text.lower() in _JOINING_WORDS):
            continue  # `60 students x 2/3 = 40`, `A 5 = ...`, `half of 2 * 3`: the run belongs to what is before
        if start > 0 and not tokens[start].spaced and tokens[start - 1].kind == "word":
            continue  # `x2 = 4`: a name glued to the number
        if end < len(tokens) and not tokens[end].spaced and tokens[end].kind == "word":
            continue  # `= 5A`, `= 1.2Y`, `= 240g/5`: a variable or unit glued to the number
        written = _written(left) + "=" + _written(right)
        chained = annotation or (start > 0 and tokens[start - 1].kind == "eq" and tokens[start - 1].text == "=")
        found.append((written, _link_holds(left, right, chained)))
    return found


MAX_CHECKED_CHARS = 16 * 1024  # an RFT sample is far shorter; the caps keep a runaway one's check bounded
# A GSM8K reference solution has about 20 equations; 64 keeps the check of a runaway sample far under 50 ms.
MAX_CHECKED_EQUATIONS = 64


def checked_equations(text: str) -> list[tuple[str, bool | None]]:
    """(equation, holds) for the equations of a CoT solution: its calculator annotations `<<48/2=24>>` when it
    has any (GSM8K), else every `=` in its text (the readings above); `holds` None: not checked."""
    text = text[:MAX_CHECKED_CHARS]
    annotations = list(_ANNOTATION.finditer(text))
    if annotations:
        lines = [f"{match.group('lhs')}={match.group('rhs')}" for match in annotations]
    else:
        lines = text.split("\n")
    found: list[tuple[str, bool | None]] = []
    if not annotations:
        for pattern, replacement in _CHECK_RULES:
            text = pattern.sub(replacement, text)
        lines = text.split("\n")
    for line in lines:
        if "=" not in line:
            continue
        if annotations:
            for pattern, replacement in _CHECK_RULES:
                line = pattern.sub(replacement, line)
        found += _line_links(line, annotation=bool(annotations), limit=MAX_CHECKED_EQUATIONS - len(found))
        if len(found) >= MAX_CHECKED_EQUATIONS:
            break  # a solution holds a few dozen; the rest of a runaway completion is not checked
    return found[:MAX_CHECKED_EQUATIONS]


def wrong_equations(text: str) -> list[str]:
    """The equations of a CoT solution whose arithmetic is wrong in every reading of its notation, as written
    without spaces (`29*8=224`); those that cannot be checked are not listed (see `checked_equations`)."""
    return [equation for equation, holds in checked_equations(text) if holds is False]


_KEEP_NAMES = frozenset(dir(builtins))


class _Canonical(ast.NodeTransformer):
    """Renames the program's own names to v0, v1, ... in the order they first appear; drops docstrings.

    Builtins (print, range, ...) and imported names (math, sqrt) keep theirs: they are what the program calls,
    not what it chose to call its values.
    """

    def __init__(self, imported: set[str]) -> None:
        self.names: dict[str, str] = {}
        self.imported = imported

    def _name(self, name: str) -> str:
        if name in _KEEP_NAMES or name in self.imported:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._name(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._name(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self._name(node.name)
        node.returns = None
        return self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> ast.Global:
        node.names = [self._name(name) for name in node.names]
        return node

    visit_Nonlocal = visit_Global  # type: ignore[assignment]
    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # a docstring or a bare string: it does not change what the program computes
        return self.generic_visit(node)


def program_key(code: str) -> str:
    """A program in canonical form: parsed (never run), without comments, docstrings, formatting or its own
    variable names; the whitespace-collapsed text when it does not parse.

    >>> program_key("a = 3\\nb = 4  # more\\nprint(a + b)") == program_key("x=3\\ny=4\\nprint(x+y)")
    True
    """
    try:
        tree = ast.parse(code)
        imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        tree = _Canonical(imported).visit(tree)
        return ast.unparse(ast.fix_missing_locations(tree))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte in the source
        return " ".join(code.split())


def solution_key(style: str, completion: str, program: str | None = None) -> tuple[str, ...] | str:
    """The de-duplication key of a correct solution: its equation list (CoT) or its canonical program (PoT;
    `program` is the one the sandbox ran, else the completion itself)."""
    if style == "cot":
        return equation_list(completion)
    if style == "pot":
        return program_key(program if program is not None else completion)
    raise ValueError(f"style: expected 'cot' or 'pot', got {style!r}")
