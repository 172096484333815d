"""The parts the long chain-of-thought adapters share: splitting a reasoning trace from its answer, and mapping a
trace's tool-call markup to arithmo's TIR format.

- `split_trace(text)`: DeepSeek-R1-style output, `<think>\\n{reasoning}\\n</think>\\n\\n{answer}` (OpenR1-Math's
  `generations`, OpenMathReasoning's `generated_solution`), into (reasoning, answer) -- the two halves of a record
  that `arithmo.thinking` renders back into the template's own think block -- or a drop reason.
- `tir_markup(text)`: OpenMathReasoning's TIR split wraps each code block in `<tool_call>` ... `</tool_call>`
  (NeMo-Skills' `openmath` code tags: code_begin `<tool_call>`, code_end `</tool_call>`, output in a
  ```` ```output ```` fence; github.com/NVIDIA/NeMo-Skills, nemo_skills/prompt/code_tags/openmath.yaml). arithmo's
  TIR format (`arithmo.prompts`: ```` ```python ```` block, then the interpreter's ```` ```output ```` block) is
  what training masks (`tir_output_spans`) and what evaluation hands to the interpreter (`CODE_END`), so each
  tool call becomes a ```` ```python ```` block; the output fences are already arithmo's. The harness that wrote
  the split also appended a ```` ```system ```` block after each output block ("Remaining code executions: N. ..."
  or "You have run out of code executions! ..."; NeMo-Skills' `format_code_output` in
  nemo_skills/code_execution/utils.py). arithmo's interpreter never writes one, so trained as model text it would
  teach the model to write the harness's notes itself: `tir_markup` removes every such block.

Both are linear in the text (str.find scans, no backtracking) and refuse texts over MAX_TRACE_CHARS.
"""

from __future__ import annotations

from arithmo.thinking import THINK_CLOSE, THINK_OPEN

# The longest trace read: OpenR1-Math's generations reach ~16K tokens (its card: generated with a 16K budget);
# ~4 characters a token, with room. A longer text is dropped as `trace_too_long`, never scanned.
MAX_TRACE_CHARS = 400_000

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
SYSTEM_FENCE = "```system"  # the harness's note after an output block (module docstring)
_FENCES = ("```python\n", "```py\n", "```\n")


def split_trace(text: str) -> tuple[str, str] | str:
    """(reasoning, answer) of a `<think>...</think> answer` text, or the drop reason: `trace_too_long`,
    `trace_no_think` (no `</think>`: not a reasoning trace), `trace_unclosed` (`<think>` never closed: cut off
    while thinking), `trace_nested_think` (a second think tag: where the answer starts is ambiguous),
    `empty_reasoning`, `empty_answer` (nothing after the block: the trace has no answer to learn)."""
    if len(text) > MAX_TRACE_CHARS:
        return "trace_too_long"
    close = text.find(THINK_CLOSE)
    if close < 0:
        return "trace_unclosed" if THINK_OPEN in text else "trace_no_think"
    opened = text.find(THINK_OPEN)
    start = opened + len(THINK_OPEN) if 0 <= opened < close else 0
    if text[:max(opened, 0)].strip():  # text before <think>: not the R1 layout
        return "trace_nested_think"
    reasoning, answer = text[start:close], text[close + len(THINK_CLOSE):]
    if THINK_OPEN in reasoning or THINK_OPEN in answer or THINK_CLOSE in answer:
        return "trace_nested_think"
    reasoning, answer = reasoning.strip(), answer.strip()
    if not reasoning:
        return "empty_reasoning"
    if not answer:
        return "empty_answer"
    return reasoning, answer


def think_tag_reason(reasoning: str, answer: str) -> str | None:
    """`trace_nested_think` when a trace or its answer holds a think tag of its own (`<think>` or `</think>`: the
    rendered block would end early, or evaluation would read the answer after the wrong tag), else None. The check
    `split_trace` makes, for sources whose trace and answer come apart already (s1K-1.1, LIMO)."""
    if THINK_OPEN in reasoning or THINK_CLOSE in reasoning or THINK_OPEN in answer or THINK_CLOSE in answer:
        return "trace_nested_think"
    return None


