"""A second opinion on every greedy verdict: Hugging Face math-verify's, beside arithmo's.

    opinion = second_opinion(pairs, grade_timeout_s=2.0)   # pairs: [(item id, our answer, gold, our verdict)]
    opinion["accuracy"], opinion["disagreements"], opinion["disagreement_items"]

Peers often publish numbers graded by math-verify (Hugging Face's answer checker), so metrics.json
carries its verdict on the same extracted answers (`accuracy_math_verify`) and lists every item where the
two graders disagree (id, our answer, gold, both verdicts): a reader sees at once whether a gap to a
published number is the model or the grader.

What math-verify sees: our extracted answer (for PoT, the program's answer as `answer_from_output` read
it) and the gold, each wrapped in `\\boxed{}` so that its extraction takes exactly that text, and
`verify(gold, answer)` in that order (verify is not symmetric: math-verify's docstring). An item with no
answer is wrong for both graders without asking it.

Time limit: math-verify's own `parsing_timeout` / `timeout_seconds` use `signal.alarm` (whole seconds),
raise ValueError outside the main thread ("signal only works in main thread", math_verify/grader.py), and
apply to each parse and each comparison separately. So both are switched off (None) and the whole
parse + parse + verify of one pair runs under `arithmo.deadline.call_with_deadline(grade_timeout_s)`:
a SIGALRM timer on the main thread, a killable worker process on any other thread (the worker imports
this module, and with it arithmo.evaluation and torch, once: ~3 s on the 2-core dev machine). A pair
that runs out of time gets False, as math-verify itself answers a timeout, and is counted in `timed_out`.

Cost, measured through compute_metrics on the 2-core dev machine: 1.2 ms per GSM8K answer and 5.9 ms per
MATH answer (the test_dev500 golds; math-verify parses with its ANTLR LaTeX grammar and compares with sympy),
so ~30 s for 5,000 MATH items; ~0.8 s to import math-verify once.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from arithmo.deadline import DeadlineExceeded, call_with_deadline

INSTALL_HINT = "pip install 'math-verify[antlr4_13_2]'"


class _SilenceTimeoutWarning(logging.Filter):
    """Drop math-verify's one-time warning that its own timeout is off: we run it under our deadline."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


def _import_math_verify():
    from math_verify import parse, verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SilenceTimeoutWarning) for f in logger.filters):
            logger.addFilter(_SilenceTimeoutWarning())
    return parse, verify


def availability() -> tuple[str | None, str | None]:
    """(math-verify's version, None) when it can be used, else (None, why not and how to install it)."""
    try:
        _import_math_verify()
    except ImportError as err:
        return None, f"math-verify is not installed ({err}); {INSTALL_HINT}"
    return metadata.version("math-verify"), None


def math_verify_verdict(answer: str, gold: str) -> bool:
    """math-verify's verdict on one pair, with its own (signal-based) time limits off: call it through
    `call_with_deadline` (module level, so that a worker process can import it)."""
    parse, verify = _import_math_verify()
    gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
    answer_parsed = parse(f"\\boxed{{{answer}}}", parsing_timeout=None)
    return bool(verify(gold_parsed, answer_parsed, timeout_seconds=None))


def second_opinion(pairs: list[tuple[str, str | None, str, bool]], *, grade_timeout_s: float) -> dict[str, Any]:
    """math-verify's verdicts on `pairs` [(item id, our extracted answer or None, gold, our verdict)].

    Returns {version, accuracy, correct, compared, no_answer, timed_out, failed, grade_timeout_s, disagreements,
    disagreement_items: [{id, extracted, gold, arithmo, math_verify[, note]}]}; accuracy is over all pairs (a
    missing answer is wrong, as in arithmo's accuracy). Without math-verify installed:
    {version: None, skipped: why, ...} with accuracy None, never a silent gap.
    """
    version, missing = availability()
    result: dict[str, Any] = {"version": version, "accuracy": None, "correct": None, "compared": 0,
                              "no_answer": 0, "timed_out": 0, "failed": 0, "grade_timeout_s": grade_timeout_s,
                              "disagreements": None, "disagreement_items": []}
    if missing is not None:
        result["skipped"] = missing
        return result
    correct = 0
    for item_id, answer, gold, ours in pairs:
        note = None
        if answer is None:
            result["no_answer"] += 1
            theirs = False
        else:
            result["compared"] += 1
            try:
                theirs = bool(call_with_deadline(math_verify_verdict, (answer, gold), grade_timeout_s))
            except DeadlineExceeded:
                result["timed_out"] += 1
                theirs, note = False, f"math-verify ran past {grade_timeout_s} s"
            except RuntimeError as err:  # the worker process failed or died (deadline.py): counted, not fatal
                result["failed"] += 1
                theirs, note = False, f"math-verify failed: {err}"
        correct += theirs
        if theirs != bool(ours):
            row = {"id": item_id, "extracted": answer, "gold": gold, "arithmo": bool(ours), "math_verify": theirs}
            if note:
                row["note"] = note
            result["disagreement_items"].append(row)
    result.update(correct=correct, accuracy=correct / len(pairs) if pairs else 0.0,
                  disagreements=len(result["disagreement_items"]))
    return result
