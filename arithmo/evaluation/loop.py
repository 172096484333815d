"""`evaluate_items`: score an already loaded model on a list of EvalItems (no config objects, no reloading).

    predictions, metrics = evaluate_items(model, tokenizer, items, "pot", max_new_tokens=256)

The training demo calls it before and after training; `arithmo.eval.evaluate(cfg)` calls it with a
predictions file so that a rerun resumes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from arithmo.evaluation.metrics import compute_metrics
from arithmo.evaluation.outputs import annotate
from arithmo.evaluation.predict import predict
from arithmo.evaluation.scoring import STYLES
from arithmo.evaluation.store import append_lines, resume_from
from arithmo.generate import generate
from arithmo.prompts import POT_HINTS, stable_rng, stop_strings


def evaluate_items(
    model: Any,
    tokenizer: Any,
    items: list[dict],
    style: str,
    *,
    template: str = "auto",
    pot_hint: str = POT_HINTS[0],
    k: int = 1,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    stop: list[str] | None = None,
    program_timeout_s: float = 5.0,
    workers: int | None = None,
    grade_timeout_s: float = 2.0,
    seed: int = 0,
    max_tool_calls: int = 4,
    backend: str = "auto",
    predictions_path: str | Path | None = None,
    resume: bool = True,
    save_every: int = 64,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Generate, run, grade; returns (prediction lines for all items, metrics).

    Greedy decoding gives `accuracy`; with k > 1, k completions sampled at `temperature` also give maj@k,
    reported beside it. With `predictions_path`, lines are appended every `save_every` items, and with
    `resume` the items already there are not run again (metrics are then computed over all items).
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    if not items:
        raise ValueError("items: nothing to evaluate (an empty list)")
    if k < 1:
        raise ValueError(f"k: expected >= 1 (1 = greedy only), got {k}")
    if k > 1 and temperature <= 0:
        raise ValueError(f"k={k} samples need temperature > 0 (got {temperature}); greedy samples are all the same")
    if save_every < 1:
        raise ValueError(f"save_every: expected >= 1, got {save_every}")
    started = time.perf_counter()
    stop = stop_strings(tokenizer, template) if stop is None else stop
    keep_stop: tuple[str, ...] = ()
    if style == "tir":  # hand a code block to the interpreter at its closing fence (kept in the text)
        from arithmo.evaluation.tir import TIR_KEEP, TIR_STOPS

        stop, keep_stop = [*stop, *TIR_STOPS], TIR_KEEP
    lines: list[dict[str, Any]] = []
    todo = items
    resumed = None
    if predictions_path is not None:
        predictions_path = Path(predictions_path)
        predictions_path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            resumed = resume_from(predictions_path, [item["id"] for item in items], style, k)
            lines.extend(resumed.lines)
            todo = [item for item in items if item["id"] not in resumed.done_ids]
        else:
            predictions_path.write_text("")
        if progress and resumed is not None and resumed.done_ids:
            print(f"[eval] resuming: {len(resumed.done_ids)} of {len(items)} items already in {predictions_path}"
                  f" ({resumed.redo_items} partial items redone, {resumed.truncated_lines} cut-short line dropped,"
                  f" {resumed.other_lines} lines of other items kept)", file=sys.stderr)

    # One sandbox pool for the whole run: its worker processes start once (~0.6 s each: they import sympy
    # and numpy), not once per chunk.
    sandbox = None
    run = open_session = None
    if style in ("pot", "hybrid", "tir") and todo:
        from arithmo.sandbox import Sandbox

        sandbox = Sandbox(workers=workers)

        def run(programs: list[str]) -> list[Any]:
            return sandbox.run(programs, timeout_s=program_timeout_s)

        def open_session() -> Any:  # TIR: one interpreter per solution, each block with its own time limit
            return sandbox.session(timeout_s=program_timeout_s)

    decoding = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, batch_size=batch_size,
                    stop=stop, keep_stop=keep_stop, backend=backend)
    settings = dict(tokenizer=tokenizer, template=template, pot_hint=pot_hint, run=run,
                    grade_timeout_s=grade_timeout_s, open_session=open_session if style == "tir" else None,
                    tir={"max_tool_calls": max_tool_calls, "max_new_tokens": max_new_tokens} if style == "tir" else None)
    # Greedy lines do not depend on how items are grouped into chunks (generate batches them by batch_size in
    # order either way), so with k=1 each batch is saved and shown as it ends; sampled lines (k > 1) keep chunks
    # of save_every items, whose first item seeds the chunk's samples.
    step = min(save_every, max(batch_size, 1)) if k == 1 else save_every
    done = 0
    saved = predictions_path is not None and predictions_path.is_file() and predictions_path.stat().st_size > 0
    # Within a chunk of several batches (k > 1), a line per batch at most every PROGRESS_EVERY_S seconds (and the
    # first): progress from the first item, not after save_every items.
    if progress and step > batch_size:
        decoding["on_batch"] = _BatchProgress(len(items) - len(todo))
    if progress and todo:
        print(f"[eval] {len(items) - len(todo)}/{len(items)} items; generating {len(todo)} in batches of "
              f"{min(step, len(todo))}" + (f", saved to {predictions_path} as each ends" if predictions_path else ""),
              file=sys.stderr, flush=True)
    try:
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            if "on_batch" in decoding:
                decoding["on_batch"].chunk(start + len(items) - len(todo), len(chunk), len(items))
            new_lines = _predict_chunk(model, tokenizer, chunk, style, k, seed, decoding, settings)
            if predictions_path is not None:
                append_lines(predictions_path, new_lines)
                saved = True
            lines.extend(new_lines)
            done = start + len(chunk)
            if progress:
                rate = done / (time.perf_counter() - started)
                print(f"[eval] {len(items) - len(todo) + done}/{len(items)} items "
                      f"({rate:.2f} items/s)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        # Ctrl-C: the finished batches are already on disk; say so and where, then stop (the CLI exits 130)
        kept = len(items) - len(todo) + done
        in_flight = min(step, len(todo) - done)
        if predictions_path is None:
            where = "not saved (no predictions file)"
        elif kept and saved:
            where = f"saved in {predictions_path}; run the same command again to continue from there"
        else:
            where = f"nothing saved yet ({predictions_path} not written)"
        lost = (f"; the {in_flight} item(s) being generated are dropped (a batch is generated whole) and are "
                "generated again on resume" if in_flight > 0 else "")
        print(f"\n[eval] Ctrl-C: {kept} of {len(items)} items done, {where}{lost}", file=sys.stderr, flush=True)
        raise
    finally:
        if sandbox is not None:
            sandbox.close()

    metrics = compute_metrics(items, lines, style=style, k=k, temperature=temperature if k > 1 else None,
                              grade_timeout_s=grade_timeout_s)
    if style == "tir":
        from arithmo.evaluation.tir import tir_metrics

        metrics["tir"] = tir_metrics(items, lines)
    metrics["resumed_items"] = len(resumed.done_ids) if resumed else 0
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    order = {item["id"]: index for index, item in enumerate(items)}
    lines.sort(key=lambda line: (order[line["id"]], -1 if line["sample"] is None else line["sample"]))
    return lines, metrics


PROGRESS_EVERY_S = 15.0


class _BatchProgress:
    """`on_batch` for generate: a line per forward batch inside a chunk, at most every PROGRESS_EVERY_S."""

    def __init__(self, before: int) -> None:
        self.first, self.size, self.total, self.last = before, 0, 0, 0.0

    def chunk(self, first: int, size: int, total: int) -> None:
        self.first, self.size, self.total, self.last = first, size, total, 0.0

    def __call__(self, done: int, prompts: int) -> None:
        now = time.perf_counter()
        if self.last and now - self.last < PROGRESS_EVERY_S and done < prompts:
            return
        self.last = now
        print(f"[eval]   items {self.first + 1}-{self.first + self.size} of {self.total}: generated {done}/{prompts} "
              "prompts of this pass", file=sys.stderr, flush=True)


def _predict_chunk(model: Any, tokenizer: Any, chunk: list[dict], style: str, k: int, seed: int,
                   decoding: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Prediction lines for one chunk of items: each item's greedy line, then its k sampled ones."""
    # A seed per chunk, derived from its first item rather than a counter: chunks do not replay one
    # random stream, and the same chunk gets the same samples in any run (batched sampling still depends
    # on which prompts share a batch, so a resumed run's later chunks may differ from an unbroken run's).
    chunk_seed = stable_rng(seed, chunk[0]["id"]).randrange(2**31)

    def complete(prompts: list[str], num_samples: int, sampled: bool,
                 max_new_tokens: int | None = None) -> list[list[str]]:
        return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens or decoding["max_new_tokens"],
                        temperature=decoding["temperature"] if sampled else 0.0, top_p=decoding["top_p"],
                        num_samples=num_samples, batch_size=decoding["batch_size"], stop=decoding["stop"],
                        seed=chunk_seed, backend=decoding["backend"], keep_stop=decoding["keep_stop"],
                        on_batch=decoding.get("on_batch"))

    # annotate: tokens, finish and truncated from each Completion (arithmo.evaluation.outputs), before saving
    lines = [annotate(line) for line in predict(chunk, style, complete, [None], **settings)]
    if k == 1:
        return lines
    by_item: dict[str, list[dict]] = {}
    for line in predict(chunk, style, complete, list(range(k)), **settings):
        by_item.setdefault(line["id"], []).append(annotate(line))
    return [line for greedy in lines for line in [greedy, *by_item[greedy["id"]]]]
