"""Normalise a math question so that notation rewrites of it compare equal (decontamination and dedup).

    normalize_text(r"Compute $\\dbinom{8}{4}$ for 1,000 users.")  ->  "compute binom 8 4 for 1000 users"

Issue 14 measured what this is for: 20 MATH test problems rewritten only in notation (`\\dfrac` -> `\\frac`,
`\\dbinom` -> `\\binom`) and a GSM8K question with `1,000` for `1000` slipped past a check that only lower-cased
the text and split it into words. Each rule below names one *kind* of rewrite and normalises every variant
of that kind, not only the examples seen; `RULES` is the table (name, what it does, why), applied in order.
The output is words joined by single spaces: letters and digits of any script, nothing else.

Order matters: Unicode thin spaces become plain spaces under NFKC, and `\\,` becomes a space in the spacing
rule, so digit groups are joined before either happens.
"""

from __future__ import annotations

import re
import unicodedata

# ---------------------------------------------------------------------------------------------------------
# Unicode

# Superscript/subscript digits: NFKC would turn "x²" into "x2" (one word) while "x^2" gives "x 2"; writing
# them as ^{..}/_{..} first makes the two spellings meet.
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", "0123456789+-=()"))
_SUPER_RUN = re.compile(f"[{''.join(_SUPERSCRIPTS)}]+")
_SUB_RUN = re.compile(f"[{''.join(_SUBSCRIPTS)}]+")

# Math symbols typed as Unicode, mapped to the LaTeX command a MATH problem writes (the words must match).
# Minus signs and dashes are punctuation either way; they are mapped to "-" so the rule is explicit.
_SYMBOLS = {
    "\u2212": "-", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-",  # minus, dashes
    "×": r" \times ", "÷": r" \div ", "·": r" \cdot ", "⋅": r" \cdot ", "∙": r" \cdot ",
    "≤": r" \le ", "≦": r" \le ", "≥": r" \ge ", "≧": r" \ge ", "≠": r" \ne ", "±": r" \pm ", "∓": r" \mp ",
    "π": r" \pi ", "θ": r" \theta ", "α": r" \alpha ", "β": r" \beta ", "√": r" \sqrt ", "∞": r" \infty ",
    "°": r"^\circ ", "∠": r" \angle ", "△": r" \triangle ", "…": " ... ", "≈": r" \approx ", "∈": r" \in ",
}
_SYMBOL_RE = re.compile("|".join(map(re.escape, _SYMBOLS)))
_FRACTION_SLASH = re.compile(r"(\d+)\u2044(\d+)")

# Thin, narrow no-break, figure, hair and no-break spaces: the digit-group separators of SI / ISO 80000-1
# ("1 000 000"), which NFKC turns into plain spaces; joined while they can still be told apart.
_UNICODE_GROUP = re.compile(r"(?<![\d.])(\d{1,3})((?:[\u00a0\u2007\u2009\u200a\u202f]\d{3})+)(?![\d]|[\u00a0\u2007\u2009\u200a\u202f]\d)")

# ---------------------------------------------------------------------------------------------------------
# LaTeX

