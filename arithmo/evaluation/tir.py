"""Tool-integrated reasoning (TIR) evaluation: generate until a code block closes, run it in the sandbox, append
its output block, continue; at most `max_tool_calls` rounds and `max_new_tokens` in all.

    lines = predict_tir(items, complete, samples, tokenizer=tok, template="chat", run=sandbox_run, ...)

Each round generates, for every solution still going, a continuation of (prompt + solution so far) that stops
at "```output" (the stop string is added by the caller); when the text then ends with a closed ```python block,
that block is run with the solution's earlier successful blocks run first, silently, so variables persist across
blocks (ToRA, Gou et al. 2024, and Qwen2.5-Math's executor concatenate earlier code the same way); its output
(or error line, or "timed out") is appended as a ```output block (`arithmo.prompts.output_block`). A solution ends when
the model writes no new block, the round limit is reached, or its token budget is spent. The answer is read from
the whole text with the chain-of-thought rules (`read_cot`: `\\boxed{}`, "The answer is"); every item stays in the
denominator. Programs run only in the sandbox; the earlier blocks are part of the jailed program's own text.
"""

from __future__ import annotations

from typing import Any

from arithmo.evaluation.scoring import base_line, grade_answer, read_cot
from arithmo.prompts import output_block, pending_code, render_eval

TIR_STOP = "```output"  # the model starts an output block itself: stop there, the interpreter writes it


def program_for(earlier: list[str], code: str) -> str:
    """The sandboxed program for `code`: the solution's earlier successful blocks run first with their printing
    discarded (their outputs are already in the text), then `code` as written."""
    if not earlier:
        return code
    return ("import io as _arithmo_io, sys as _arithmo_sys\n"
            "_arithmo_out, _arithmo_sys.stdout = _arithmo_sys.stdout, _arithmo_io.StringIO()\n"
            + "\n".join(block.rstrip("\n") for block in earlier) + "\n"
            "_arithmo_sys.stdout = _arithmo_out\n" + code)


def shown_output(result: Any) -> str:
    """What the model sees of a run: the output, else the error line (as ToRA/Qwen show the last traceback line)."""
    if result.timed_out:
        return (result.stdout + "\n" if result.stdout else "") + (result.error or "timed out")
    if result.error:
        return (result.stdout + "\n" if result.stdout else "") + result.error
    return result.stdout


def predict_tir(items: list[dict], complete: Any, samples: list[int | None], *, tokenizer: Any, template: str,
                run: Any, grade_timeout_s: float, max_tool_calls: int = 4,
                max_new_tokens: int | None = None) -> list[dict[str, Any]]:
    """Graded TIR prediction lines, one per item per entry of `samples` ([None]: greedy; [0..k-1]: sampled).

    `complete(prompts, num_samples, sampled)` continues each prompt (one completion each after the first round);
    `run(programs)` runs programs in the sandbox. Each line adds `tool_calls` (one record per executed block:
    code, output shown, error, timed_out) and `stopped` (answered | no_code | max_tool_calls | token_budget).
    """
    sampled = samples != [None]
    prompts = [render_eval(item["question"], "tir", tokenizer, template) for item in items]
    first = complete(prompts, len(samples), sampled)
    states = []
    for item, prompt, texts in zip(items, prompts, first):
        for sample, text in zip(samples, texts):
            states.append({"item": item, "prompt": prompt, "sample": sample, "text": text, "calls": [],
                           "ok_blocks": [], "stopped": None})
    for _round in range(max_tool_calls + 1):
        active = [s for s in states if s["stopped"] is None]
        runnable = []
        for state in active:
            code = pending_code(state["text"])
            if code is None:
                state["stopped"] = "answered" if read_cot(state["text"])[0] is not None else "no_code"
            elif len(state["calls"]) >= max_tool_calls:
                state["stopped"] = "max_tool_calls"
            elif max_new_tokens is not None and tokenizer is not None and \
                    len(tokenizer(state["text"], add_special_tokens=False)["input_ids"]) >= max_new_tokens:
                state["stopped"] = "token_budget"
            else:
                runnable.append((state, code))
        if not runnable:
            break
        results = run([program_for(state["ok_blocks"], code) for state, code in runnable])
        for (state, code), result in zip(runnable, results):
            shown = shown_output(result)
            state["calls"].append({"code": code, "output": shown, "error": result.error,
                                   "timed_out": bool(result.timed_out)})
            if result.error is None and not result.timed_out:
                state["ok_blocks"].append(code)
            state["text"] = state["text"].rstrip() + "\n" + output_block(shown)
        continued = complete([state["prompt"] + state["text"] for state, _ in runnable], 1, sampled)
        for (state, _), texts in zip(runnable, continued):
            state["text"] += texts[0]
    lines = []
    for state in states:
        item = state["item"]
        line = base_line(item, "tir", state["sample"], state["prompt"], state["text"])
        strict, flexible = read_cot(state["text"], item["answer"])
        line.update(extracted=strict, extracted_flexible=flexible,
                    correct=grade_answer(strict, item["answer"], grade_timeout_s),
                    tool_calls=state["calls"], stopped=state["stopped"] or "max_tool_calls")
        line["correct_flexible"] = line["correct"] if flexible == strict else grade_answer(
            flexible, item["answer"], grade_timeout_s)
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
