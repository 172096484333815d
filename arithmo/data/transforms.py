"""Row transforms: the standard answer line, PoT programs that print, lowercasing (hints: prompts.py).

Each returns the new text and what it did, so the build can count every action in the manifest.
"""

from __future__ import annotations

import ast
import random
import re

from arithmo.prompts import ANSWER_PREFIX

# "The answer is: X" / "The answer is X." as the last line (MetaMath writes the colon, MathInstruct's
# CoT rows often do not).
# The answer may not run on into another sentence (". " inside), so "The answer is not obvious. We
# compute ..." is not an answer line.
_ANSWER_LINE = re.compile(
    r"(?:^|\n|(?<=[.!?])[ \t]+)[ \t]*The (?:final )?answer is:?[ \t]*(?P<answer>(?:(?!\.\s)[^\n])+?)[ \t]*\.?[ \t]*$",
    re.IGNORECASE,
)
# GSM8K's tail: "#### 72" on the last line.
_HASH_TAIL = re.compile(r"(?:^|\n)[ \t]*####[ \t]*(?P<answer>[^\n]+?)[ \t]*$")


def format_cot_answer(solution: str, source_answer: str | None = None) -> tuple[str, str | None, str]:
    """Make a CoT solution end with 'The answer is: X'.

    Returns (completion, answer, action), action one of:
    'kept' (already in form), 'normalized' (an 'answer is' line reworded), 'folded_hash' (GSM8K's
    '#### X' tail replaced), 'appended' (an answer found elsewhere, e.g. the last \\boxed{}, added as
    a last line), 'appended_source_answer' (none in the text, but the source states it, e.g.
    OpenMathInstruct-2's expected_answer), 'no_answer' (nothing to put there; the completion is unchanged).
    """
    text = solution.rstrip()
    # Both patterns end at $ and cross no newline after their start, so a match lies in the last line: the
    # search starts at the last newline (lookbehinds still see what precedes it). Same matches, without
    # scanning a whole solution (bench/bench_data.py: the format stage).
    last_line = max(text.rfind("\n"), 0)
    match = _HASH_TAIL.search(text, last_line)
    if match:
        answer = match.group("answer").strip()
        body = text[: match.start()].rstrip()
        return f"{body}\n{ANSWER_PREFIX}{answer}" if body else f"{ANSWER_PREFIX}{answer}", answer, "folded_hash"
    match = _ANSWER_LINE.search(text, last_line)
    if match:
        answer = match.group("answer").strip()
        line = f"{ANSWER_PREFIX}{answer}"
        if text[match.start():].strip() == line:
            return text, answer, "kept"
        body = text[: match.start()].rstrip()
        return (f"{body}\n{line}" if body else line), answer, "normalized"
    from arithmo.grading.extract import extract_answer  # boxed answers and other strict markers

    answer = extract_answer(text, mode="strict")
    if answer:
        return f"{text}\n{ANSWER_PREFIX}{answer}", answer, "appended"
    if source_answer and source_answer.strip():
        return f"{text}\n{ANSWER_PREFIX}{source_answer.strip()}", source_answer.strip(), "appended_source_answer"
    return text, None, "no_answer"


def ensure_print(program: str) -> tuple[str, str]:
    """Make a PoT program print its result; returns (program, action).

    Sources store some programs that compute `answer = ...` (or end in a bare expression) and print
    nothing; the sandbox reads stdout, so those get a print. Actions: 'kept', 'print_added',
    'unparsable' (left as is: a syntax error that verification will catch), 'no_result' (nothing to print).
    """
    if re.search(r"\bprint\s*\(", program):
        return program, "kept"
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return program, "unparsable"
    if not tree.body:
        return program, "no_result"
    last = tree.body[-1]
    if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Constant):
        lines = program.rstrip().split("\n")
        start, end = last.lineno - 1, last.end_lineno
        expression = "\n".join(lines[start:end])
        return "\n".join(lines[:start] + [f"print({expression})"] + lines[end:]), "print_added"
    assigned = [t.id for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)]
    for name in ("answer", "ans", "result", "solution"):
        if name in assigned:
            return f"{program.rstrip()}\nprint({name})", "print_added"
    if isinstance(last, ast.Assign) and isinstance(last.targets[0], ast.Name):
        return f"{program.rstrip()}\nprint({last.targets[0].id})", "print_added"
    return program, "no_result"


def maybe_lowercase(question: str, share: float, rng: random.Random) -> tuple[str, bool]:
    if share > 0 and rng.random() < share:
        return question.lower(), True
    return question, False