def _unfence(code: str) -> str:
    """The code inside a tool call: without a ```python (```py, ```) fence when the call holds one."""
    body = code.strip("\n")
    for fence in _FENCES:
        if body.startswith(fence):
            body = body[len(fence):]
            end = body.rfind("```")
            return body[:end].rstrip("\n") if end >= 0 else body.rstrip("\n")
    return body.rstrip("\n")


def drop_system_blocks(text: str) -> str | None:
    """`text` without its ```` ```system ```` blocks (a fence line opening with ```` ```system ```` through the next
    closing ```` ``` ```` line, its newline included): the TIR harness's notes, not the model's text (module
    docstring). None when such a block is never closed. One forward scan (str.find), linear in the text."""
    out, pos = [], 0
    while True:
        start = text.find(SYSTEM_FENCE, pos)
        while start > 0 and text[start - 1] != "\n":  # a fence opens a line; a mention inside a line is text
            start = text.find(SYSTEM_FENCE, start + 1)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        close = text.find("\n```", start + len(SYSTEM_FENCE))
        if close < 0:
            return None
        end = text.find("\n", close + 4)
        out.append(text[pos:start])
        pos = len(text) if end < 0 else end + 1


def tir_markup(text: str) -> tuple[str, int] | str:
    """(text with every `<tool_call>` block rewritten as a ```` ```python ```` block and every ```` ```system ````
    block removed (`drop_system_blocks`), blocks rewritten), or the drop reason `tir_unclosed_tool_call` (a call
    never closed: generation was cut inside it), `tir_unclosed_system_block` or `trace_too_long`.

    `<tool_call>\\n```python\\nx = 1\\nprint(x)\\n```\\n</tool_call>\\n```output\\n1\\n```` becomes
    ```` ```python\\nx = 1\\nprint(x)\\n```\\n```output\\n1\\n``` ````: the code block's closing fence and newline
    (`arithmo.prompts.CODE_END`) directly before the output block, as evaluation's interpreter writes it."""
    if len(text) > MAX_TRACE_CHARS:
        return "trace_too_long"
    text = drop_system_blocks(text)
    if text is None:
        return "tir_unclosed_system_block"
    out, pos, count = [], 0, 0
    while True:
        start = text.find(TOOL_OPEN, pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = text.find(TOOL_CLOSE, start + len(TOOL_OPEN))
        if end < 0:
            return "tir_unclosed_tool_call"
        out.append(text[pos:start])
        code = _unfence(text[start + len(TOOL_OPEN):end])
        out.append(f"```python\n{code}\n```\n")
        count += 1
        pos = end + len(TOOL_CLOSE)
        if text.startswith("\n", pos):  # the newline after </tool_call>: the block above already ends in one
            pos += 1
    return "".join(out), count


def trace_stats(records) -> dict[str, dict]:
    """Per source, the reasoning traces of built SFT records: {source: {rows, with_reasoning, chars: {p50, p90, p99,
    max}}} (characters; token counts are in the manifest's `token_lengths` when the recipe names a tokenizer).
    Sources without any trace are left out. `records`: any iterable of records (read once)."""
    from array import array

    lengths: dict[str, array] = {}
    rows: dict[str, int] = {}
    for record in records:
        rows[record["source"]] = rows.get(record["source"], 0) + 1
        if record.get("reasoning"):
            lengths.setdefault(record["source"], array("q")).append(len(record["reasoning"]))
    return trace_stats_from(lengths, rows)


def trace_stats_from(lengths: dict, rows: dict[str, int]) -> dict[str, dict]:
    """`trace_stats` from each source's trace lengths in characters (sequences of ints, 8 bytes a trace in an
    array) and its record count: what the streaming build collects as it writes records."""
    import numpy as np

    out = {}
    for source in sorted(lengths):
        values = np.asarray(lengths[source], dtype=np.int64)
        chars = {f"p{p}": int(np.ceil(np.percentile(values, p))) for p in (50, 90, 99)}
        chars["max"] = int(values.max())
        out[source] = {"rows": rows[source], "with_reasoning": int(len(values)), "chars": chars}
    return out
