"""Tool-integrated reasoning (TIR) evaluation: generate until a code block closes, run it in the solution's own
interpreter session in the sandbox, append its output block, continue; at most `max_tool_calls` blocks and
`max_new_tokens` of the model's own text in all.

    lines = predict_tir(items, complete, samples, tokenizer=tok, template="chat", open_session=box.session, ...)

Each round generates, for every solution still going, a continuation of (prompt + solution so far) that stops at
the closing fence of a code block (`arithmo.prompts.CODE_END`, kept in the text: the model writes it and is trained
to, see `tir_output_spans`); when the text then ends with a closed ```python block, that block runs in the
solution's session (`open_session()`: one jailed interpreter per solution, so variables and random generators
persist and each block pays only its own time), and its output (or error line, or "timed out") is appended as an
```output block (`arithmo.prompts.output_block`) that the model did not write and is not charged for. A solution
ends when the model writes no new block, the block limit is reached, or its token budget is spent. The answer is
read from the whole text with the chain-of-thought rules (`read_cot`); every item stays in the denominator.
"""

from __future__ import annotations

from typing import Any

from arithmo.evaluation.scoring import base_line, grade_answer, read_cot
from arithmo.prompts import CODE_ENDS, MAX_TOOL_OUTPUT_CHARS, OUTPUT_FENCE, output_block, pending_code, render_eval

# Generation stops at a closing fence (kept), or where a model opens an output block itself (dropped: the
# interpreter writes it).
TIR_STOPS = (*CODE_ENDS, OUTPUT_FENCE.rstrip("\n"))
TIR_KEEP = CODE_ENDS
# A fence that closes a block of another language (```text) stops generation too; the model then goes on without a
# tool call, at most this many times per solution (each costs budget as well).
MAX_TEXT_FENCES = 8


