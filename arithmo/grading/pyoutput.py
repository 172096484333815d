"""Read the value a Python program printed as a math answer: lists, tuples, dicts, sets, complex
numbers, numpy 2 and sympy reprs, written back as the LaTeX-style text the grader compares.

`print(x)` writes `str(x)`: a sympy `solve` list is `[2, 3]`, numpy 2 scalars inside a list are
`[np.float64(18.0)]` (NEP 51: numpy >= 2 reprs scalars with their type), a numpy array is `[3. 2.]`
(no commas, numpy's array str), a Python complex is `(1+3j)`, a sympy complex `1 + 3*I`, sympy
writes `sqrt(3)/2`, `3*pi/4`, `oo`, `{x: 3}`, `Interval.open(0, 1)`, `FiniteSet` as `{1, 2}`.

Safety: the printed text comes from a model-written program and is never evaluated. It is parsed
with `ast.parse(mode="eval")` and the tree is walked over an allow-list of node types and call
names (`_CALLS`); anything else makes the reader give up (the caller then keeps the text as it is).

Rules (each is a test row in tests/test_grading_pyoutput.py):
- A list or a set is the list of its items, in any order (sympy's `solve` returns the roots as a
  list: `[2, 3]` is "2, 3"); one item is that item (`[5]` is 5, `{x: 3}` is 3); empty is no answer.
- A tuple keeps its order and brackets (`(1, 2)` is a point or an interval); a dict of several
  symbols is the tuple of its values in the order of their NAMES (`{y: 1, x: 2}` is (2, 1), as (x, y); issue 25
  review: printed order paired y's value with x); a dict keyed by
  numbers is sympy's `roots()` (root: multiplicity), so its keys are the answer (`{-1: 1, 2: 1}`).
- A 2-D numpy array or sympy Matrix is a pmatrix; a 1-D array is a list; a plain list of lists is a
  list of tuples (`[[1, 2], [3, 4]]` is "(1, 2), (3, 4)").
- Complex numbers use `i`: `(1+3j)` and `1 + 3*I` are `1+3i`.
- Text Python never prints as a value stays text: `2112_6` (str(int) writes no underscore: a base-6 number)
  and `[-3,2]` (str(list) writes ", ": a typed interval).
"""

from __future__ import annotations

import ast
import math
import re

from arithmo.grading.latex_text import name_order

_MAX_CHARS = 4000  # a printout longer than this is not one answer (and ast.parse cost stays small)
_MAX_LINES = 60    # a numpy matrix printed over several lines: at most this many are joined
_DIGIT_UNDERSCORE = re.compile(r"\d_\d")
_UNSPACED_COMMA = re.compile(r",(?=[^\s])")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")  # 1,000 from f"{x:,}" is a number, not (1, 0)
# numpy's array str: `[3. 2.]`, `[[1 2]\n [3 4]]`, `[ 1.5 -2. ]`, `[1.+2.j 3.-1.j]`, `[True False]`
# Each item is matched on its own (the text split at brackets and whitespace first): a pattern for the whole
# printout with ambiguous digit runs (`\d+\.?\d*`) backtracked exponentially on `print(*range(10, 50), "cm")`.
# Every part below is unambiguous: digits, then an optional point and digits, then an optional exponent.
_NUMPY_REAL = r"(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?|nan|inf)"
_NUMPY_ITEM = re.compile(r"(?:[-+]?" + _NUMPY_REAL + r"(?:[-+]" + _NUMPY_REAL + r"j)?|True|False)", re.IGNORECASE)
_ARRAY_SEPARATOR = re.compile(r"[\[\]\s]+")
_SPACES = re.compile(r"[ \t]+")


def _all_items(parts: list[str]) -> bool:
    return bool(parts) and all(_NUMPY_ITEM.fullmatch(part) for part in parts)


