"""Metrics over prediction lines, the printed table, and the accuracy chart.

Every item counts in every denominator: an item with no answer, a crashed or timed-out program, or (after
an interrupted run) no prediction line at all is wrong, never dropped; the last case is reported as
`missing_predictions`. Beside arithmo's verdicts: math-verify's on the same greedy answers
(`accuracy_math_verify`, `math_verify`: arithmo.evaluation.second_opinion) and a 95% Wilson interval for
every accuracy (`ci95`: arithmo.evaluation.intervals).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from arithmo.evaluation.intervals import intervals_of, metric_intervals
from arithmo.evaluation.outputs import length_stats, truncated_rate
from arithmo.evaluation.passk import sampled_metrics
from arithmo.evaluation.scoring import grade_answer, majority_vote
from arithmo.evaluation.second_opinion import second_opinion


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0


def _breakdown(items: list[dict], correct: dict[str, bool], key: str) -> dict[str, dict[str, Any]]:
    """{value of meta[key]: {n, correct, accuracy}}; empty when no item has the key, 'unknown' for the rest."""
    if not any(key in item.get("meta", {}) for item in items):
        return {}
    groups: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        groups[str(item.get("meta", {}).get(key, "unknown"))].append(correct[item["id"]])
    return {name: {"n": len(flags), "correct": sum(flags), "accuracy": _rate(sum(flags), len(flags))}
            for name, flags in sorted(groups.items())}


def compute_metrics(items: list[dict], lines: list[dict], *, style: str, k: int = 1,
                    temperature: float | None = None, grade_timeout_s: float = 2.0) -> dict[str, Any]:
    """The metrics.json numbers for `items` from their prediction `lines` (greedy + k sampled each).

    `accuracy` and the rates are over greedy completions; `maj_k` (when k > 1) votes over the k sampled
    completions' strict answers. `accuracy_math_verify` is math-verify's verdict on the same greedy answers
    (for PoT the program's answer), each pair under `grade_timeout_s`; `math_verify` holds its counts and
    every item where it and arithmo disagree (second_opinion.py). `ci95` holds the 95% Wilson interval of
    every accuracy, overall and per level and type (intervals.py). math-verify's cost, measured on the 2-core
    dev machine: 1.2 ms per GSM8K answer, 5.9 ms per MATH answer (test_dev500 golds), ~0.8 s to import once.
    """
    import arithmo.grading as grading

    n = len(items)
    greedy: dict[str, dict] = {}
    samples: dict[str, dict[int, dict]] = defaultdict(dict)
    for line in lines:
        if line.get("sample") is None:
            greedy[line["id"]] = line
        else:
            samples[line["id"]][int(line["sample"])] = line
    missing = [item["id"] for item in items if item["id"] not in greedy]
    chosen = [greedy.get(item["id"]) for item in items]
    answered = [line for line in chosen if line is not None]
    correct = {item["id"]: bool(line and line["correct"]) for item, line in zip(items, chosen)}
    benchmarks = sorted({item["benchmark"] for item in items})
    metrics: dict[str, Any] = {
        "benchmark": "+".join(benchmarks),
        "style": style,
        "n": n,
        "accuracy": _rate(sum(correct.values()), n),
        "accuracy_flexible": _rate(sum(bool(line["correct_flexible"]) for line in answered), n),
        "accuracy_math_verify": None,
        "maj_k": None,
        "no_answer_rate": _rate(sum(line["extracted"] is None for line in answered) + len(missing), n),
        "exec_error_rate": None,
        "exec_timeout_rate": None,
        "by_level": _breakdown(items, correct, "level"),
        "by_type": _breakdown(items, correct, "type"),
        "grader_version": grading.GRADER_VERSION,
        "correct": sum(correct.values()),
        "missing_predictions": len(missing),
    }
    opinion = second_opinion([(item["id"], line["extracted"] if line else None, item["answer"], correct[item["id"]])
                              for item, line in zip(items, chosen)], grade_timeout_s=grade_timeout_s)
    metrics["accuracy_math_verify"] = opinion.pop("accuracy")
    metrics["math_verify"] = opinion
    if style in ("pot", "hybrid"):
        # Of all n items: the greedy program raised (error) or ran past its time limit (timeout); a
        # completion with no program at all is counted separately as no_program_rate.
        execs = [line["exec"] for line in answered if line["exec"] is not None]
        metrics["exec_error_rate"] = _rate(sum(bool(e["error"]) and not e["timed_out"] for e in execs), n)
        metrics["exec_timeout_rate"] = _rate(sum(bool(e["timed_out"]) for e in execs), n)
        metrics["no_program_rate"] = _rate(sum(line["program"] is None for line in answered) + len(missing), n)
    if style == "hybrid":
        metrics["cot_fallback_rate"] = _rate(sum(line.get("fallback") is not None for line in answered), n)
    if k > 1:
        voted_correct = 0
        voted_none = 0
        for item in items:
            answers = [samples[item["id"]][j]["extracted"] if j in samples[item["id"]] else None for j in range(k)]
            vote = majority_vote(answers, grade_timeout_s=grade_timeout_s)
            voted_none += vote is None
            voted_correct += grade_answer(vote, item["answer"], grade_timeout_s, (item.get("meta") or {}).get("compare"))
        metrics["maj_k"] = {"k": k, "temperature": temperature, "accuracy": _rate(voted_correct, n),
                            "correct": voted_correct, "no_answer_rate": _rate(voted_none, n)}
        # avg@k (with its interval over items) and unbiased pass@k over the same k samples (passk.py)
        metrics.update(sampled_metrics(items, samples, k))
    metrics["truncated_rate"] = truncated_rate(answered, n)
    metrics["lengths"] = length_stats(list(lines))
    metrics["ci95"] = metric_intervals(metrics)
    return metrics


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_interval(interval: list[float] | None) -> str:
    """`[62.8, 84.2]`: a 95% interval in percent, or `-` without one."""
    return "-" if interval is None else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def format_seeds(spread: dict[str, Any]) -> str:
    """One line: maj@k's mean, std, min and max over the seeds of `maj_k_seeds` (intervals.seed_spread)."""
    std = "-" if spread["std"] is None else f"{100 * spread['std']:.1f}p"
    seeds = ", ".join(str(seed) for seed in spread["seeds"])
    return (f"maj@{spread['k']} over {len(spread['seeds'])} seeds ({seeds}): mean {_percent(spread['mean'])}, "
            f"std {std}, min {_percent(spread['min'])}, max {_percent(spread['max'])}")


def format_sampled(metrics: dict[str, Any]) -> list[str]:
    """Lines for avg@k with its interval, pass@k', the sampled completions' no-answer and truncated rates, the
    greedy truncated rate and the length statistics; [] for what a metrics.json (of any age) lacks."""
    lines = []
    avg = metrics.get("avg_k")
    if avg:
        passes = ", ".join(f"pass@{kk} {_percent(v)}" for kk, v in (metrics.get("pass_k") or {}).items())
        spread = "" if avg.get("std_over_samples") is None else f", std over samples {100 * avg['std_over_samples']:.1f}p"
        lines.append(f"avg@{avg['k']} {_percent(avg['accuracy'])} {format_interval(avg.get('ci95'))}{spread}; "
                     f"{passes}; sampled: no answer {_percent(avg.get('no_answer_rate'))}, truncated "
                     f"{_percent(avg.get('truncated_rate'))}")
    if metrics.get("truncated_rate") is not None:
        lines.append(f"greedy truncated (stopped at max_new_tokens or inside <think>): "
                     f"{_percent(metrics['truncated_rate'])}")
    lengths = metrics.get("lengths") or {}
    if (lengths.get("all") or {}).get("n"):
        def one(part: dict) -> str:
            return "-" if not part.get("n") else f"{part['mean']:.0f} mean / {part['median']:.0f} median / {part['max']} max"
        lines.append(f"tokens per completion: all {one(lengths['all'])}; correct {one(lengths['correct'])}; "
                     f"wrong {one(lengths['wrong'])}")
    return lines


def format_table(metrics: dict[str, Any]) -> str:
    """A short text table: the headline numbers with their 95% Wilson intervals, math-verify's accuracy and
    the items it disagrees on, maj@k over seeds, and the level/type breakdowns with intervals."""
    maj = metrics.get("maj_k")
    ci = intervals_of(metrics)
    head = ["benchmark", "style", "n", "accuracy", "95% CI", "flexible", f"maj@{maj['k']}" if maj else "maj@k",
            "95% CI", "no answer", "exec error", "timeout"]
    row = [metrics["benchmark"], metrics["style"], str(metrics["n"]), _percent(metrics["accuracy"]),
           format_interval(ci["accuracy"]), _percent(metrics["accuracy_flexible"]),
           _percent(maj["accuracy"]) if maj else "-", format_interval(ci["maj_k"]),
           _percent(metrics["no_answer_rate"]), _percent(metrics["exec_error_rate"]),
           _percent(metrics["exec_timeout_rate"])]
    widths = [max(len(a), len(b)) for a, b in zip(head, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join(r.ljust(w) for r, w in zip(row, widths))]
    opinion = metrics.get("math_verify") or {}
    if opinion.get("skipped"):
        lines.append(f"math-verify: not run ({opinion['skipped']})")
    elif opinion:
        lines.append(f"math-verify {opinion['version']}: {_percent(metrics['accuracy_math_verify'])} "
                     f"{format_interval(ci['accuracy_math_verify'])}; disagrees with arithmo on "
                     f"{opinion['disagreements']} of {metrics['n']} items"
                     + (f" ({opinion['timed_out']} timed out)" if opinion["timed_out"] else "")
                     + (f" ({opinion['failed']} failed)" if opinion["failed"] else ""))
    lines.extend(format_sampled(metrics))
    if metrics.get("maj_k_seeds"):
        lines.append(format_seeds(metrics["maj_k_seeds"]))
    for key in ("by_level", "by_type"):
        groups = metrics.get(key) or {}
        if groups:
            width = max(len(name) for name in groups)
            lines.append(f"{key.replace('_', ' ')}:")
            lines.extend(f"  {name.ljust(width)}  {g['correct']:>5}/{g['n']:<5} {_percent(g['accuracy']):>6}  "
                         f"{format_interval(ci[key].get(name))}" for name, g in groups.items())
    return "\n".join(lines)


def _bars(ax, names: list[str], groups: dict[str, dict], intervals: dict[str, list[float] | None]) -> None:
    """Bars of accuracy (%) with their 95% intervals as error bars."""
    values = [100 * groups[name]["accuracy"] for name in names]
    below = [100 * (groups[name]["accuracy"] - intervals[name][0]) if intervals.get(name) else 0 for name in names]
    above = [100 * (intervals[name][1] - groups[name]["accuracy"]) if intervals.get(name) else 0 for name in names]
    ax.bar(range(len(names)), values, color="#4c72b0", yerr=[below, above], capsize=3, ecolor="#333333")
    for x, value in enumerate(values):
        ax.text(x + 0.05, value + 1, f"{value:.0f}", ha="left", fontsize=7)


def plot_accuracy(metrics: dict[str, Any], path: str | Path) -> Path:
    """A PNG bar chart of accuracy by level and by type (or the headline numbers when neither exists), each
    bar with its 95% Wilson interval as an error bar."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    ci = intervals_of(metrics)
    panels = [(title, metrics[key], ci[key]) for key, title in (("by_level", "by level"), ("by_type", "by type"))
              if metrics.get(key)]
    if not panels:
        overall = {"strict": {"accuracy": metrics["accuracy"]}, "flexible": {"accuracy": metrics["accuracy_flexible"]}}
        bounds = {"strict": ci["accuracy"], "flexible": ci["accuracy_flexible"]}
        if metrics.get("maj_k"):
            name = f"maj@{metrics['maj_k']['k']}"
            overall[name], bounds[name] = {"accuracy": metrics["maj_k"]["accuracy"]}, ci["maj_k"]
        panels = [("overall", overall, bounds)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 + 2.5 * len(panels), 4), squeeze=False)
    for ax, (title, groups, bounds) in zip(axes[0], panels):
        names = list(groups)
        _bars(ax, names, groups, bounds)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("accuracy (%), 95% interval")
        ax.set_title(f"{metrics['benchmark']} {metrics['style']}: {title}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
