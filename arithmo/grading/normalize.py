"""Canonical text form of a math answer, by ordered tables of (pattern, replacement, reason) rules.

`normalize_answer` only rewrites notation; it never decides equality (equal.py does). Every rule is a
row in one of the tables below, applied in order, so a reader can see what is rewritten and why. The
rule set follows the notation found in MATH solutions (Hendrycks et al. 2021, arXiv:2103.03874:
`\\dfrac`, `\\frac12`, `1,\\!000`, `^\\circ`, `\\text{ cm}`) and in GSM8K / MetaMath answer lines.

Decisions (documented here because the comparison depends on them):
- A whole answer of the form `1,000` or `1,\\!000,\\!000` (a leading group of 1-3 digits, then groups of
  exactly three) is ONE number with thousands separators. Inside brackets a comma always separates
  items: `(1,000)` stays the pair (1, 000), so it is not 1000. `0,100` is not a thousands number (a
  leading group never starts with 0), so it stays the list 0, 100.
- Units are removed only when they trail a number or expression (`85\\text{ feet}` -> `85`); a whole
  answer that is text (`\\text{odd}`, `\\text{Friday}`) keeps its words.
- `x = 5` (one variable, optionally subscripted, or a tuple of variables) loses its left side; an
  equation with an expression on the left (`x + y = 5`) is kept whole.
- Mixed numbers and digit groups are decided by form (issue 25): a whole number followed by a PROPER
  fraction is their sum (`1 1/2` and `1\\frac{1}{2}` are 3/2, `1 \\frac{1}{2} + 3` is 4.5); spaces join digits
  only into groups of three after a first group of one to three (`12 000` is 12000); any other space between
  two digits is kept, so `1 2` is never 12 (and no comparison reads it as a number).
- Degrees inside a trig function are radians of the value (`\\sin 30^\\circ` is `\\sin(\\frac{30\\pi}{180})`);
  elsewhere a degree mark is a unit and goes. Units glued to a number are removed only when they are known
  abbreviations (`10cm`; `10x` keeps its variable); Chinese units after a number go (`12元`).
- Units come from ONE table (UNITS) for glued, spaced and `\\text{}` units (issue 25 review). Words after a number
  go only when `is_unit_phrase` accepts them: known units, Chinese, or counted nouns ("18 apples"); magnitude
  words scale the number (`5 thousand` is 5000, `5 dozen` 60); words that change the value or the claim
  (`2 thirds`, `3 squared`, `5 below zero`, `5 or more`, `5 times`) and two letters that are no known unit
  (`3 ab`, a product of variables) are kept, so those answers never equal the bare number.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Callable

from arithmo.grading.latex_text import (  # noqa: F401  (find_braced, unwrap_command: public here since v1)
    REPEATING_DECIMAL,
    REPEATING_IN_BRACKETS,
    REPEATING_WITH_DOTS,
    expand_plus_minus,
    find_braced,
    repeating_in_brackets_to_fraction,
    repeating_to_fraction,
    repeating_with_dots_to_fraction,
    split_top_level,
    strip_assignments,
    undo_double_escaping,
    unwrap_command,
)

Replacement = str | Callable[[re.Match], str]
Rule = tuple[re.Pattern, Replacement, str]

# Words after a number are units, not part of the answer (GSM8K and MetaMath answer lines: "18 dollars",
# "5 cm^2"): letters only, two or more (a single letter may be a variable: "3 x"), and not these,
# which are math.
_RESERVED_WORDS = {"pi", "sqrt", "and", "or", "sin", "cos", "tan", "log", "ln", "exp", "i", "e", "mod"}

# ONE table of unit words, for units glued to a number (10cm) and spaced ones (10 cm, 10\text{ cm}); each maps
# to its canonical name, so equal.py can tell 10 km from 10 cm when both sides carry a unit (issue 25 review).
# Single letters (m, g, L, h, s) are not here: a letter may be a variable (equal.py reads them where the other
# side is a bare number).
UNITS: dict[str, str] = {}
for _canonical, _spellings in {
    "mm": "mm millimeter millimeters millimetre millimetres", "cm": "cm centimeter centimeters centimetre centimetres",
    "m": "meter meters metre metres", "km": "km kilometer kilometers kilometre kilometres",
    "in": "inch inches", "ft": "ft foot feet", "yd": "yd yard yards", "mi": "mi mile miles",
    "mg": "mg milligram milligrams", "g": "gram grams gm", "kg": "kg kilogram kilograms kilo kilos",
    "lb": "lb lbs pound pounds", "oz": "oz ounce ounces", "t": "ton tons tonne tonnes",
    "ml": "ml mL milliliter milliliters millilitre millilitres", "l": "liter liters litre litres",
    "gal": "gal gallon gallons", "qt": "qt quart quarts", "pt": "pint pints", "cup": "cup cups",
    "tbsp": "tbsp tablespoon tablespoons", "tsp": "tsp teaspoon teaspoons",
    "s": "sec secs second seconds", "min": "min mins minute minutes", "h": "hr hrs hour hours",
    "day": "day days", "week": "week weeks", "month": "month months", "year": "yr yrs year years",
    "mph": "mph", "kph": "kph kmh", "dollar": "dollar dollars usd", "cent": "cent cents", "euro": "euro euros",
    "yuan": "yuan rmb", "degree": "degree degrees deg", "unit": "unit units", "square": "square sq",
    "cubic": "cubic cu", "radian": "radian radians rad",
}.items():
    for _spelling in _spellings.split():
        UNITS[_spelling] = _canonical
# Words after a number that change its value or say it is not the answer: never dropped as units (issue 25
# review: "2 thirds", "3 squared", "5 below zero", "5 or more", "5 times" were all read as the bare number).
NOT_UNIT_WORDS = {"times", "squared", "cubed", "more", "less", "fewer", "below", "above", "under", "over", "or",
                  "and", "plus", "minus", "than", "least", "most", "half", "halves", "third", "thirds", "quarter",
                  "quarters", "not", "per", "zero", "hundred", "hundreds", "thousand", "thousands", "million",
                  "millions", "billion", "billions", "trillion", "trillions", "dozen", "dozens", "score", "off",
                  "percent", "lakh"}
_FRACTION_WORD = re.compile(r"^(?:[a-z]+-)?[a-z]+(?:th|ths)$")  # fourths, fifths, tenths, hundredths, twenty-fifths
# Magnitude words scale the number before them (5 thousand is 5000, 1.2 million is 1200000, 5 dozen is 60).
MAGNITUDES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12, "dozen": 12}


# One-letter SI symbols: units only inside a text command (5\\text{ m}); bare, a letter may be a variable.
_LETTER_SYMBOLS = set("mgLlhstKNJWVACF")


def is_unit_phrase(words: str, wrapped: bool = False) -> bool:
    """Whether `words` (what follows a number: `cm`, `square feet`, `km/h`, `apples`, `元`) only names a unit or
    the things counted, so it can go. A word is a unit when it is in UNITS (any case for abbreviations of two
    letters or more), Chinese, `per`/`of` between units, or a counted noun (GSM8K: "18 apples"): lowercase, three
    letters or more, not in NOT_UNIT_WORDS and not a fraction word (thirds, fifths). Two letters that are no
    known unit (`ab`, `xy`) are variables, not units. `wrapped`: the words were in a text command
    (`5\\text{ m}`), where a one-letter SI symbol is a unit too."""
    parts = [part for part in re.split(r"[\s/.]+|\^\s*\{?-?\d\}?", words.strip()) if part]
    if not parts or len(parts) > 6:
        return False
    for index, part in enumerate(parts):
        lower = part.lower()
        if part in UNITS or (len(part) > 1 and lower in UNITS and part not in NOT_UNIT_WORDS) or (
                wrapped and part in _LETTER_SYMBOLS):
            continue
        if re.fullmatch("[\u4e00-\u9fff]+", part):
            continue
        if (lower == "per" and index < len(parts) - 1) or (lower in ("per", "of", "a") and 0 < index < len(parts) - 1):
            continue
        if (re.fullmatch("[a-z]{3,}'?s?", part) and lower not in NOT_UNIT_WORDS and lower not in _RESERVED_WORDS
                and not (_FRACTION_WORD.match(lower) and lower not in UNITS)):
            continue
        return False
    return True


def _strip_wrappers(text: str) -> str:
    """Remove what encloses the whole answer: `$..$`, `\\(..\\)`, `\\[..\\]`, `\\boxed{..}`, `{..}`,
    and Markdown bold `**..**` (chat models bold their answer: "The final answer is **42**")."""
    while True:
        before = text
        text = text.strip()
        for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
            if len(text) > len(opener) + len(closer) and text.startswith(opener) and text.endswith(closer):
                text = text[len(opener): -len(closer)].strip()
        for command in ("boxed", "fbox"):
            prefix = "\\" + command
            if text.startswith(prefix):
                rest = text[len(prefix):].lstrip()
                if rest.startswith("{") and find_braced(rest, 0) == len(rest) - 1:
                    text = rest[1:-1]
        if text.startswith("{") and find_braced(text, 0) == len(text) - 1:
            text = text[1:-1]
        if text == before:
            return text


# 0. Escaping: text that passed through JSON or a prompt template twice.
ESCAPE_RULES: list[Rule] = [
    (re.compile(r"^.*$", re.DOTALL), lambda m: undo_double_escaping(m.group(0)),
     r"text escaped twice (a JSON dump): \\frac{1}{2} is \frac{1}{2} (latex_text.undo_double_escaping)"),
    (re.compile(r"\\+\s*$"), "", r"a stray backslash (or row break) at the end: 185\ is 185"),
]

# Full-width ASCII forms (U+FF01-FF5E) are ASCII shifted by 0xFEE0; Chinese punctuation has its own code points.
_WIDE_PUNCTUATION = {"\u3000": " ", "\u3002": ".", "\u3001": ",", "\u00a0": " ", "\u2009": " ", "\u202f": " "}


def _fold_width(match: re.Match) -> str:
    char = match.group(0)
    return _WIDE_PUNCTUATION.get(char) or chr(ord(char) - 0xFEE0)


_WIDE = re.compile("[\uff01-\uff5e\u3000\u3002\u3001\u00a0\u2009\u202f]")


_WIDE_TABLE = {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
_WIDE_TABLE.update({ord(char): ascii_form for char, ascii_form in _WIDE_PUNCTUATION.items()})


def fold_width(text: str) -> str:
    """`text` with full-width forms and Chinese punctuation as ASCII (`\uff11\uff18\u3002` -> `18.`); linear."""
    return text.translate(_WIDE_TABLE) if _WIDE.search(text) else text


_TRIG = r"\\(?:sin|cos|tan|sec|csc|cot)(?![a-zA-Z])"
_DEGREE = r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\u00b0|\\degree(?![a-zA-Z]))"
_DEGREE_ARGUMENT = re.compile(r"(" + _TRIG + r")(?:\s*\^\s*\{?\s*(?P<power>\d)\s*\}?)?\s*(?:\(\s*(-?\d+(?:\.\d+)?)" + _DEGREE + r"\s*\)"
                              r"|\{\s*(-?\d+(?:\.\d+)?)" + _DEGREE + r"\s*\}|(-?\d+(?:\.\d+)?)" + _DEGREE + ")")


def _degrees_to_radians(match: re.Match) -> str:
    degrees = match.group(3) or match.group(4) or match.group(5)
    value = f"{match.group(1)}(\\frac{{{degrees}\\pi}}{{180}})"
    # \sin^2 30^\circ is (\sin 30^\circ)^2 (issue 25 review)
    return f"({value})^{{{match.group('power')}}}" if match.group("power") else value


# 1. Characters and spacing commands: the same symbol typed in different ways.
CHARACTER_RULES: list[Rule] = [
    (re.compile("[\uff01-\uff5e\u3000\u3002\u3001\u00a0\u2009\u202f]"), _fold_width,
     "full-width forms (\uff12\uff15, \uff05, \uff0c, \uff08) and Chinese punctuation (\u3002 \u3001) are their ASCII "
     "characters; a no-break or thin space is a space (MGSM zh, CMATH answers)"),
    (re.compile(r"\\mathbb\s*\{\s*R\s*\}|\\mathbb\s+R(?![a-zA-Z])|\\(?:R|Reals|reals)(?![a-zA-Z])"
                r"|^\s*(?:\\text\s*\{\s*)?all\s+real\s+numbers\s*\}?\s*$"),
     r"(-\\infty,\\infty)", r"the real line: \mathbb{R} is (-\infty,\infty)"),
    (re.compile("[\u2212\u2012\u2013\u2014\ufe63\uff0d]"), "-", "unicode minus and dashes are a minus sign"),
    (re.compile("\u00d7"), r"\\times ", "unicode multiplication sign"),
    (re.compile("\u00f7"), r"\\div ", "unicode division sign"),
    (re.compile("\u03c0"), r"\\pi ", "unicode pi"),
    (re.compile("\u221e"), r"\\infty ", "unicode infinity"),
    (re.compile("\u221a"), r"\\sqrt", "unicode square root"),
    (re.compile("\u2264"), r"\\le ", "unicode less-or-equal"),
    (re.compile("\u2265"), r"\\ge ", "unicode greater-or-equal"),
    (re.compile("\u2260"), r"\\ne ", "unicode not-equal"),
    (re.compile("\u00b1"), r"\\pm ", "unicode plus-minus"),
    (re.compile("\u2213"), r"\\mp ", "unicode minus-plus"),
    (re.compile("\u00b2"), "^2", "unicode superscript two: cm\u00b2 is cm^2"),
    (re.compile("\u00b3"), "^3", "unicode superscript three"),
    (re.compile(r"(?<!\\)\\!"), "", r"negative thin space: 1,\!000 is 1,000"),
    (re.compile(r"\{,\}"), ",", "{,} is a comma typeset without space: 14{,}916"),
    (re.compile(r"(?<!\\)\\(?:[,;:> ]|(?:quad|qquad|enspace|thinspace|medspace|thickspace)(?![a-zA-Z]))"), " ",
     "LaTeX spacing commands are spaces, also before a letter (\\pi\\,e is \\pi e; not the row break \\\\)"),
    (re.compile(r"~"), " ", "a tie is a space"),
    (re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*"), "",
     r"\left( and \right) size delimiters; the delimiter itself stays"),
    (re.compile(r"\\(?:displaystyle|textstyle)(?![a-zA-Z])"), "", "display-size switches"),
    (re.compile(r"\\(?:bf|it|rm|sf|tt|bfseries|itshape|rmfamily|mdseries|upshape)(?![a-zA-Z])\s*"), "",
     r"old font switches: {\bf 7} is 7"),
    (re.compile(r"<="), r"\\le ", "a program's <= is \\le"),
    (re.compile(r">="), r"\\ge ", "a program's >= is \\ge"),
    (re.compile(r"!="), r"\\ne ", "a program's != is \\ne"),
    (re.compile(r"\\(?:textcolor|color|colorbox)\s*\{[^{}]*\}"), "",
     r"a colour (\textcolor{red}{7}, {\color{blue} 7}) is not part of the value"),
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac",
     r"\dfrac, \tfrac and \cfrac (continued-fraction layout) are \frac at another size"),
    (re.compile(r"\\(?:leq|leqslant|leqq)(?![a-zA-Z])"), r"\\le", r"\leq is \le"),
    (re.compile(r"\\(?:geq|geqslant|geqq)(?![a-zA-Z])"), r"\\ge", r"\geq is \ge"),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<", r"\lt is <"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">", r"\gt is >"),
    (re.compile(r"\\neq(?![a-zA-Z])"), r"\\ne", r"\neq is \ne"),
    (re.compile(r"\\(?:varnothing|emptyset)(?![a-zA-Z])|\\\{\s*\\\}"), r"\\emptyset", "the empty set"),
    (re.compile(r"\\lbrace(?![a-zA-Z])"), r"\\{", r"\lbrace is \{"),
    (re.compile(r"\\rbrace(?![a-zA-Z])"), r"\\}", r"\rbrace is \}"),
    (re.compile(r"\\bmatrix|\\begin\{[bBvV]?matrix\}"), r"\\begin{pmatrix}", "one matrix environment name"),
    (re.compile(r"\\end\{[bBvV]?matrix\}"), r"\\end{pmatrix}", "one matrix environment name"),
]

# 2. Money, degrees and percent marks. Percent is kept as a trailing `%` because equal.py compares
# `50\%` with `50` explicitly (and never with 0.5).
MARK_RULES: list[Rule] = [
    (_DEGREE_ARGUMENT, _degrees_to_radians,
     r"degrees inside a trig function are a value, not a unit: \sin 30^\circ is \sin(\frac{30\pi}{180}) "
     "(applied before degree marks go, so \\sin 30^\\circ is not \\sin 30 in radians)"),
    (re.compile(r"\\\$|\$"), "", r"dollar signs: \$115,000 is 115,000"),
    (re.compile(r"\\(?:textdollar|dollar|euro|pounds|textsterling|texteuro|yen|textyen)(?![a-zA-Z])"), "",
     "currency commands"),
    (re.compile("[\u20ac\u00a3\u00a5\u20b9\u00a2]"), "", "currency signs (euro, pound, yen, rupee, cent)"),
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|\u00b0|\\degree(?![a-zA-Z])"), "",
     r"degree marks: 144^\circ is 144 (MATH geometry answers)"),
    (re.compile(r"\\%|\\percent(?![a-zA-Z])|\s*\bpercent\b"), "%", "one percent mark"),
    (re.compile(r"\\text\{\s*%\s*\}"), "%", r"\text{\%} after unescaping"),
]

# 3. Text wrappers: trailing units go (applied until none is left: 5\text{ square}\text{ feet}), words
# elsewhere are unwrapped. A unit is letters with spaces, points, slashes and an exponent (km/h, sq. ft.,
# m/s^2), in any text command, before the end or a comma (3\text{ cm}, 4\text{ cm}); `i` and `e` in
# \mathrm are the imaginary unit and Euler's number, and `and`/`or` join answers: none is a unit.
_TEXT_COMMAND = r"(?:\\mu\s*)?\\(?:text|textrm|textnormal|textup|textit|mbox|hbox|mathrm)\s*"  # \mu: 5\mu\text{m}
_UNIT_BODY = (r"\{\s*(?!(?:i|e|and|or)\s*\})[a-zA-Z\u4e00-\u9fff][a-zA-Z\u4e00-\u9fff .'/]*(?:\^\s*\{?-?\d\}?)?"
              r"\s*\}")  # CJK: CMATH's 12\text{元}
_UNIT_POWER = r"(?:\s*\^\s*\{?\s*-?[1-3]\s*\}?)?"
_UNIT = _TEXT_COMMAND + _UNIT_BODY + _UNIT_POWER
_UNIT_AT_END = re.compile(r"(?:\\mu\s*)?" + _UNIT + r"\s*$")
_MAX_UNIT_CHARS = 120
_UNIT_COMMANDS = ("\\text", "\\mbox", "\\hbox", "\\mathrm")  # \textrm, \textnormal, \textup, \textit start with \text


def _strip_trailing_units(text: str) -> str:
    """Each top-level item of `text` without its trailing units (`85\\text{ feet}`, `12\\text{ km}/\\text{h}`),
    when something is left before them. Works from the end of each item, one unit at a time: linear in the
    length (a regex retried at every position was quadratic on `5` + 8,000 `\\text{a}`)."""
    items = split_top_level(text, ",")
    for number, item in enumerate(items):
        end = len(item)  # the item is item[:end]; slicing once at the end keeps this linear
        while True:
            window = max(0, end - _MAX_UNIT_CHARS)  # a unit is short: look at the item's tail only
            start = max(item.rfind(command, window, end) for command in _UNIT_COMMANDS)
            if start <= 0:
                break
            mu = item.rfind("\\mu", max(0, start - 8), start)
            if mu != -1 and not item[mu + 3:start].strip():
                start = mu
            if not _UNIT_AT_END.match(item[start:end]):
                break
            body_open = item.find("{", start, end)
            body_close = find_braced(item, body_open) if body_open != -1 else None
            if body_close is None or not is_unit_phrase(item[body_open + 1:body_close], wrapped=True):
                break  # \text{ thousand}, \text{ or more}, \mathrm{ab}: not a unit (is_unit_phrase)
            head = start
            while head > 0 and item[head - 1].isspace():
                head -= 1
            if head > 0 and item[head - 1] == "/" and _UNIT_AT_END.search(item[max(0, head - 1 - _MAX_UNIT_CHARS):head - 1]):
                head -= 1  # km/h written as \text{km}/\text{h}: the first half goes next
                while head > 0 and item[head - 1].isspace():
                    head -= 1
            if head == 0 or item[head - 1] == "/":
                break
            end = head
        items[number] = item[:end]
    return ",".join(items)


TEXT_RULES: list[Rule] = [
    (re.compile(r"^.*$", re.DOTALL), lambda m: _strip_trailing_units(m.group(0)),
     r"a trailing unit: 85\text{ feet}, 440\text{ cm}^2, 12\text{ km/h}, 5\mbox{ m}/\mbox{s}, 12\text{元} "
     "(each item of a list: 3\\text{ cm}, 4\\text{ cm})"),
]
_UNWRAP_COMMANDS = ("text", "textrm", "textnormal", "textup", "textmd", "textbf", "textit", "textsf", "texttt",
                    "emph", "mbox", "hbox", "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mathnormal",
                    "boldsymbol", "bm", "underline", "operatorname", "boxed", "fbox", "framebox")

# 4. Shorthand LaTeX expanded into its braced form.
SHORTHAND_RULES: list[Rule] = [
    (REPEATING_DECIMAL, repeating_to_fraction,
     r"a repeating decimal is a fraction: 0.\overline{6} is \frac{2}{3}, 0.1\overline{6} is \frac{1}{6}"),
    (REPEATING_IN_BRACKETS, repeating_in_brackets_to_fraction,
     r"0.(6) and 0.1(6) write the repeating block in brackets"),
    (REPEATING_WITH_DOTS, repeating_with_dots_to_fraction, r"0.666... and 0.1666\ldots repeat their last block"),
    (re.compile(r"\\frac\s*(\w)\s*(\w)"), r"\\frac{\1}{\2}", r"\frac12 is \frac{1}{2}"),
    (re.compile(r"\\frac\s*(\w)\s*\{"), r"\\frac{\1}{", r"\frac1{10} is \frac{1}{10}"),
    (re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\w)"), r"\\frac\1{\2}", r"\frac{9}5 is \frac{9}{5}"),
    (re.compile(r"\\sqrt\s*(\w)"), r"\\sqrt{\1}", r"\sqrt5 is \sqrt{5}"),
    (re.compile(r"\^\s*\{\s*(\w)\s*\}"), r"^\1", "x^{2} is x^2 (one character in braces)"),
    (re.compile(r"_\s*\{\s*(\w+)\s*\}"), r"_\1", "2112_{6} is 2112_6"),
]

# 4b. Mixed numbers, decided by form (before spaces go, so 1 1/2 is never 11/2): a whole number, then a
# PROPER fraction (0 < numerator < denominator) is their sum, as in school arithmetic and MATH's 6\frac{1}{5};
# `1 \frac{1}{2} + 3` is 4.5. A fraction that is not proper after a space (`12 000/4`, `1 3/2`) is no mixed number.
def _mixed_to_fraction(match: re.Match) -> str:
    whole, numerator, denominator = (int(group) for group in match.groups())
    if not 0 < numerator < denominator or len(match.group(1)) > 12:
        return match.group(0)
    return f"\\frac{{{whole * denominator + numerator}}}{{{denominator}}}"


MIXED_RULES: list[Rule] = [
    (re.compile(r"(?<![\w.^_}{/\\])(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}(?![\^\w])"), _mixed_to_fraction,
     r"a mixed number in LaTeX: 1\frac{1}{2} and 1 \frac{1}{2} are \frac{3}{2} (the fraction proper)"),
    (re.compile(r"(?<![\w.^_}{/\\])(\d+)[ \t]+(\d+)\s*/\s*(\d+)(?![\d.\w^/])"), _mixed_to_fraction,
     "a mixed number in text: 1 1/2 is \\frac{3}{2}, not 11/2 (the fraction proper)"),
]

# 5. Answers joined by words are a list (MATH: "enter all solutions, separated by commas"); then
# assignments in a list lose their left sides (latex_text.strip_assignments).
JOIN_RULES: list[Rule] = [
    (re.compile(r"(?<=[\d)}\]])\s*or\s*(?=[-+\d(\[\\]|[a-zA-Z]\s*=)"), ", ",
     "'3or5' and 'x=1orx=2' (or without spaces, between two values) list their answers"),
    (re.compile(r"\s*,?\s+(?:and|or)\s+|\s*,?\s*\\(?:text|textrm|textnormal|mbox)\{\s*(?:and|or|,)\s*\}\s*"), ", ",
     r"'3 or -5', '1 and 2', 3\text{ or }-5, '1, 2, and 3' list their answers: 3, -5"),
    (re.compile(r"^.*$", re.DOTALL), lambda m: strip_assignments(m.group(0)),
     "x=3, x=-5 is 3, -5; x=1, y=2 is (1, 2) (latex_text.strip_assignments)"),
]

# 6. Whole-answer shapes: what surrounds the value.
# Unit abbreviations that may be glued to a number (10cm): two letters or more, none a variable product a
# MATH answer writes (ab, xy are not here).
_GLUED_UNITS = "|".join(sorted((re.escape(word) for word in UNITS if len(word) > 1), key=len, reverse=True)) + "|km/h|m/s"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+|\\frac\{\d+\}\{\d+\})"
def _scaled(match: re.Match) -> str:
    number, word, rest = match.group(1), match.group(2), match.group(3)
    if rest.strip() and not is_unit_phrase(rest):
        return match.group(0)
    if not re.fullmatch(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)", number):
        return match.group(0)  # \frac{1}{2} million: left as it is
    value = Decimal(number) * MAGNITUDES[word]
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


SHAPE_RULES: list[Rule] = [
    (re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\w+)?\s*=\s*(?=[^=]+$)"), "",
     "x = 5 is 5: one variable on the left (Hendrycks MATH answers are values)"),
    (re.compile(r"^\s*[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\)\s*=\s*(?=[^=]+$)"), "", "f(x) = x^2 is x^2"),
    (re.compile(r"^\s*\(\s*[a-zA-Z](?:\s*,\s*[a-zA-Z])+\s*\)\s*=\s*(?=[^=]+$)"), "", "(x, y) = (1, 2) is (1, 2)"),
    (re.compile(r"^\s*[a-zA-Z]\s*\\in\s*"), "", r"x \in [1, 2] is [1, 2]"),
    (re.compile(r"^\s*\(\s*([A-E])\s*\)\s*$"), r"\1", "a multiple-choice letter: (B) is B"),
    (re.compile(r"^(" + _NUMBER + r")\s*(" + "|".join(MAGNITUDES) + r")s?(?![a-zA-Z])\s*(.*)$"), _scaled,
     "a magnitude word scales its number: 5 thousand is 5000, 1.2 million is 1200000, 5 dozen is 60 (issue 25 "
     "review: they were dropped as units); what follows must be a unit, or the text is kept"),
    (re.compile(r"^(" + _NUMBER + r")\s+([a-zA-Z][a-zA-Z .'/]*+)(?:\^\s*[23])?\s*$"),  # possessive: no backtracking
     lambda m: m.group(1) if is_unit_phrase(m.group(2)) else m.group(0),
     "unit words after a number: '18 dollars' is 18, '440 cm^2' is 440, '12 km/h' is 12; only words "
     "is_unit_phrase accepts ('2 thirds', '3 squared', '5 times', '3 ab' keep their words)"),
    (re.compile(r"(?<=\S)\s*\\approx(?![a-zA-Z]).*$", re.DOTALL), "",
     r"a rounding after the exact answer: \frac{737}{39} \approx 18.9 is \frac{737}{39}"),
    (re.compile(r"(?<=\S)\s*\((?=[^()\\]*[a-zA-Z\u4e00-\u9fff]{3})[^()\\]*\)\s*$"), "",
     "a trailing remark in brackets: '\\frac{737}{39} (about 18.9 cards)' is \\frac{737}{39} (3+ letters, no command)"),
    (re.compile(r"(?<=[\d}])\s*(?:" + _GLUED_UNITS + r")(?:\^?[23])?(?:/(?:" + _GLUED_UNITS + r"))?\s*$"), "",
     "a unit glued to the number: 10cm is 10, \\frac{1}{2}cm is \\frac{1}{2} (known abbreviations only: 10x keeps x)"),
    (re.compile(r"(?<=[\d}%])\s*[\u4e00-\u9fff]+(?:/[\u4e00-\u9fff]+)?\s*$"), "",
     "a Chinese unit after the number: 12\u5143 is 12, 300\u5e73\u65b9\u7c73 is 300 (CMATH, MGSM zh)"),
    (re.compile(r"[.\s]+$"), "", "a sentence's full stop after the answer"),
]

_LIST_COMMA = re.compile(r",\s")
_BARE_COMMA = re.compile(r",(?!\s)")
_THOUSANDS_COMMA = re.compile(r"(?<![\d])(?<!\d,)\d{1,3}(?:,\d{3})+(?!\d|,\d)")


def _thousands_in_list(text: str) -> str:
    """`(1,000, 2,000)` is (1000, 2000): where items are separated by a comma and a space, a comma with no space
    inside a 1-3 digit group followed by groups of three is a thousands separator (issue 25 review). Only when
    every comma without a space is one; `(1,2, 3)` is left as it is. Linear."""
    if not _LIST_COMMA.search(text) or not _BARE_COMMA.search(text):
        return text
    bare = len(_BARE_COMMA.findall(text))
    grouped = sum(match.group(0).count(",") for match in _THOUSANDS_COMMA.finditer(text))
    if grouped != bare:
        return text
    return _THOUSANDS_COMMA.sub(lambda match: match.group(0).replace(",", ""), text)


# 7. Spaces and number spelling (last: they work on the compact form).
NUMBER_RULES: list[Rule] = [
    (re.compile(r"^.*$", re.DOTALL), lambda m: _thousands_in_list(m.group(0)),
     "(1,000, 2,000) is (1000, 2000): thousands commas in a list separated by ', ' (before spaces go)"),
    (re.compile(r"^([-+]?)([1-9]\d{0,2}(?:,\d{3})+)(\.\d+)?(%?)$"),
     lambda m: m.group(1) + m.group(2).replace(",", "") + (m.group(3) or "") + m.group(4),
     "thousands separators in a whole-number answer: 1,000,000 is 1000000 (decision in the module doc); "
     "a comma followed by a space is never one: 32, 349 is a list (applied before spaces go)"),
    (re.compile(r"(?<![\d.,])\d{1,3}(?:[ \t]\d{3})+(?!\d)"), lambda m: re.sub(r"[ \t]", "", m.group(0)),
     "digit groups: 12 000 is 12000 (groups of exactly three after a first group of one to three digits)"),
    (re.compile(r"(?<=\d),\s+(?=\d{3}(?!\d))|(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9])|(?<=\d)(?P<between>\s+)(?=\d)|\s+"),
     lambda m: (", " if m.group(0).startswith(",") else m.group(1) + " " if m.group(1)
                else " " if m.group("between") else ""),
     r"spaces carry no meaning, except after a command (\pi r keeps its space), in '32, 349' "
     "(kept so the list is not read as 32,349 again) and between two digits that are no digit group "
     "('1 2' is not 12: no comparison reads it as a number)"),
    (re.compile(r"^\+"), "", "+5 is 5"),
    (re.compile(r"(?<![\d.])\.(\d)"), r"0.\1", ".5 is 0.5"),
    (re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])"), lambda m: m.group(1) + "." + m.group(2).rstrip("0"),
     "trailing zeros after the point: 2.50 is 2.5 (stripped in code: a lazy run before 0+ was quadratic)"),
    (re.compile(r"(?<![\d.])(\d+)\.(?![\d])"), r"\1", "a bare point left by the rule above: 5.0 -> 5. -> 5"),
]

# 8. Plus-minus: last, on the compact form (latex_text.expand_plus_minus).
PLUS_MINUS_RULES: list[Rule] = [
    (re.compile(r"^.*$", re.DOTALL), lambda m: expand_plus_minus(m.group(0)),
     r"2 \pm \sqrt{3} is the list 2+\sqrt{3}, 2-\sqrt{3}; \pm 4 is 4, -4 (so 4 alone is not \pm 4)"),
]


_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?\s*$", re.ASCII)  # ASCII digits: full-width ones take the long path


def _apply(rules: list[Rule], text: str) -> str:
    for pattern, replacement, _reason in rules:
        text = pattern.sub(replacement, text)
    return text


MAX_ANSWER_CHARS = 2000  # the longest MATH answer is under 300 characters; longer text is compared as text


def normalize_answer(s: str) -> str:
    """The canonical text form of answer `s` (see the rule tables above); '' when nothing is left.

    An answer longer than MAX_ANSWER_CHARS is no answer a benchmark holds: it is returned with its whitespace
    collapsed and nothing else (the work stays bounded whatever a model writes; equal.py then compares text).
    Raises TypeError when `s` is not a str.
    """
    if not isinstance(s, str):
        raise TypeError(f"normalize_answer expects a str answer, got {type(s).__name__}: {repr(s)[:80]}")
    if len(s) > MAX_ANSWER_CHARS:
        return " ".join(s.split())
    if _PLAIN_NUMBER.match(s):
        return _apply(NUMBER_RULES, s.strip())  # the only rules that touch a plain number (GSM8K golds): speed
    text = _apply(ESCAPE_RULES, s.strip())
    text = _strip_wrappers(text)
    text = _apply(CHARACTER_RULES, text)
    text = _apply(MARK_RULES, text)
    text = _strip_wrappers(text)
    text = _apply(TEXT_RULES, text)
    if "\\" in text:
        for command in _UNWRAP_COMMANDS:
            text = unwrap_command(text, command)
    text = _apply(SHORTHAND_RULES, text)
    text = _apply(MIXED_RULES, text)
    text = _apply(JOIN_RULES, _strip_wrappers(text))
    text = _apply(SHAPE_RULES, _strip_wrappers(text))
    text = _apply(NUMBER_RULES, _strip_wrappers(text))
    text = _apply(SHAPE_RULES[-1:], _strip_wrappers(text))
    return _apply(PLUS_MINUS_RULES, text)