def _is_numpy_str(text: str) -> bool:
    """Whether `text` is numpy's array str (`[3. 2.]`, `[[1 2]\n [3 4]]`): items between brackets and spaces."""
    return _all_items([part for part in _ARRAY_SEPARATOR.split(text) if part])


def _is_spaced_numbers(text: str) -> bool:
    """Whether `text` is several numbers separated by spaces on one line (`print(2, 3)` writes `2 3`)."""
    parts = _SPACES.split(text)
    return len(parts) > 1 and "\n" not in text and _all_items(parts)


class NotReadable(ValueError):
    """The text is not a Python value this reader handles."""


class _Matrix(list):
    """Rows of a numpy array or sympy Matrix (rendered as pmatrix, not as a list)."""


class _Interval(tuple):
    """(left bracket, start, end, right bracket) of a sympy Interval."""


# Calls whose printed form is the value of their arguments (numpy 2 scalar reprs, exact-number types).
_NUMBER_TYPES = {"float16", "float32", "float64", "float128", "longdouble", "half", "single", "double",
                 "int8", "int16", "int32", "int64", "intc", "intp", "uint8", "uint16", "uint32", "uint64",
                 "uintp", "complex64", "complex128", "complex256", "clongdouble", "bool", "bool_", "str_",
                 "Integer", "Float", "Decimal", "mpf", "float", "int"}
_FUNCTIONS = {"sqrt": "\\sqrt", "sin": "\\sin", "cos": "\\cos", "tan": "\\tan", "asin": "\\arcsin",
              "acos": "\\arccos", "atan": "\\arctan", "log": "\\ln", "ln": "\\ln"}
_NAMES = {"pi": "\\pi", "E": "e", "I": "i", "oo": "\\infty", "inf": "\\infty", "True": "True", "False": "False"}
_NO_ANSWER_NAMES = {"nan", "zoo", "None", "NaN"}


