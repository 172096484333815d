"""`predict`: the style dispatch above the scoring rules (scoring.py) and the tool-integrated loop (tir.py).

    lines = predict(items, "pot", complete, [None], tokenizer=tok, template="auto", pot_hint=hint,
                    run=box.run, grade_timeout_s=2.0)

One-pass styles (cot, pot, hybrid) generate once and grade (`scoring.predict_text`); `tir` alternates generation
and the sandbox (`tir.predict_tir`). It lives above both so that neither imports the other's caller.
"""

from __future__ import annotations

from typing import Any

from arithmo.evaluation.scoring import STYLES, Complete, RunPrograms, predict_text
from arithmo.evaluation.tir import predict_tir


def predict(items: list[dict], style: str, complete: Complete, samples: list[int | None], *, tokenizer: Any,
            template: str, pot_hint: str, run: RunPrograms | None, grade_timeout_s: float,
            tir: dict[str, Any] | None = None, open_session: Any = None) -> list[dict[str, Any]]:
    """Graded prediction lines, one per item per entry of `samples` ([None] = the greedy completion,
    [0..k-1] = k sampled ones), grouped by item.

    `complete(prompts, num_samples, sampled) -> [[text] * num_samples per prompt]`; `run(programs) ->
    [ExecResult]` (a sandbox runner; required by pot and hybrid); `open_session() -> a sandbox session` (required
    by tir: one interpreter per solution). `tir` holds the TIR loop's own knobs.
    Raises ValueError for an unknown style or a missing runner.
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    if style == "tir":  # its own loop: generate, run each code block, append its output, continue
        if open_session is None:
            raise ValueError("style=tir runs code blocks: pass `open_session` (a sandbox session factory)")
        return predict_tir(items, complete, samples, tokenizer=tokenizer, template=template,
                           open_session=open_session, grade_timeout_s=grade_timeout_s, **(tir or {}))
    return predict_text(items, style, complete, samples, tokenizer=tokenizer, template=template,
                        pot_hint=pot_hint, run=run, grade_timeout_s=grade_timeout_s)
