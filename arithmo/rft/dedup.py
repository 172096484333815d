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
  equation, so the model is not trained on wrong arithmetic that happened to end well. Each equation is read with
  `ast` and computed over exact fractions by our own walker (numbers and + - * / ** only; nothing is evaluated).
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


def wrong_equations(text: str) -> list[str]:
    """The equations of a CoT solution whose arithmetic is wrong (those that cannot be checked are not listed)."""
    return [equation for equation in equation_list(text) if equation_holds(equation) is False]


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