def _call_name(node: ast.expr) -> str:
    """`np.float64` -> float64, `sp.Interval.open` -> Interval.open, `Rational` -> Rational."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise NotReadable("a call on something that is not a name")
    parts.append(node.id)
    parts.reverse()
    if parts[0] in ("np", "numpy", "sp", "sympy", "S", "mpmath", "math", "fractions", "decimal") and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def _interval(name: str, args: list) -> _Interval:
    start, end = args[0], args[1]
    left_open = name in ("Interval.open", "Interval.Lopen") or (len(args) > 2 and args[2] == "True")
    right_open = name in ("Interval.open", "Interval.Ropen") or (len(args) > 3 and args[3] == "True")
    # an infinite end is always open (sympy prints Interval(-oo, 3) for (-oo, 3])
    left = "(" if left_open or start == "-\\infty" else "["
    right = ")" if right_open or end == "\\infty" else "]"
    return _Interval((left, start, end, right))


def _value(node: ast.expr):
    """A Python-side value: str (an expression in LaTeX-style text), list, tuple, set-like list,
    _Matrix, _Interval or dict; NotReadable for anything outside the allow-list."""
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.Name):
        return _name(node.id)
    if isinstance(node, ast.Attribute):  # np.True_, np.pi
        return _value(ast.Name(id=_call_name(node).split(".")[-1]))
    if isinstance(node, (ast.List, ast.Set)):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise NotReadable("** in a dict")
        return {_expression(_value(key)): _value(value) for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _expression(_value(node.operand))
        if isinstance(node.op, ast.UAdd):
            return operand
        return "-" + (f"({operand})" if _needs_brackets(operand, "*", right=True) else operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        return _inequality_system(node)
    if isinstance(node, ast.BinOp):
        return _binary(node)
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Call):
        return _call(node)
    raise NotReadable(f"{type(node).__name__} is not a printed value")


def _name(name: str) -> object:
    if name in _NO_ANSWER_NAMES:
        raise NotReadable(f"{name} is no answer")
    if name == "EmptySet":
        return []
    if name in ("True_", "False_"):
        return name.rstrip("_")
    if name in _NAMES:
        return _NAMES[name]
    if re.fullmatch(r"[A-Za-z](?:_\w+)?|[a-z]{2,}", name):
        return name  # a symbol (x, x_1) or a word printed as a string (odd)
    raise NotReadable(f"the name {name!r} is not a value")


_SIGNS = {ast.Lt: "<", ast.LtE: "\\le ", ast.Gt: ">", ast.GtE: "\\ge ", ast.NotEq: "\\ne ", ast.Eq: "="}


def _compare(node: ast.Compare) -> str:
    """`x >= 3` (a Python or sympy relation) as `x\\ge 3`."""
    parts = [_expression(_value(node.left))]
    for operator, right in zip(node.ops, node.comparators):
        if type(operator) not in _SIGNS:
            raise NotReadable(f"the comparison {type(operator).__name__}")
        parts += [_SIGNS[type(operator)], _expression(_value(right))]
    return "".join(parts)


def _inequality_system(node: ast.BinOp) -> str:
    """sympy's `(3 <= x) & (x < oo)` is `3 \\le x`; `(1 < x) & (x < 3)` is `1 < x < 3`."""
    bounds = []
    for side in (node.left, node.right):
        if not (isinstance(side, ast.Compare) and len(side.ops) == 1):
            raise NotReadable("& of something that is not one comparison")
        left, right = _expression(_value(side.left)), _expression(_value(side.comparators[0]))
        if left in ("-\\infty", "\\infty") or right in ("-\\infty", "\\infty"):
            continue  # x < oo says nothing
        if isinstance(side.ops[0], (ast.Gt, ast.GtE)):  # x > 1 is 1 < x
            left, right = right, left
            sign = "<" if isinstance(side.ops[0], ast.Gt) else "\\le "
        elif isinstance(side.ops[0], (ast.Lt, ast.LtE)):
            sign = "<" if isinstance(side.ops[0], ast.Lt) else "\\le "
        else:
            raise NotReadable("& of an equation")
        bounds.append((left, sign, right))
    if len(bounds) == 1:
        return "".join(bounds[0])
    if len(bounds) == 2:
        first, second = bounds if bounds[0][2] == bounds[1][0] else bounds[::-1]
        if first[2] == second[0]:  # low < x and x < high: the same variable in the middle
            return f"{first[0]}{first[1]}{first[2]}{second[1]}{second[2]}"
    raise NotReadable("a system that is not one interval")


def _constant(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise NotReadable("nan is no answer")
        return "\\infty" if value == math.inf else repr(value)
    if isinstance(value, complex):
        real, imag = _constant(value.real), _constant(value.imag)
        imaginary = {"1.0": "i", "-1.0": "-i"}.get(imag, f"{_integral(imag)}i")
        if value.real == 0:
            return imaginary
        return f"{_integral(real)}{'' if imaginary.startswith('-') else '+'}{imaginary}"
    if isinstance(value, str):
        return value.strip()
    raise NotReadable(f"a {type(value).__name__} constant")


def _integral(text: str) -> str:
    """`3.0` -> `3` (Python writes a complex's parts as floats: 3j has imag 3.0)."""
    return text[:-2] if text.endswith(".0") else text


_PRECEDENCE = {"+": 1, "-": 1, "*": 2}


# A power's base that needs no brackets: a number, a letter, a constant or one command group (\\sqrt{2}).
_ATOM = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]|\\[a-zA-Z]+(?:\{[^{}]*\})?")


