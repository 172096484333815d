"""LaTeX (and plain `sqrt(2)/2` text) to sympy, safely, and symbolic equality of two answers.

Why our own converter: `sympy.parsing.latex.parse_latex` needs antlr4-python3-runtime 4.11 exactly
(sympy 1.14 raises "LaTeX parsing requires the antlr4 Python package ... version 4.11"), while
math-verify pins 4.13.2; the common answer forms (\\frac, \\sqrt, ^, \\pi, \\cdot, implicit
multiplication, i) need only a small recursive rewrite into sympy's own syntax, parsed by
`sympy.parsing.sympy_parser.parse_expr`.

Safety: parse_expr evaluates Python code, and answers come from model output. The converter emits
only digits, operators, parentheses and identifiers from a fixed list or plain symbol names; the
parse runs with no builtins and a global namespace of a few sympy classes. Sizes are checked on the
unevaluated tree before anything is computed (a signal cannot interrupt one huge GMP power).
"""

from __future__ import annotations

import math
import re

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    rationalize,
    standard_transformations,
)

from arithmo.grading.normalize import find_braced

# rationalize: a decimal is the exact number it writes (x^{0.5} is \\sqrt{x}); tolerances are applied to values.
_TRANSFORMATIONS = standard_transformations + (implicit_multiplication_application, convert_xor, rationalize)
_FUNCTIONS = {"sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "sec": sympy.sec,
              "csc": sympy.csc, "cot": sympy.cot, "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan,
              "log": sympy.log, "exp": sympy.exp, "Abs": sympy.Abs, "binomial": sympy.binomial,
              "factorial": sympy.factorial}
_CONSTANTS = {"pi": sympy.pi, "oo": sympy.oo}
_LATEX_FUNCTIONS = {"sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc", "cot": "cot",
                    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "ln": "log", "log": "log", "exp": "exp"}
_GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "phi", "psi", "omega", "rho",
          "sigma", "tau")
_LATEX_WORDS = {"cdot": "*", "times": "*", "ast": "*", "div": "/", "pi": " pi ", "infty": " oo "}
# Identifiers that may appear in converted text: the names above and plain symbol names (x, x_1).
_SYMBOL_NAME = re.compile(r"^[A-Za-z][A-Za-z]*(?:_[A-Za-z0-9]+)?$")
# The largest number (in decimal digits) an answer may ask sympy to build: 2004! (5,700 digits) is a
# MATH answer; a power tower is not.
MAX_DIGITS = 20_000
MAX_TEXT_CHARS = 600


class NotConvertible(ValueError):
    """The text is not an expression this converter handles (inequalities, lists, base-n numbers, ...)."""


