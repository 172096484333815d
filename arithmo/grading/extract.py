"""Find the answer in a model's completion: the final answer line, `\\boxed{}`, GSM8K `####`, a program.

Strict mode reads only explicit answer markers, so a completion that never commits to an answer gets
None (counted as "no answer" in metrics). Flexible mode falls back to the last number in the text,
the lm-evaluation-harness "flexible-extract" idea for GSM8K; metrics report both separately.
"""

from __future__ import annotations

import ast
import re
from typing import Literal

from arithmo.grading.normalize import find_braced

# "The answer is: X" (MetaMath / Arithmo final line, Yu et al. 2023) and "The answer is X." (MathInstruct
# CoT rows, Minerva's "The final answer is X"). Case-insensitive; the value runs to the end of the line.
_ANSWER_IS = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\b[ \t]*(?P<colon>:)?[ \t]*(?P<rest>[^\n]*)",
                        re.IGNORECASE)
# A sentence ends at a full stop followed by space ("5. I hope it is correct."): 2.5 is not cut.
_SENTENCE_END = re.compile(r"\.\s+(?=\S)")
_NEXT_SENTENCE = re.compile(r"\.\s+(?=[A-Z][a-z])")
# Without a colon the value must look like an answer, so "The answer is not obvious" is not one: a
# digit or math character, or one word ("C", "odd", "Friday").
_MATH_CHARACTER = re.compile(r"[\d\\^=+*/()\[\]{}<>|]")
_ONE_WORD = re.compile(r"^[A-Za-z]+$")
# Three words in a row (outside LaTeX commands) are a sentence, not an answer ("5 square feet" is two).
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}")
# GSM8K's final line "#### 72" (Cobbe et al. 2021).
_HASH_LINE = re.compile(r"####[ \t]*(?P<rest>[^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
# The last number: optional sign (not a subtraction: "5-3" ends in 3), thousands groups, decimals, a/b.
_NUMBER = re.compile(r"(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|(?<!\d)\.\d+")

# Tokens a chat model emits to end its turn; anything after one is not part of the completion.
CHAT_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<|end_of_text|>")
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython"}
# A first line that only a program starts with (used when a program does not parse, e.g. truncated).
_CODE_START = re.compile(r"^(?:import\s+\w|from\s+[\w.]+\s+import\s|def\s+\w+\s*\(|class\s+\w|print\s*\("
                         r"|for\s+\w+\s+in\s|while\s|if\s.*:\s*$|[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*=[^=])")


def _clean_value(value: str) -> str | None:
    """Trim what surrounds an answer on its line: `\\boxed{}`, `$`, a closing full stop ("is 5.")."""
    boxed = _last_boxed(value)
    if boxed is not None:
        value = boxed[1]
    for _ in range(2):  # "$5$." and "5.$": the full stop and the math delimiters in either order
        value = value.strip().rstrip(".").strip().strip("$")
    return value.strip() or None


def _answer_is_candidates(text: str) -> list[tuple[int, str]]:
    found = []
    for match in _ANSWER_IS.finditer(text):
        rest = match.group("rest")
        if match.group("colon"):
            # after a colon the line is the answer, up to a trailing sentence ("I hope it is correct.")
            rest = _NEXT_SENTENCE.split(rest, maxsplit=1)[0]
        else:
            rest = _SENTENCE_END.split(rest, maxsplit=1)[0]
        value = _clean_value(rest)
        if value is None:
            continue
        if not match.group("colon") and _PROSE.search(value):
            continue  # "The final answer is positive, because two of the three numbers ..." explains
        if not match.group("colon") and not _MATH_CHARACTER.search(value):
            # a word answer without a colon only where the phrase opens a sentence ("The answer is C."),
            # so "we check whether the answer is correct" is not an answer
            before = text[: match.start()].rstrip(" \t")
            if not (_ONE_WORD.match(value) and (before == "" or before[-1] in "\n.!?:")):
                continue
        found.append((match.start(), value))
    return found


def _last_boxed(text: str) -> tuple[int, str] | None:
    """(position, content) of the last complete `\\boxed{...}` / `\\boxed X` / `\\fbox{...}` in `text`."""
    for match in reversed(list(_BOXED.finditer(text))):
        after = match.end()
        while after < len(text) and text[after] in " \t":
            after += 1
        if after < len(text) and text[after] == "{":
            close = find_braced(text, after)
            if close is None:
                continue  # cut off mid-answer (generation hit its length limit): not an answer
            content = text[after + 1: close].strip()
        else:
            token = re.match(r"[^\s$]+", text[after:])  # `\boxed 5`: the argument is one token
            if after == match.end() or token is None:
                continue
            content = token.group(0).rstrip(".,")
        if content:
            return match.start(), content
    return None


def _hash_candidates(text: str) -> list[tuple[int, str]]:
    found = []
    for match in _HASH_LINE.finditer(text):
        value = _clean_value(match.group("rest"))
        if value is not None:
            found.append((match.start(), value))
    return found


def extract_answer(text: str, mode: Literal["strict", "flexible"] = "strict") -> str | None:
    """The final answer stated in `text`, or None.

    Strict: the explicit marker that comes last in the text among 'The answer is: X' / 'The answer is
    X.', `\\boxed{X}` (nested braces; also `\\boxed X` and `\\fbox{X}`) and GSM8K's `#### X`.
    Flexible: the same, else the last number in the text. Text after a chat end token is ignored.
    """
    if mode not in ("strict", "flexible"):
        raise ValueError(f"extract_answer mode must be 'strict' or 'flexible', got {mode!r}")
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a str completion, got {type(text).__name__}")
    text = _strip_chat_end(text)
    candidates = _answer_is_candidates(text) + _hash_candidates(text)
    boxed = _last_boxed(text)
    if boxed is not None:
        candidates.append(boxed)
    if candidates:
        return max(candidates, key=lambda found: found[0])[1]
    if mode == "strict":
        return None
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _strip_chat_end(completion: str) -> str:
    cut = len(completion)
    for token in CHAT_END_TOKENS:
        index = completion.find(token)
        if index != -1:
            cut = min(cut, index)
    return completion[:cut]


def _is_program(code: str) -> bool:
    """Whether `code` is a program rather than prose or a lone value."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: source with a NUL byte
        first = next((line.strip() for line in code.splitlines() if line.strip()), "")
        return bool(_CODE_START.match(first))
    lone_value = (ast.Constant, ast.Name, ast.UnaryOp, ast.BinOp)
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, lone_value)) for node in tree.body)


def extract_program(completion: str) -> str | None:
    """The Python program in a program-of-thought completion, or None when it holds no code.

    The first ```python (or unlabelled) fenced block that is a program wins; an unclosed fence (the
    generation ran out of tokens) runs to the end. Without fences, the completion itself when it is
    code, after dropping leading prose lines. Text after a chat end token (`<|im_end|>`) is dropped.
    """
    if not isinstance(completion, str):
        raise TypeError(f"extract_program expects a str completion, got {type(completion).__name__}")
    text = _strip_chat_end(completion)
    if "```" in text:
        for match in _FENCE.finditer(text):
            body = match.group("body").strip("\n")
            if match.group("lang").lower() in _CODE_LANGS and body.strip() and _is_program(body):
                return body.rstrip()
        return None
    lines = text.strip("\n").splitlines()
    for start, line in enumerate(lines):
        if start > 0 and not _CODE_START.match(line.strip()):
            continue  # after leading prose, the program starts on a line only code starts with
        rest = "\n".join(lines[start:]).rstrip()
        if rest.strip() and _is_program(rest):
            return rest
    return None


def answer_from_output(stdout: str) -> str | None:
    """The answer a program printed: its last non-empty output line, stripped; None when it printed nothing."""
    if stdout is None:
        return None
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else None
