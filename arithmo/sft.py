"""SFT data for the training recipe: read built records, pick rows, render and tokenize them for TRL.

Rendering is evaluation's own (`arithmo.prompts.render_sft`: the completion ends with the end-of-turn token
generation stops on) and tokenization carries the completion mask (loss on the completion only; TIR's
interpreter output masked like the prompt).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from arithmo.io import DataError, read_file_rows
from arithmo.runs import RunFolder
from arithmo.settings import TrainError
from arithmo.thinking import ThinkError

log = logging.getLogger("arithmo.train")


def read_sft_file(path: Path) -> list[dict]:
    """SFT records from a JSONL file; a line that is not a record names the file, line and key."""
    rows = []
    try:
        for where, row in read_file_rows(path):
            for key in ("prompt", "completion", "style"):
                if not isinstance(row.get(key), str) or not row[key].strip():
                    raise TrainError(f"{where}: missing or empty '{key}' (SFT records need "
                                     f"id, source, style, prompt, completion)")
            rows.append(row)
    except DataError as err:
        raise TrainError(str(err)) from err
    return rows


def load_training_data(data: str, run: RunFolder, overrides: list[str],
                       into: Path | None = None) -> tuple[list[dict], list[dict], dict]:
    """(train rows, val rows, manifest) from a built folder, or from a recipe YAML built into `into` (default
    <run>/data; a resume builds beside it first, so that a refused resume leaves what the run trained on)."""
    path = Path(data)
    if path.suffix in (".yaml", ".yml"):
        from arithmo.data import build_from_recipe

        if not path.is_file():
            raise TrainError(f"data recipe not found: {path}")
        path = into or run.data
        build_from_recipe(data, path, overrides, log=lambda line: print(line, flush=True))  # its own [data] lines
    if not (path / "train.jsonl").is_file():
        raise TrainError(f"data={data}: expected a built data folder holding train.jsonl, or a recipe YAML (.yaml) "
                         "to build into the run folder (build a folder with python -m arithmo.data build RECIPE --out "
                         "DIR)")
    train_rows = read_sft_file(path / "train.jsonl")
    if not train_rows:
        raise TrainError(f"{path / 'train.jsonl'} holds no rows")
    val_rows = read_sft_file(path / "val.jsonl") if (path / "val.jsonl").is_file() else []
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
    return train_rows, val_rows, manifest


def select_rows(rows: list[dict], styles: list[str], max_rows: int | None) -> list[dict]:
    chosen = [r for r in rows if r["style"] in styles]
    return chosen[:max_rows] if max_rows else chosen


def _answer_token(rendered: dict[str, str], tokenizer: Any) -> int:
    """Index of the first answer token in a rendered record's ids: the token after the think block when the
    completion closes one (long CoT, and a short row's empty block), else the first completion token."""
    from arithmo.prompts import tokenize_sft
    from arithmo.thinking import answer_offset

    at = answer_offset(rendered["completion"]) or 0
    ids, _ = tokenize_sft({"prompt": rendered["prompt"], "completion": rendered["completion"][:at]}, tokenizer)
    return len(ids)


def answer_lost(rendered: dict[str, str], ids: list[int], keep: int, tokenizer: Any, end: str) -> bool:
    """Whether cutting a rendered record's `ids` to their first `keep` tokens loses its final answer.

    Lost when the cut falls before the answer starts (`_answer_token`), or inside the answer and the strict answer
    (`arithmo.grading.extract_answer`: the `The answer is:` line or a `\\boxed{}`) read from the kept answer tokens
    is not the one the whole answer gives -- a `\\boxed{12` or `The answer is: 1` left of `... 12` is a lost answer
    even though some answer tokens were kept. An answer with no strict answer of its own (a program, a science
    row) is lost by any cut inside it. A cut that keeps every answer token (only the end of turn goes) keeps it.
    """
    from arithmo.grading import extract_answer, normalize_answer
    from arithmo.prompts import tokenize_sft
    from arithmo.thinking import answer_offset

    start = _answer_token(rendered, tokenizer)
    if keep <= start:
        return True
    completion = rendered["completion"]
    body = completion[: len(completion) - len(end)] if end and completion.endswith(end) else completion
    body_end = len(tokenize_sft({"prompt": rendered["prompt"], "completion": body}, tokenizer)[0])
    if keep >= body_end:
        return False
    whole = extract_answer(body[(answer_offset(body) or 0):], mode="strict")
    if whole is None:
        return True
    kept = extract_answer(tokenizer.decode(ids[start:keep], skip_special_tokens=True), mode="strict")
    return kept is None or normalize_answer(kept) != normalize_answer(whole)


def render_dataset(rows: list[dict], tokenizer: Any, template: str, max_seq_length: int | None = None,
                   long_rows: str = "drop") -> tuple[Any, dict[str, Any]]:
    """(a datasets.Dataset of {input_ids, completion_mask}, the long-row report) for SFT records.

    Rows are rendered by the function evaluation uses (`render_sft`: the completion ends with the end-of-turn
    token generation stops on) and tokenized here with the BOS rule generation uses (`tokenize_sft`), so TRL
    receives ids and does not re-tokenize (it would add a second BOS to templates that write one, and append
    the tokenizer's eos instead of the template's end of turn). A row longer than `max_seq_length` is dropped,
    truncated or an error (TrainError naming the first ones), by `long_rows`; the report counts them per
    source: {policy, max_seq_length, over_limit: {source: n}, rows, longest, answer_lost: {source: n},
    cut_before_answer: {source: n}}. With long_rows=truncate, a row whose cut loses its final answer (`answer_lost`:
    before the answer, or inside it so that the kept tokens no longer give it) is counted in answer_lost and logged
    as a warning; reasoning traces cut before their answer starts are also counted in cut_before_answer.
    A reasoning record (`reasoning`: long CoT) is rendered with its trace in the template's think block
    (`arithmo.thinking`). A template that cannot take a trace is a TrainError naming the row.
    """
    from datasets import Dataset

    from arithmo.prompts import end_of_turn, render_sft, tir_output_spans, tokenize_sft

    end = end_of_turn(tokenizer, template) if tokenizer is not None else ""
    kept, over, cut, lost, longest = [], {}, {}, {}, 0
    for row in rows:
        try:
            rendered = render_sft(row, tokenizer, template)
        except ThinkError as err:
            raise TrainError(f"row {row.get('id', '?')}: {err}") from err
        # TIR: the interpreter's output blocks are masked like the prompt (the model does not predict them)
        spans = tir_output_spans(rendered["completion"]) if row.get("style") == "tir" else ()
        ids, mask = tokenize_sft(rendered, tokenizer, spans)
        longest = max(longest, len(ids))
        if max_seq_length is not None and len(ids) > max_seq_length:
            over.setdefault(row.get("source", "?"), []).append(row.get("id", "?"))
            if long_rows == "drop":
                continue
            if answer_lost(rendered, ids, max_seq_length, tokenizer, end):
                # The cut loses the final answer (before it starts, or inside it): the row trains a solution that
                # never answers. Counted and warned about, never silently; traces cut before their answer apart.
                lost.setdefault(row.get("source", "?"), []).append(row.get("id", "?"))
                if row.get("reasoning") and _answer_token(rendered, tokenizer) >= max_seq_length:
                    cut.setdefault(row.get("source", "?"), []).append(row.get("id", "?"))
            ids, mask = ids[:max_seq_length], mask[:max_seq_length]
        kept.append({"input_ids": ids, "completion_mask": mask})
    report = {"policy": long_rows, "max_seq_length": max_seq_length, "rows": len(rows),
              "over_limit": {source: len(ids) for source, ids in sorted(over.items())}, "longest": longest,
              "cut_before_answer": {source: len(ids) for source, ids in sorted(cut.items())},
              "answer_lost": {source: len(ids) for source, ids in sorted(lost.items())}}
    if lost:
        first = [row_id for ids in lost.values() for row_id in ids][:5]
        log.warning("%d rows lose their final answer to long_rows=truncate at max_seq_length=%s (per source: %s; "
                    "reasoning traces cut before their answer starts: %s; first: %s): they train a solution that "
                    "never answers; raise model.max_seq_length or use long_rows=drop",
                    sum(report["answer_lost"].values()), max_seq_length, report["answer_lost"],
                    report["cut_before_answer"], ", ".join(first))
    if over and long_rows == "error":
        first = [row_id for ids in over.values() for row_id in ids][:5]
        raise TrainError(f"{sum(report['over_limit'].values())} rows are longer than model.max_seq_length="
                         f"{max_seq_length} tokens (per source: {report['over_limit']}; first: {', '.join(first)}; "
                         f"longest {longest}): raise model.max_seq_length, or long_rows=drop|truncate")
    if not kept:
        raise TrainError(f"every row is longer than model.max_seq_length={max_seq_length} tokens (longest "
                         f"{longest}): raise model.max_seq_length")
    return Dataset.from_list(kept), report