def _group(text: str, start: int) -> tuple[str, int]:
    """The argument of a command at `start`: a `{...}` group or one character; returns (argument, end)."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        raise NotConvertible("a command is missing its argument")
    if text[start] == "{":
        close = find_braced(text, start)
        if close is None:
            raise NotConvertible("unbalanced braces")
        return text[start + 1: close], close + 1
    if text[start] == "\\":
        match = re.match(r"\\[a-zA-Z]+", text[start:start + 40])
        if match:
            end = start + match.end()
            # an unbraced command argument takes its own arguments along: 2^\frac{1}{2} is 2^{\frac{1}{2}}
            for _ in range(_COMMAND_ARGUMENTS.get(match.group(0)[1:], 0)):
                _, end = _group(text, end)
            return text[start:end], end
    return text[start], start + 1


_COMMAND_ARGUMENTS = {"frac": 2, "dfrac": 2, "binom": 2, "sqrt": 1}


# A number in e-notation with an unsigned exponent (3.83e35): not after a letter, digit or point, not followed
# by one (2e3x is not a number literal). Signed ones (7.6e-8) Python's tokenizer reads as numbers already.
_SCIENTIFIC = re.compile(r"(?<![A-Za-z_\d.])(?:\d+(?:\.\d*)?|\.\d+)e\d+(?![A-Za-z_\d.])")
# Leading zeros of an integer (0002^{99}): Python reads 0002 as a syntax error; 0.5 and 10 keep theirs.
_LEADING_ZEROS = re.compile(r"(?<![\d.\w])0+(?=\d)")


def latex_to_sympy_text(text: str) -> str:
    """sympy-parsable text for a normalized LaTeX or plain answer; NotConvertible when it is not one."""
    if len(text) > MAX_TEXT_CHARS:
        raise NotConvertible(f"longer than {MAX_TEXT_CHARS} characters")
    checked = re.sub(r"\\sqrt\s*\[[^\[\]]*\]", r"\\sqrt", text)  # a root's degree is not a list
    if re.search(r"\d\s+\d|\d_|\\pm|\\mp|[<>=,;:&\[\]'\"#@?`$]|\\\\|\\(?:le|ge|ne|in|cup|cap|to)(?![a-zA-Z])", checked):
        raise NotConvertible("not a single expression (relation, list, base-n number or similar)")
    out: list[str] = []
    index, absolute_open = 0, False
    while index < len(text):
        char = text[index]
        if char == "\\":
            match = re.match(r"\\([a-zA-Z]+)", text[index:])
            if not match:
                raise NotConvertible(f"unknown command at {text[index:index + 8]!r}")
            name, index = match.group(1), index + match.end()
            if name == "frac":
                numerator, index = _group(text, index)
                denominator, index = _group(text, index)
                out.append(f"(({latex_to_sympy_text(numerator)})/({latex_to_sympy_text(denominator)}))")
            elif name == "sqrt":
                degree = None
                if index < len(text) and text[index] == "[":
                    close = text.find("]", index)
                    if close == -1:
                        raise NotConvertible("unclosed root degree")
                    degree, index = text[index + 1: close], close + 1
                radicand, index = _group(text, index)
                inner = latex_to_sympy_text(radicand)
                out.append(f" sqrt({inner})" if degree is None
                           else f"(({inner})**(1/({latex_to_sympy_text(degree)})))")
            elif name == "binom":
                top, index = _group(text, index)
                bottom, index = _group(text, index)
                out.append(f" binomial({latex_to_sympy_text(top)},{latex_to_sympy_text(bottom)})")
            elif name in _LATEX_WORDS:
                out.append(_LATEX_WORDS[name])
            elif name in _LATEX_FUNCTIONS:
                out.append(f" {_LATEX_FUNCTIONS[name]} ")
            elif name in _GREEK:
                out.append(f" {name} ")
            else:
                raise NotConvertible(f"unsupported command \\{name}")
            continue
        if char in "{}":
            out.append("(" if char == "{" else ")")
        elif char == "^":
            exponent, index = _group(text, index + 1)
            out.append(f"**({latex_to_sympy_text(exponent)})")
            continue
        elif char == "|":
            out.append(" Abs(" if not absolute_open else ")")
            absolute_open = not absolute_open
        elif char.isalnum() or char in "+-*/(). !_":
            out.append(char)
        else:
            raise NotConvertible(f"unexpected character {char!r}")
        index += 1
    converted = _LEADING_ZEROS.sub("", "".join(out))
    # `3.83e35`, `4.5e3` (Minerva's golds): e-notation with an unsigned exponent is a number literal when no
    # variable stands beside it; `x+2e3` could be x + 2000 or x + 2*e*3 and is not guessed (`2e` is 2*e).
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _SCIENTIFIC.sub(" 0 ", converted))
    if _SCIENTIFIC.search(converted) and any(name not in _FUNCTIONS and name not in _CONSTANTS for name in names):
        raise NotConvertible("e-notation beside a variable (a number or e times a number?)")
    for name in names:
        if "__" in name or not (name in _FUNCTIONS or name in _CONSTANTS or name in _GREEK
                                or _SYMBOL_NAME.match(name)):
            raise NotConvertible(f"identifier {name!r} is not allowed")
    if re.search(r"\.(?!\d)", converted):
        raise NotConvertible("a point that is not a decimal point")
    depth = 0
    for char in converted:
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth < 0:
            break
    if depth != 0 or absolute_open:
        raise NotConvertible("unbalanced parentheses")
    return converted


def _namespace() -> tuple[dict, dict]:
    global_names = {name: getattr(sympy, name) for name in
                    ("Integer", "Float", "Rational", "Symbol", "Function", "Add", "Mul", "Pow")}
    global_names.update(_FUNCTIONS)
    global_names.update({"factorial": _guarded_factorial, "binomial": _guarded_binomial})
    global_names.update(_CONSTANTS)
    global_names["__builtins__"] = {}
    local_names = {letter: sympy.Symbol(letter) for letter in "abcdefghjklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    local_names["i"] = sympy.I  # MATH writes complex answers as 8-i, -15+8i
    local_names["e"] = sympy.E  # Euler's number (e^{\\ln 2} is 2, e^{i\\pi} is -1), as MATH and sympy's printout use it
    local_names.update({name: sympy.Symbol(name) for name in _GREEK})
    return global_names, local_names


def _digits_of_power(base: sympy.Expr, exponent: sympy.Expr) -> float:
    try:
        magnitude = abs(complex(sympy.N(base, 15)))
        power = abs(complex(sympy.N(exponent, 15)))
    except (TypeError, ValueError):
        return 0.0
    return power * math.log10(magnitude) if magnitude > 1 else 0.0


# An expansion with more terms than this is no answer a benchmark holds: (x+y+z)^{30} (496 terms) or (1+x)^{1000}
# kept sympy's expand/simplify busy until the comparison's budget ran out (issue 25 review).
MAX_EXPANDED_TERMS = 200
# Functions nested deeper than this (\sin(\sin(\sin(...)))) are not simplified: no MATH answer nests more than 3.
MAX_FUNCTION_DEPTH = 4


def _number_of(node: sympy.Basic) -> float | None:
    """|node| as a float when it is a number (None otherwise); inf when it is too large for a float."""
    if not node.is_number:
        return None
    try:
        return abs(complex(sympy.N(node, 15)))
    except (TypeError, ValueError):
        return None
    except OverflowError:
        return math.inf


def _guarded_factorial(argument):
    """sympy.factorial, refused before it is computed when n! would have more than MAX_DIGITS digits: a
    function in parse_expr's namespace runs while parsing, even with evaluate=False, so ((20)!)! must be
    stopped here (20! = 2.4e18; its factorial never finishes)."""
    value = _number_of(sympy.sympify(argument))
    if value is not None and value > MAX_DIGITS / 4:  # n! has < n*log10(n) digits
        raise NotConvertible(f"a factorial with over {MAX_DIGITS} digits")
    return sympy.factorial(argument)


def _guarded_binomial(top, bottom):
    """sympy.binomial, refused when C(n, k) would have more than MAX_DIGITS digits (C(n,k) < n^min(k,n-k))."""
    n, k = _number_of(sympy.sympify(top)), _number_of(sympy.sympify(bottom))
    if n is not None and k is not None and n > 1:
        smaller = min(k, max(0.0, n - k))
        if smaller * math.log10(n) > MAX_DIGITS or n > 10**12:
            raise NotConvertible(f"a binomial coefficient with over {MAX_DIGITS} digits")
    return sympy.binomial(top, bottom)


def _expanded_terms(node: sympy.Basic) -> float:
    """An upper estimate of how many terms `node` has once expanded (a sum adds, a product multiplies, an
    integer power n of a k-term sum has C(n+k-1, k-1)); capped above MAX_EXPANDED_TERMS."""
    if isinstance(node, sympy.Add):
        return min(sum(_expanded_terms(arg) for arg in node.args), math.inf)
    if isinstance(node, sympy.Mul):
        product = 1.0
        for arg in node.args:
            product *= _expanded_terms(arg)
            if product > MAX_EXPANDED_TERMS:
                return product
        return product
    if isinstance(node, sympy.Pow) and node.base.free_symbols:
        base_terms = _expanded_terms(node.base)
        exponent = _number_of(node.exp)
        if base_terms <= 1 or exponent is None or exponent != int(exponent):
            return base_terms
        if exponent > 10**4:
            return math.inf
        return float(math.comb(int(exponent) + int(min(base_terms, 64)) - 1, int(min(base_terms, 64)) - 1))
    return 1.0


def _function_depth(node: sympy.Basic) -> int:
    inner = max((_function_depth(arg) for arg in node.args), default=0)
    return inner + 1 if isinstance(node, sympy.Function) else inner


def _check_size(tree: sympy.Basic) -> None:
    """NotConvertible when evaluating `tree` would build a number with more than MAX_DIGITS digits, expand to
    more than MAX_EXPANDED_TERMS terms or nest functions deeper than MAX_FUNCTION_DEPTH (bounded work)."""
    for node in sympy.preorder_traversal(tree):
        if isinstance(node, sympy.Pow) and node.exp.is_number and node.base.is_number:
            if _digits_of_power(node.base, node.exp) > MAX_DIGITS:
                raise NotConvertible(f"a power with over {MAX_DIGITS} digits")
        if isinstance(node, sympy.factorial) and node.args[0].is_number:
            if abs(complex(sympy.N(node.args[0], 15))) > MAX_DIGITS / 4:  # n! has < n*log10(n) digits
                raise NotConvertible(f"a factorial with over {MAX_DIGITS} digits")
    if _expanded_terms(tree) > MAX_EXPANDED_TERMS:
        raise NotConvertible(f"expands to over {MAX_EXPANDED_TERMS} terms")
    if _function_depth(tree) > MAX_FUNCTION_DEPTH:
        raise NotConvertible(f"functions nested over {MAX_FUNCTION_DEPTH} deep")


def to_sympy(text: str) -> sympy.Expr:
    """A sympy expression for a normalized answer; NotConvertible when the converter does not handle it."""
    converted = latex_to_sympy_text(text)
    global_names, local_names = _namespace()
    try:
        tree = parse_expr(converted, local_dict=dict(local_names), global_dict=dict(global_names),
                          transformations=_TRANSFORMATIONS, evaluate=False)
        _check_size(tree)
        return parse_expr(converted, local_dict=local_names, global_dict=global_names,
                          transformations=_TRANSFORMATIONS)
    except NotConvertible:
        raise
    except Exception as error:  # parse_expr raises TokenError, IndexError, SyntaxError, ... on malformed text
        raise NotConvertible(f"sympy could not parse {converted!r}: {type(error).__name__}") from error


def _numbers_close(first: complex, second: complex, rel_tol: float, abs_tol: float) -> bool:
    return (math.isclose(first.real, second.real, rel_tol=rel_tol, abs_tol=abs_tol)
            and math.isclose(first.imag, second.imag, rel_tol=rel_tol, abs_tol=abs_tol))


def _value(expr: sympy.Expr) -> complex | None:
    try:
        return complex(sympy.N(expr, 30))
    except (TypeError, ValueError, OverflowError):
        return None


# A decimal point or e-notation: a side written as a measured (rounded) value, compared with a tolerance.
_MEASURED = re.compile(r"\d\.|\.\d|\de[-+]?\d", re.IGNORECASE)
_NO_SIGNIFICANT_BITS = 10  # evalf's precision (bits) of a difference it could not tell from 0


def _exactly_zero(difference: sympy.Expr) -> bool:
    """Whether a constant difference of two exact forms is 0: evaluated to 30 significant digits (sympy raises
    the working precision until it has them), a nonzero difference is found however large both sides are
    (2^{100} - 1 vs 2^{100}); a true zero that sympy cannot prove comes back as 0 or a Float without a
    significant bit (`-0.e-164`, _prec 1)."""
    value = sympy.N(difference, 30)
    if value.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return False
    for part in value.as_real_imag():
        if part == 0 or (isinstance(part, sympy.Float) and part._prec < _NO_SIGNIFICANT_BITS):
            continue
        return False
    return True


def _values_close(first: sympy.Expr, second: sympy.Expr, rel_tol: float, abs_tol: float) -> bool:
    """Real and imaginary parts within (rel_tol, abs_tol), in sympy Floats (any exponent: 10^{400} is not
    float('inf'), so two overflowing values are never equal by inf == inf)."""
    a, b = sympy.N(first, 30), sympy.N(second, 30)
    if any(x.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) for x in (a, b)):
        return False
    for x, y in zip(a.as_real_imag(), b.as_real_imag()):
        if not (x.is_number and y.is_number and x.is_finite and y.is_finite):
            return False
        if bool(abs(x - y) > max(rel_tol * max(abs(x), abs(y)), abs_tol)):
            return False
    return True


def expressions_equal(pred: str, gold: str, rel_tol: float, abs_tol: float) -> bool:
    """Whether two normalized answers are the same expression (run it under a deadline).

    Constants: sympy proves the difference zero; else when neither side is written with a decimal point or
    e-notation both are exact and are equal only when their difference is exactly 0 (`_exactly_zero`; a
    relative tolerance would call 2^{100}-1 and 2^{100} equal), and a measured side agrees within
    (rel_tol, abs_tol) (`_values_close`).
    With free symbols: the difference expands or simplifies to 0 (x^3 + 2x^2 + x == x(x+1)^2).
    """
    try:
        first, second = to_sympy(pred), to_sympy(gold)
    except NotConvertible:
        return False
    if first.has(sympy.zoo, sympy.nan) or second.has(sympy.zoo, sympy.nan):
        return False  # 1/0 is no answer
    difference = first - second
    if difference == 0 or sympy.expand(difference) == 0:
        return True
    if not first.free_symbols and not second.free_symbols:
        if not (_MEASURED.search(pred) or _MEASURED.search(gold)):
            return _exactly_zero(difference)  # exact values compare exactly, never with a tolerance
        return _values_close(first, second, rel_tol, abs_tol)
    return sympy.simplify(difference) == 0


def equations_equal(pred: tuple[str, str], gold: tuple[str, str]) -> bool:
    """Whether `lhs = rhs` pairs describe the same equation: lhs - rhs agree up to a nonzero constant
    factor (9x^2 - 16y^2 = 144 is x^2/16 - y^2/9 = 1)."""
    try:
        first = to_sympy(pred[0]) - to_sympy(pred[1])
        second = to_sympy(gold[0]) - to_sympy(gold[1])
    except NotConvertible:
        return False
    if sympy.expand(first - second) == 0 or sympy.simplify(first - second) == 0:
        return True
    if second == 0:
        return False
    ratio = sympy.simplify(first / second)
    return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