def shown_output(result: Any) -> str:
    """What the model sees of a run: the output, then the error line (as ToRA/Qwen show the last traceback line) or
    "timed out", within MAX_TOOL_OUTPUT_CHARS: a long printout is cut (at a line end where one is near) so that a
    failure's error line, "the session ended ...", always shows."""
    error = result.error or ("timed out" if result.timed_out else None)
    stdout = result.stdout or ""
    if error is None:
        return stdout
    room = MAX_TOOL_OUTPUT_CHARS - len(error) - 40
    if len(stdout) > room:
        cut = stdout.rfind("\n", max(0, room - 200), max(room, 0))
        cut = cut if cut > 0 else max(room, 0)
        stdout = stdout[:cut].rstrip("\n") + f"\n[... {len(result.stdout) - cut} more characters]"
    return (stdout.rstrip("\n") + "\n" if stdout else "") + error


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of `text` the model wrote: the count generation reported (`arithmo.generate.Completion.tokens`),
    else by tokenizing it (no special tokens), else words (scripted tests without a tokenizer)."""
    if not text:
        return 0
    reported = getattr(text, "tokens", None)
    if reported is not None:
        return int(reported)
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _was_cut(text: Any, produced: int, allowed: int | None) -> bool:
    """Whether a round ended because its token allowance ran out: what generation says (`finish == "length"`), else
    within a token of the allowance (decoded text re-tokenizes to +-1 token)."""
    finish = getattr(text, "finish", None)
    if finish is not None:
        return finish == "length"
    return allowed is not None and produced >= allowed - 1


def predict_tir(items: list[dict], complete: Any, samples: list[int | None], *, tokenizer: Any, template: str,
                open_session: Any, grade_timeout_s: float, max_tool_calls: int = 4,
                max_new_tokens: int | None = None) -> list[dict[str, Any]]:
    """Graded TIR prediction lines, one per item per entry of `samples` ([None]: greedy; [0..k-1]: sampled).

    `complete(prompts, num_samples, sampled, max_new_tokens=None)` continues each prompt (one completion each after
    the first round; `max_new_tokens` then is what is left of that solution's budget); it must stop at `TIR_STOPS`
    and keep `TIR_KEEP` in the text. `open_session()` returns a sandbox session (`.run(code) -> ExecResult`,
    `.alive`, `.close()`); one is opened per solution at its first block and closed at its end; a session that a
    crash or timeout ended is replaced by a fresh one for the next block (its state is gone, as in a restarted
    notebook kernel, and the model sees the error). Each line adds `tool_calls` (one record per executed block:
    code, output shown, error, timed_out), `stopped` (answered | no_code | max_tool_calls | token_budget) and
    `new_tokens` (the model's own tokens, all rounds; the interpreter's output is not counted).
    """
    sampled = samples != [None]
    prompts = [render_eval(item["question"], "tir", tokenizer, template) for item in items]
    first = complete(prompts, len(samples), sampled)
    states = []
    for item, prompt, texts in zip(items, prompts, first):
        for sample, text in zip(samples, texts):
            tokens = count_tokens(tokenizer, text)
            states.append({"item": item, "prompt": prompt, "sample": sample, "text": str(text), "calls": [],
                           "session": None, "stopped": None, "tokens": tokens, "fences": 0,
                           "cut": _was_cut(text, tokens, max_new_tokens)})

    def close(state: dict) -> None:
        if state["session"] is not None:  # a finished solution frees its interpreter at once
            state["session"].close()
            state["session"] = None

    def extend(group: list[dict]) -> None:
        """Continue each solution of `group` with what is left of its own budget (one call per remainder)."""
        by_budget: dict[int | None, list[dict]] = {}
        for state in group:
            left = None if max_new_tokens is None else max_new_tokens - state["tokens"]
            by_budget.setdefault(left, []).append(state)
        for left, members in by_budget.items():
            continued = complete([s["prompt"] + s["text"] for s in members], 1, sampled, max_new_tokens=left)
            for state, texts in zip(members, continued):
                produced = count_tokens(tokenizer, texts[0])
                state["text"] += str(texts[0])
                state["tokens"] += produced
                state["cut"] = _was_cut(texts[0], produced, left)

    try:
        for _round in range(max_tool_calls + MAX_TEXT_FENCES + 1):
            runnable, text_fence = [], []
            for state in (s for s in states if s["stopped"] is None):
                code = pending_code(state["text"])
                spent = max_new_tokens is not None and (state["tokens"] >= max_new_tokens or state["cut"])
                if code is None and read_cot(state["text"], prompt=state["prompt"])[0] is not None:
                    state["stopped"] = "answered"
                elif spent:  # the budget ran out, possibly mid-block or mid-sentence
                    state["stopped"] = "token_budget"
                elif code is None and state["text"].endswith(TIR_KEEP) and state["fences"] < MAX_TEXT_FENCES:
                    state["fences"] += 1  # a ```text (or bare) fence stopped generation: go on, no tool call
                    text_fence.append(state)
                elif code is None:
                    state["stopped"] = "no_code"
                elif len(state["calls"]) >= max_tool_calls:
                    state["stopped"] = "max_tool_calls"
                else:
                    runnable.append((state, code))
                if state["stopped"] is not None:
                    close(state)
            if not runnable and not text_fence:
                break
            for state, code in runnable:
                if state["session"] is None:
                    state["session"] = open_session()
                result = state["session"].run(code)
                shown = shown_output(result)
                state["calls"].append({"code": code, "output": shown, "error": result.error,
                                       "timed_out": bool(result.timed_out)})
                if not getattr(state["session"], "alive", True):  # a crash or timeout ended it: a fresh one next
                    close(state)
                state["text"] = state["text"].rstrip() + "\n" + output_block(shown)
            extend([state for state, _ in runnable] + text_fence)
    finally:
        for state in states:
            close(state)
    lines = []
    for state in states:
        item = state["item"]
        line = base_line(item, "tir", state["sample"], state["prompt"], state["text"])
        strict, flexible = read_cot(state["text"], item["answer"], state["prompt"])  # after an opened think block
        line.update(extracted=strict, extracted_flexible=flexible,
                    correct=grade_answer(strict, item["answer"], grade_timeout_s, line.get("compare")),
                    tool_calls=state["calls"], stopped=state["stopped"] or "max_tool_calls",
                    new_tokens=state["tokens"])
        line["correct_flexible"] = line["correct"] if flexible == strict else grade_answer(
            flexible, item["answer"], grade_timeout_s, line.get("compare"))
        lines.append(line)
    return lines
def tir_metrics(items: list[dict], lines: list[dict]) -> dict[str, Any]:
    """Tool calls per item, the share of calls that failed or timed out, and accuracy by number of calls
    (greedy lines; every item counts, one without a line as 0 calls and wrong)."""
    greedy = {line["id"]: line for line in lines if line.get("sample") is None}
    calls = [len(greedy[item["id"]].get("tool_calls") or []) if item["id"] in greedy else 0 for item in items]
    records = [call for line in greedy.values() for call in (line.get("tool_calls") or [])]
    by_calls: dict[str, dict[str, Any]] = {}
    for item, count in zip(items, calls):
        group = by_calls.setdefault(str(count), {"n": 0, "correct": 0})
        group["n"] += 1
        group["correct"] += int(bool(greedy.get(item["id"], {}).get("correct")))
    for group in by_calls.values():
        group["accuracy"] = group["correct"] / group["n"]
    return {"tool_calls_per_item": sum(calls) / len(items) if items else 0.0,
            "tool_calls": len(records),
            "tool_error_rate": (sum(bool(c["error"]) and not c["timed_out"] for c in records) / len(records)
                                if records else 0.0),
            "tool_timeout_rate": sum(c["timed_out"] for c in records) / len(records) if records else 0.0,
            "accuracy_by_tool_calls": dict(sorted(by_calls.items(), key=lambda kv: int(kv[0]))),
            "stopped": {reason: sum(1 for line in greedy.values() if line.get("stopped") == reason)
                        for reason in ("answered", "no_code", "max_tool_calls", "token_budget")}}