# Style variants of one construct (amsmath: \dfrac \tfrac \dbinom \tbinom; \cfrac for continued fractions;
# xfrac's \sfrac, nicefrac's \nicefrac; nccmath's \mfrac \mbinom): all are the same fraction or binomial.
_VARIANTS = re.compile(r"\\(?:[dtcms]|nice)frac(?![a-zA-Z])|\\[dtm]binom(?![a-zA-Z])")
# \frac12 is \frac{1}{2} (TeX takes one token per missing brace); \sqrt2 is \sqrt{2}.
_BRACELESS_FRAC = re.compile(r"\\(frac|binom)\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])")
_BRACELESS_ONE = re.compile(r"\\(frac|binom)\s*\{([^{}]*)\}\s*([0-9a-zA-Z])|\\(frac|binom)\s*([0-9a-zA-Z])\s*\{")
_BRACELESS_SQRT = re.compile(r"\\sqrt\s*([0-9a-zA-Z])")
# Commands that only size, style or font their argument: removed, the argument kept. Sizing of delimiters
# (\left( ... \right), \bigl( ... \bigr), every \big/\Big/\bigg/\Bigg with an l/r/m suffix, \middle), display
# styles, and font/text wrappers (5\text{ cm} = 5\mbox{ cm} = 5\mathrm{\ cm} = 5 cm). \mathbb and
# \mathcal stay: they change meaning (R vs the reals).
_DROP = re.compile(
    r"\\(?:left|right|middle|[bB]igg?[lrm]?)(?![a-zA-Z])\s*\.?"  # the null delimiter \left. goes too
    r"|\\(?:display|text|script|scriptscript)style(?![a-zA-Z])"
    r"|\\(?:text(?:rm|bf|it|sf|tt|normal|up)?|math(?:rm|bf|it|sf|tt|normal|up)|operatorname\*?|mbox|hbox"
    r"|boldsymbol|bm|rm|bf|it|limits|nolimits)(?![a-zA-Z])"
)
# Delimiter commands with an ASCII twin (all are punctuation once words are split, so they become spaces).
_DELIMITERS = re.compile(r"\\(?:[lr]brace|[lr]brack|[lr]angle|[lr]group|[lr]?vert|[lr]?Vert|\{|\}|\|)(?![a-zA-Z])")
# Synonyms: one command, two spellings (amsmath/amssymb).
_SYNONYMS = {"leq": "le", "geq": "ge", "neq": "ne", "leqslant": "le", "geqslant": "ge", "lt": "<", "gt": ">",
             "ldots": "...", "cdots": "...", "dots": "...", "dotsc": "...", "dotsb": "...", "dotsm": "...",
             "to": "rightarrow", "gets": "leftarrow", "land": "wedge", "lor": "vee", "lnot": "neg",
             "varnothing": "emptyset", "varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta"}
_SYNONYM_RE = re.compile(r"\\(" + "|".join(sorted(_SYNONYMS, key=len, reverse=True)) + r")(?![a-zA-Z])")
# Digit grouping: 1,000 / 1{,}000 / 1\,000 / 1\ 000 / 1~000 -> 1000. Only groups of exactly three digits
# after a 1-3 digit head, so lists ("1,2,3"), coordinates with spaces ("(1, 200)") and decimals stay.
_SEP = r"(?:,|\{,\}|\{\\,\}|\\[,:; ]\s*|~|\\thinspace\s*)"
_DIGIT_GROUP = re.compile(rf"(?<![\w.])(\d{{1,3}})((?:{_SEP}\d{{3}})+)(?!\d|{_SEP}\d)")
_GROUP_SEP = re.compile(_SEP)
# Spacing commands (TeXbook ch. 18 and amsmath): thin \, medium \: \> thick \; negative \!, control space
# "\ ", \quad \qquad, ties ~, the named \enspace ... \negthickspace, and explicit \hspace{..} \kern.. skips.
_SPACING = re.compile(
    r"\\[,:;!> ]|~|\\q?quad(?![a-zA-Z])|\\(?:en|thin|med|thick|negthin|negmed|negthick)space(?![a-zA-Z])"
    r"|\\enskip(?![a-zA-Z])|\\hspace\*?\s*\{[^{}]*\}|\\mspace\s*\{[^{}]*\}"
    r"|\\(?:m?kern|[hm]skip)\s*-?[\d.]+\s*(?:mu|em|ex|pt)?"
)

# A word is a run of digits or a run of letters (any script): "5cm" and "5 cm", "2x" and "2 x" meet.
_WORD = re.compile(r"\d+|[^\W\d_]+")
_ASCII_WORD = re.compile(r"[0-9]+|[a-zA-Z]+")  # the same words on ASCII text


def _super(match: re.Match) -> str:
    return "^{" + "".join(_SUPERSCRIPTS[c] for c in match.group()) + "}"


def _sub(match: re.Match) -> str:
    return "_{" + "".join(_SUBSCRIPTS[c] for c in match.group()) + "}"


def _unicode(text: str) -> str:
    text = _SUPER_RUN.sub(_super, text)
    text = _SUB_RUN.sub(_sub, text)
    text = _UNICODE_GROUP.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    text = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group()], text)
    # NFKC: full-width digits and letters (１２ -> 12), ligatures (ﬁ -> fi), circled and other compatibility
    # forms (Unicode Standard Annex #15). Case is folded after it, as UAX #15 recommends for caseless matching.
    text = unicodedata.normalize("NFKC", text)
    # NFKC writes a vulgar fraction as digits around U+2044 (½ -> 1⁄2): the fraction LaTeX writes \frac{1}{2}
    return _FRACTION_SLASH.sub(r"\\frac{\1}{\2}", text) if "\u2044" in text else text


