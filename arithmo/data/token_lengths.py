"""Token-length percentiles per source, so a user can pick `max_seq_length` before training (issue 14).

    stats = token_lengths(records, "HuggingFaceTB/SmolLM2-135M-Instruct")   # when the recipe names one

Each SFT record is rendered and tokenized exactly as training does it (`arithmo.prompts.render_sft` with
template "auto", training's default, then `arithmo.prompts.tokenize_sft`: one BOS, the end-of-turn token
generation stops on), so a row counted over a limit here is one `long_rows` handles at training start.
Percentiles use numpy's default (linear) interpolation and are reported as integers rounded up, so a
`max_seq_length` at the p99 figure holds at least 99% of a source's rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arithmo.io import DataError

PERCENTILES = (50, 90, 95, 99)
# common max_seq_length values, and the long-CoT presets' 8K/16K/32K: rows longer than each are counted
LIMITS = (512, 1024, 2048, 4096, 8192, 16384, 32768)


def load_tokenizer(name: str) -> Any:
    """The recipe's `tokenizer:` through the resolver every model name goes through (arithmo.model.load_tokenizer:
    hub id, local folder, .gguf file or embedded alias such as smollm2-135m-instruct); DataError otherwise."""
    from arithmo.model import ModelError, load_tokenizer as load_model_tokenizer

    try:
        return load_model_tokenizer(name)
    except (ModelError, OSError, ValueError) as err:
        raise DataError(f"tokenizer: cannot load {name!r} ({err}). Offline? Point `tokenizer:` at a local "
                        "folder, or download it once.") from err


def _stats(values: np.ndarray) -> dict[str, int]:
    out = {f"p{p}": int(np.ceil(np.percentile(values, p))) for p in PERCENTILES}
    out["max"] = int(values.max())
    return out


def token_lengths(records: list[dict], tokenizer: Any, name: str | None = None) -> dict[str, Any]:
    """{"tokenizer", "template", "by_source": {source: {rows, prompt, completion, total, over}}}.

    `prompt`/`completion`/`total` hold p50/p90/p95/p99/max token counts; `over` counts rows whose total is
    above each of LIMITS. Sources with reasoning traces (long CoT) add `reasoning` (the same statistics of the
    trace's own tokens: the trace-length distribution) and `rows_with_reasoning`. `tokenizer` is a loaded tokenizer, or a name for `load_tokenizer`.
    """
    from arithmo.prompts import render_sft, tokenize_sft

    if isinstance(tokenizer, str):
        name, tokenizer = tokenizer, load_tokenizer(tokenizer)
    by_source: dict[str, list[tuple[int, int]]] = {}
    traces: dict[str, list[int]] = {}
    for record in records:
        ids, completion_mask = tokenize_sft(render_sft(record, tokenizer, "auto"), tokenizer)
        by_source.setdefault(record["source"], []).append((len(ids) - sum(completion_mask), len(ids)))
        if record.get("reasoning"):  # the trace alone, as the think block holds it (long CoT)
            traces.setdefault(record["source"], []).append(
                len(tokenizer(record["reasoning"], add_special_tokens=False)["input_ids"]))
    out: dict[str, Any] = {}
    for source in sorted(by_source):
        lengths = np.array(by_source[source], dtype=np.int64)
        prompt, total = lengths[:, 0], lengths[:, 1]
        out[source] = {"rows": int(len(lengths)), "prompt": _stats(prompt), "completion": _stats(total - prompt),
                       "total": _stats(total), "over": {str(n): int((total > n).sum()) for n in LIMITS}}
        if source in traces:
            out[source]["reasoning"] = _stats(np.array(traces[source], dtype=np.int64))
            out[source]["rows_with_reasoning"] = len(traces[source])
    return {"tokenizer": name or getattr(tokenizer, "name_or_path", None), "template": "auto",
            "percentiles": list(PERCENTILES), "by_source": out}
