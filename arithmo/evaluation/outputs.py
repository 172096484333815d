"""What a completion's end says: its length in tokens, whether it was cut off, and length statistics.

    annotate(line)          # line["tokens"], line["finish"], line["truncated"] from the generator's Completion
    length_stats(lines)     # metrics.json's `lengths`: tokens per completion, overall and for correct / wrong

A completion is TRUNCATED when generation stopped at max_new_tokens (`finish == "length"`: transformers ran out
of new tokens without an end-of-turn id or stop string; vLLM's finish_reason "length"), or when it opened a
reasoning block that it never closed (`<think>` without a later `</think>`): such a completion has no answer
(arithmo.grading.extract_answer reads nothing from an unfinished block) and was cut off while thinking. TIR
solutions are truncated when their token budget ran out (`stopped == "token_budget"`). Lines written before
these fields existed have them None and are counted as unknown, never as finished.
"""

from __future__ import annotations

import statistics
from typing import Any

from arithmo.thinking import with_opened_think

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def unfinished_think(text: str) -> bool:
    """True when `text` opens a `<think>` block and no `</think>` follows the last opening (linear time)."""
    opened = text.rfind(_THINK_OPEN)
    return opened != -1 and text.find(_THINK_CLOSE, opened) == -1


def annotate(line: dict[str, Any]) -> dict[str, Any]:
    """Fill `tokens` (new tokens of the completion, or None), `finish` ("stop" | "length" | None) and `truncated`
    into a prediction line, from the arithmo.generate.Completion its completion is (or TIR's own counts), and
    store the completion as plain text. Returns the line."""
    completion = line.get("completion") or ""
    if line.get("style") == "tir" or "new_tokens" in line:
        tokens, finish = line.get("new_tokens"), ("length" if line.get("stopped") == "token_budget" else
                                                  "stop" if line.get("stopped") else None)
    else:
        tokens, finish = getattr(completion, "tokens", None), getattr(completion, "finish", None)
    line["completion"] = str(completion)
    line["tokens"] = tokens
    line["finish"] = finish
    # an R1-distill template opens <think> in the prompt: the completion starts inside the block (arithmo.thinking)
    cut = unfinished_think(with_opened_think(str(line.get("prompt") or ""), line["completion"]))
    line["truncated"] = True if (finish == "length" or cut) else (None if finish is None else False)
    return line


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "max": max(values)}


def length_stats(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """{all, correct, wrong: {n, mean, median, max} of tokens per completion; unknown: lines without a count}
    over every prediction line given (greedy and sampled)."""
    known = [line for line in lines if isinstance(line.get("tokens"), int)]
    return {"all": _summary([line["tokens"] for line in known]),
            "correct": _summary([line["tokens"] for line in known if line.get("correct")]),
            "wrong": _summary([line["tokens"] for line in known if not line.get("correct")]),
            "unknown": len(lines) - len(known)}


def truncated_rate(lines: list[dict[str, Any]], n: int) -> float | None:
    """Share of `n` items whose line is truncated (None when no line records it)."""
    known = [line for line in lines if line.get("truncated") is not None]
    return sum(bool(line["truncated"]) for line in known) / n if known and n else None