def _is_bracketed(text: str) -> bool:
    """Whether one pair of round brackets encloses all of `text`."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for index, char in enumerate(text):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth == 0 and index < len(text) - 1:
            return False
    return True


def _needs_brackets(text: str, operator: str, right: bool = False) -> bool:
    """Whether `text` must be bracketed as an operand of `operator` (+, - or *): a sum inside a
    product, a negative right operand (`x\\cdot (-2)`, `x-(-2)`)."""
    depth, level = 0, 4
    for index, char in enumerate(text):
        depth += 1 if char in "({[" else -1 if char in ")}]" else 0
        if depth == 0 and char in "+-" and index > 0 and text[index - 1] not in "e^{(":
            level = min(level, 1)
        elif depth == 0 and (char == "*" or text.startswith("\\cdot", index)):
            level = min(level, 2)
    if text.startswith("-") and right:
        return True
    return level < _PRECEDENCE[operator]


def _binary(node: ast.BinOp) -> str:
    left, right = _expression(_value(node.left)), _expression(_value(node.right))
    if isinstance(node.op, (ast.Add, ast.Sub)):
        sign = "+" if isinstance(node.op, ast.Add) else "-"
        if sign == "-" and _needs_brackets(right, "*", right=True):
            right = f"({right})"
        if sign == "+" and right.startswith("-"):
            return f"{left}{right}"  # 1 + -3j
        return f"{left}{sign}{right}"
    if isinstance(node.op, ast.Mult):
        left = f"({left})" if _needs_brackets(left, "*") else left
        right = f"({right})" if _needs_brackets(right, "*", right=True) else right
        # 3*I is 3i, 2*sqrt(3) is 2\\sqrt{3}, 2*(x+1) is 2(x+1): a number before a letter, a command or a
        # bracket needs no sign (nor does the i after a closing bracket or a digit)
        if ((re.fullmatch(r"-?\d+(?:\.\d+)?", left) and re.match(r"[a-zA-Z\\(]", right))
                or (right == "i" and left[-1] in "})0123456789")):
            return left + right
        return f"{left}\\cdot {right}"
    if isinstance(node.op, ast.Div):
        return f"\\frac{{{left}}}{{{right}}}"
    if isinstance(node.op, ast.Pow):
        left = left if _ATOM.fullmatch(left) or _is_bracketed(left) else f"({left})"
        return f"{left}^{{{right}}}"
    raise NotReadable(f"the operator {type(node.op).__name__}")


def _call(node: ast.Call) -> object:
    name = _call_name(node.func)
    short = name.split(".")[-1]
    args = [_value(arg) for arg in node.args]
    if short in _NUMBER_TYPES and len(args) == 1:
        return args[0]
    if short in ("array", "asarray", "Matrix", "ImmutableMatrix", "ImmutableDenseMatrix", "MutableDenseMatrix") \
            and len(args) == 1 and isinstance(args[0], list):
        rows = args[0]
        return _Matrix(rows) if rows and all(isinstance(row, list) for row in rows) else rows
    if short in ("Rational", "Fraction") and len(args) == 2:
        return f"\\frac{{{_expression(args[0])}}}{{{_expression(args[1])}}}"
    if short in ("FiniteSet", "set", "frozenset"):
        return list(args[0]) if short != "FiniteSet" and args and isinstance(args[0], (list, tuple)) else list(args)
    if name.startswith("Interval") and len(args) >= 2:
        return _interval(name, [_expression(arg) for arg in args])
    if short == "Union" and args and all(isinstance(arg, _Interval) for arg in args):
        return "\\cup".join(_expression(arg) for arg in args)
    if short == "Eq" and len(args) == 2:
        return f"{_expression(args[0])}={_expression(args[1])}"
    if short in _FUNCTIONS and len(args) == 1:
        argument = _expression(args[0])
        return f"\\sqrt{{{argument}}}" if short == "sqrt" else f"{_FUNCTIONS[short]}({argument})"
    if short == "exp" and len(args) == 1:
        return f"e^{{{_expression(args[0])}}}"
    if short == "Abs" and len(args) == 1:
        return f"|{_expression(args[0])}|"
    if short == "factorial" and len(args) == 1:
        return f"({_expression(args[0])})!"
    if short == "binomial" and len(args) == 2:
        return f"\\binom{{{_expression(args[0])}}}{{{_expression(args[1])}}}"
    if short in ("complex", "mpc") and args:
        real, imag = (_expression(arg) for arg in (args + ["0"])[:2])
        return f"{real}{'' if imag.startswith('-') else '+'}{imag}i"
    raise NotReadable(f"the call {name}()")


def _expression(value) -> str:
    """`value` as one answer text; containers become lists, tuples, sets, matrices, intervals."""
    if isinstance(value, str):
        return value
    if isinstance(value, _Interval):
        left, start, end, right = value
        return f"{left}{start}, {end}{right}"
    if isinstance(value, _Matrix):
        rows = [" & ".join(_expression(item) for item in row) for row in value]
        return "\\begin{pmatrix}" + " \\\\ ".join(rows) + "\\end{pmatrix}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_expression(item) for item in value) + ")"
    if isinstance(value, dict):
        if not all(re.fullmatch(r"[A-Za-z]\w*", key) for key in value):
            return _expression(list(value))  # sympy's roots(): {root: multiplicity, ...} lists the roots
        values = [value[key] for key in sorted(value, key=name_order)]  # paired by name, not printed order
        return _expression(values[0]) if len(values) == 1 else _expression(tuple(values))
    if isinstance(value, list):
        if not value:
            raise NotReadable("an empty list is no answer")
        if len(value) == 1:
            return _expression(value[0])
        items = [_expression(item) for item in value]
        if all(isinstance(item, list) and not isinstance(item, _Matrix) for item in value):
            items = ["(" + ", ".join(_expression(x) for x in item) + ")" for item in value]
        return ", ".join(items)
    raise NotReadable(f"a {type(value).__name__}")


def _numpy_str_to_python(text: str) -> str:
    """numpy's array str `[[1 2]\\n [3 4]]` as Python `array([[1, 2], [3, 4]])`."""
    text = re.sub(r"\s+", " ", text.strip())
    text = re.sub(r"\[ ", "[", re.sub(r" \]", "]", text))
    text = re.sub(r"(?<=[\w.\]]) (?=[-+\w.\[])", ", ", text)
    return f"array({text})"


