"""Small text helpers for LaTeX answers: brace matching, unwrapping commands, top-level splitting,
and the whole-answer rewrites that need code rather than one regex (escaping, repeating decimals,
lists of assignments, plus-minus). normalize.py lists each of these as a rule with its reason.
"""

from __future__ import annotations

import re
from fractions import Fraction


def find_braced(text: str, open_index: int) -> int | None:
    """Index of the `}` that closes the `{` at `open_index`, or None when the braces never balance."""
    depth = 0
    for index in range(open_index, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def unwrap_command(text: str, command: str) -> str:
    r"""Replace every `\command{X}` (nested braces allowed) by `X`; an unbalanced one is left as is."""
    if "\\" + command not in text:
        return text
    pattern = re.compile(r"\\" + command + r"(?![a-zA-Z])\s*\{")
    start = 0
    while True:
        match = pattern.search(text, start)
        if not match:
            return text
        close = find_braced(text, match.end() - 1)
        if close is None:
            return text
        text = text[: match.start()] + text[match.end(): close] + text[close + 1:]
        start = match.start()


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` where no bracket is open (any of ( [ { opens, any of ) ] } closes).

    An interval `[1,2)` closes with another kind, so brackets are counted, not paired by kind.
    """
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, index):
            parts.append(text[start:index])
            index += len(separator)
            start = index
            continue
        index += 1
    parts.append(text[start:])
    return parts


# ---------------------------------------------------------------- escaping
_BACKSLASH_RUN = re.compile(r"\\+")


def undo_double_escaping(text: str) -> str:
    r"""`\\frac{1}{2}` (a JSON dump printed without decoding) is `\frac{1}{2}`.

    Only when EVERY run of backslashes has even length and one of them stands before a letter (a
    command), an escaped `{ } % $` or a spacing command `\\! \\, \\; \\:`: a genuine answer always has an
    odd run before those, and a matrix row break `\\` before a space or digit alone is left as it is.
    """
    runs = _BACKSLASH_RUN.findall(text)
    if not runs or any(len(run) % 2 for run in runs) or not re.search(r"\\\\[a-zA-Z{}%$!,;:]", text):
        # escaped twice in part of the string only (`\\frac{1}{2} + \sqrt{3}`): a double backslash before a
        # command name that is no row-break start (a row break is followed by a space, a digit or a sign)
        return _PARTLY_ESCAPED.sub(r"\\", text) if "\\\\" in text else text
    return _BACKSLASH_RUN.sub(lambda match: "\\" * (len(match.group(0)) // 2), text)


_PARTLY_ESCAPED = re.compile(r"(?<!\\)\\\\(?=(?:frac|dfrac|tfrac|cfrac|sqrt|pi|cdot|times|div|text|textbf|mathrm|"
                             r"mathbf|mathbb|left|right|infty|le|ge|leq|geq|ne|neq|pm|mp|circ|boxed|ln|log|sin|"
                             r"cos|tan|cot|sec|csc|alpha|beta|gamma|theta|lambda|cup|cap|emptyset|varnothing|"
                             r"dots|ldots|overline|binom|dfrac|begin|end|%)(?![a-zA-Z]))")


# ---------------------------------------------------------------- repeating decimals
REPEATING_DECIMAL = re.compile(
    r"(?<![\d.])(\d*)\.(\d*)\s*\\(?:overline|bar|dot)\s*(?:\{\s*(\d+)\s*\}|(\d))")


# 0.(6) and 0.1(6): the repeating block in brackets (common outside the US)
REPEATING_IN_BRACKETS = re.compile(r"(?<![\d.])(\d*)\.(\d*)\((\d+)\)")
# 0.666... / 0.1666\ldots: the digits repeat until the dots
REPEATING_WITH_DOTS = re.compile(r"(?<![\d.])(\d*)\.(\d+)\s*(?:\.{3}|\\[lc]?dots(?![a-zA-Z])|\u2026)")


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _recurring(whole: str, plain: str, repeating: str) -> Fraction:
    """(WAR - WA) / (10^len(A) * (10^len(R) - 1)): the textbook value of W.A(R repeating)."""
    whole = whole or "0"
    return Fraction(int(whole + plain + repeating) - int(whole + plain), 10 ** len(plain) * (10 ** len(repeating) - 1))


def repeating_in_brackets_to_fraction(match: re.Match) -> str:
    """`0.1(6)` -> `\\frac{1}{6}`."""
    return _fraction_text(_recurring(match.group(1), match.group(2), match.group(3)))


def repeating_with_dots_to_fraction(match: re.Match) -> str:
    """`0.1666...` -> `\\frac{1}{6}`: the shortest block that ends the digits at least twice repeats
    (`0.142857142857...` is 1/7); digits without a repeated block just lose the dots (`0.5...` is 0.5)."""
    whole, digits = match.group(1), match.group(2)
    for period in range(1, len(digits) // 2 + 1):
        block = digits[-period:]
        if digits[-2 * period:-period] == block:
            plain = digits
            while plain.endswith(block):
                plain = plain[:-period]
            return _fraction_text(_recurring(whole, plain, block))
    return f"{whole}.{digits}"


def repeating_to_fraction(match: re.Match) -> str:
    r"""`0.1\overline{6}` -> `\frac{1}{6}` (`\bar`, `\dot` alike): whole part W, plain digits A,
    repeating digits R give (WAR - WA) / (10^len(A) * (10^len(R) - 1))."""
    return _fraction_text(_recurring(match.group(1), match.group(2), match.group(3) or match.group(4)))


# ---------------------------------------------------------------- lists of assignments
_ASSIGNMENT = re.compile(r"^\s*([a-zA-Z]|\\[a-zA-Z]+)(_\{?\w+\}?)?\s*=\s*([^=]+)$")


def name_order(name: str) -> tuple:
    """Sort key of a variable name: by letters, then subscript numbers as numbers (x_2 before x_10)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name) if part)


def strip_assignments(text: str) -> str:
    """`x=3, x=-5` is the list 3, -5 (one variable's solutions; x_1=.., x_2=.. count as one variable);
    `x=1, y=2` (different variables) is the ordered pair (1, 2), its values in the order of the variables' NAMES
    (`y=1, x=2` is (2, 1): a value is paired with its variable, not with its place; issue 25 review).
    Anything else is left as it is."""
    items = split_top_level(text, ",")
    if len(items) < 2:
        return text
    matches = [_ASSIGNMENT.match(item) for item in items]
    if not all(matches):
        return text
    names = [match.group(1) for match in matches]
    values = [match.group(3).strip() for match in matches]
    if len(set(names)) == 1:
        return ", ".join(values)
    full_names = [match.group(1) + (match.group(2) or "") for match in matches]
    if len(set(full_names)) == len(full_names):
        ordered = [value for _, value in sorted(zip(full_names, values), key=lambda pair: name_order(pair[0]))]
        return "(" + ", ".join(ordered) + ")"
    return text


# ---------------------------------------------------------------- plus-minus
_PLUS_MINUS = re.compile(r"\\(pm|mp)(?![a-zA-Z])\s*")
_MAX_PLUS_MINUS = 3  # more than three in one item is not an answer we can expand sensibly


def _with_sign(item: str, sign: str) -> str:
    """`item` with every \\pm written as `sign` (and \\mp as the other sign)."""
    other = "-" if sign == "+" else "+"
    text = _PLUS_MINUS.sub(lambda match: sign if match.group(1) == "pm" else other, item)
    text = re.sub(r"(^|[({\[,=])\+", r"\1", text)  # a leading +: +4 is 4, \frac{+1}{2} is \frac{1}{2}
    return re.sub(r"(^|[({\[,=])--", r"\1", text)  # -(-4) written as --4 by the rewrite


def expand_plus_minus(text: str) -> str:
    r"""`2\pm\sqrt{3}` is the list `2+\sqrt{3}, 2-\sqrt{3}`; `\pm 4` is `4, -4`.

    All \pm (and \mp, the opposite sign) in one item take the same sign together, the convention of
    the quadratic formula. Inside a set `\{...\}` the items are expanded and the set kept; a tuple
    or interval holding \pm is left as it is (no convention says what it would mean).
    """
    if "\\pm" not in text and "\\mp" not in text:
        return text
    if text.startswith("\\{") and text.endswith("\\}"):
        return "\\{" + expand_plus_minus(text[2:-2]) + "\\}"
    items = split_top_level(text, ",")
    if text[:1] in "([" and len(items) == 1:
        return text
    expanded = []
    for item in items:
        count = len(_PLUS_MINUS.findall(item))
        if count == 0 or count > _MAX_PLUS_MINUS:
            expanded.append(item)
            continue
        expanded += [_with_sign(item, "+"), _with_sign(item, "-")]
    return ",".join(expanded)