def _braceless(match: re.Match) -> str:
    if match.group(1):
        return f"\\{match.group(1)}{{{match.group(2)}}}{{{match.group(3)}}}"
    return f"\\{match.group(4)}{{{match.group(5)}}}{{"


def _latex(text: str) -> str:
    text = _VARIANTS.sub(lambda m: r"\frac" if m.group().endswith("frac") else r"\binom", text)
    text = _BRACELESS_FRAC.sub(lambda m: f"\\{m.group(1)}{{{m.group(2)}}}{{{m.group(3)}}}", text)
    text = _BRACELESS_ONE.sub(_braceless, text)
    text = _BRACELESS_SQRT.sub(lambda m: f"\\sqrt{{{m.group(1)}}}", text)
    text = _DROP.sub(" ", text)
    text = _DELIMITERS.sub(" ", text)
    return _SYNONYM_RE.sub(lambda m: "\\" + _SYNONYMS[m.group(1)] if _SYNONYMS[m.group(1)][0].isalpha()
                           else " " + _SYNONYMS[m.group(1)] + " ", text)


def _join_groups(match: re.Match) -> str:
    return match.group(1) + _GROUP_SEP.sub("", match.group(2))


# (name, what it does, why): the table the module docstring promises; tests/test_data_normalize.py has a row
# per variant.
RULES: tuple[tuple[str, str, str], ...] = (
    ("unicode", "superscript digits -> ^{..}; Unicode digit-group spaces joined; math symbols -> LaTeX; NFKC; "
     "vulgar fractions (½ -> 1⁄2) -> \\frac{1}{2}",
     "a question pasted from a PDF or typed on a phone uses Unicode forms of the same notation"),
    ("case", "casefold", "'What is' and 'what is' are one question; Arithmo lowercased 30% of questions"),
    ("latex_variants", r"\dfrac \tfrac \cfrac \sfrac \nicefrac -> \frac; \dbinom \tbinom -> \binom; \frac12 -> "
     r"\frac{1}{2}", "display/text/continued styles and brace-less arguments print the same mathematics"),
    ("latex_sizing_fonts", r"drop \left \right \big.. \middle, \displaystyle.., \text \mathrm \mbox \operatorname..",
     "delimiter sizes, math styles and fonts change the look, not the problem"),
    ("latex_synonyms", r"\leq -> \le, \neq -> \ne, \ldots/\cdots -> ..., \to -> \rightarrow, \lbrace -> {",
     "amsmath/amssymb give one symbol two names"),
    ("digit_grouping", r"1,000 / 1{,}000 / 1{\,}000 / 1\,000 / 1\;000 / 1~000 / 1 000 (thin space) -> 1000",
     "thousands separators: a GSM8K-style '1,000' escaped the exact check while the test wrote 1000"),
    ("latex_spacing", r"\, \: \; \! '\ ' \quad \qquad ~ \enspace.. \hspace{..} \mspace{..} \kern \hskip.. -> a space",
     "spacing commands only move ink"),
    ("words", "words are runs of digits or of letters (any script); all else is a separator",
     "punctuation, $ delimiters and braces carry no wording; '5cm' = '5 cm'; non-Latin questions keep words"),
)


def normalize_text(text: str) -> str:
    """`text` with every RULES rewrite applied: lowercase words of letters/digits separated by single spaces.

    Pure and deterministic (no locale, no randomness), so the same text always gives the same key. ASCII
    prose without LaTeX, digit groups or digits glued to letters gives what the old rule gave (lowercase,
    non-alphanumerics to spaces), so fingerprints of plain word problems did not move.
    """
    if not text:
        return ""
    if not text.isascii():
        text = _unicode(text)
    text = text.casefold()
    if "\\" in text:
        text = _latex(text)
    if "," in text or "\\" in text or "~" in text or "{" in text:
        text = _DIGIT_GROUP.sub(_join_groups, text)
    if "\\" in text or "~" in text:
        text = _SPACING.sub(" ", text)
    # ASCII text (most rows): the same words by ASCII classes, ~1.3x faster than the Unicode categories (the
    # word split is most of the format stage's time; bench/bench_data.py --profile-format).
    return " ".join((_ASCII_WORD if text.isascii() else _WORD).findall(text))