def read_python_value(text: str) -> str:
    """The answer text of one printed Python value (see the module doc); NotReadable when the text
    is not a value this reader knows (the caller keeps the text as it is)."""
    text = text.strip()
    if not text or len(text) > _MAX_CHARS:
        raise NotReadable("empty or too long")
    if _THOUSANDS.match(text):
        raise NotReadable("a number with thousands separators")
    if "[" in text and _UNSPACED_COMMA.search(text):  # str(list) writes ", ": [-3,2] was typed, an interval
        raise NotReadable("a bracket with commas Python does not print")
    if _DIGIT_UNDERSCORE.search(text):  # str(int) never prints 1_000: `2112_6` is a base-6 number, not 21126
        raise NotReadable("digits joined by an underscore (a base subscript)")
    if "[" in text and "," not in text and _is_numpy_str(text):
        text = _numpy_str_to_python(text)
    elif _is_spaced_numbers(text):
        text = "[" + re.sub(r"[ \t]+", ", ", text) + "]"  # print(2, 3) writes "2 3": two values
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise NotReadable(f"not Python: {type(error).__name__}") from error
    try:
        value = _value(tree)
        if isinstance(tree, ast.Tuple) and not text.startswith("("):
            value = list(value)  # `2, 3` printed without brackets is a list, as in a LaTeX answer
        return _expression(value)
    except RecursionError as error:
        raise NotReadable("nested too deeply") from error


def last_printed_value(stdout: str) -> str | None:
    """The text of the last value printed: the last non-empty line, joined with the lines above it
    while its brackets are open (numpy prints a matrix over several lines); None for no output."""
    lines = [line.rstrip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    taken = [lines[-1]]
    for line in reversed(lines[-_MAX_LINES:-1]):
        joined = "\n".join(taken)
        if joined.count("]") + joined.count(")") <= joined.count("[") + joined.count("("):
            break
        taken.insert(0, line)
    return "\n".join(taken).strip()
