"""`python -m arithmo.report METRICS_OR_FOLDER [...] [--png PATH | --no-png]`: compare evaluation results.

Each argument is a `metrics.json` file or a folder holding one (an eval output folder). The first one is
the baseline; every other row shows its accuracy and the change in points against the first result on the same
benchmark with the same number of items (no change is shown across benchmarks or item counts, and the report says
so). Every accuracy comes
with its 95% Wilson interval (arithmo.evaluation.intervals; computed from the counts for files written
before metrics.json stored it), then math-verify's accuracy on the same answers, maj@k, maj@k's spread over
seeds where a run had several, and the level and type breakdowns side by side. With k samples per item:
avg@k and its interval, pass@k', the no-answer and truncated rates. Each later result is also compared with
the first of its kind item by item (arithmo.evaluation.paired: McNemar's exact test on the greedy answers, a paired
bootstrap over items for avg@k, per benchmark), or the report says why the two cannot be paired.

The same comparison is drawn as a PNG (overall, by level, by type: one bar per run, the intervals as error
bars), by default `report.png` in the folder of the FIRST metrics file (`--png PATH` elsewhere, `--no-png`
for none). The CPU demo (`make demo`) ends with it: the base model, then the trained adapter, on the same
held-out set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arithmo.config import SYSTEM_ERRORS, error_line, prog_name
from arithmo.runs import RunError, read_metrics

# arithmo.evaluation imports torch on the way (~2.5 s): its helpers are imported where they are used, so that
# `--help` answers at once.

CHART_NAME = "report.png"


def _label(metrics: dict) -> str:
    adapter = metrics.get("adapter")
    return f"{metrics.get('model')}" + (f" + {adapter}" if adapter else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def like_anchors(rows: list[dict], settings: list[dict | None] | None = None) -> list[int | None]:
    """Per result, the index of the first earlier result it may be compared with, else None (row 0 is None).

    Comparable: the same benchmark and number of items and, where both folders hold their eval_config.yaml
    (`settings`, one per row), the same item file, split, style, k, sampling, max_new_tokens, tool-call budget and
    stop strings (arithmo.evaluation.paired.settings_differ: one rule for the table and the paired test). An
    accuracy difference between two benchmarks, 60 and 500 items of one, or 512 and 2048 new tokens means nothing.
    A result without settings is compared on benchmark and item count only (a metrics.json copied on its own)."""
    from arithmo.evaluation.paired import settings_differ

    settings = settings or [None] * len(rows)
    anchors: list[int | None] = []
    for index, m in enumerate(rows):
        anchor = None
        for earlier in range(index):
            if (str(rows[earlier]["benchmark"]), int(rows[earlier]["n"])) != (str(m["benchmark"]), int(m["n"])):
                continue
            if settings[earlier] is not None and settings[index] is not None and \
                    settings_differ(settings[earlier], settings[index]):
                continue
            anchor = earlier
            break
        anchors.append(anchor)
    return anchors


def unlike_reasons(rows: list[dict], settings: list[dict | None]) -> list[str]:
    """For each result without an anchor (but the first), why: what differs from the first result on its
    benchmark and item count, or that no earlier result has them."""
    from arithmo.evaluation.paired import settings_differ

    reasons = []
    for index, anchor in enumerate(like_anchors(rows, settings)):
        if index == 0 or anchor is not None:
            continue
        m = rows[index]
        same = [e for e in range(index) if (str(rows[e]["benchmark"]), int(rows[e]["n"])) ==
                (str(m["benchmark"]), int(m["n"]))]
        if same and settings[same[0]] is not None and settings[index] is not None:
            differ = settings_differ(settings[same[0]], settings[index])
            reasons.append(f"#{index + 1} vs #{same[0] + 1}: other settings ({'; '.join(differ)})")
        else:
            reasons.append(f"#{index + 1}: no earlier result on {m['benchmark']} with n={m['n']}")
    return reasons


def shorten(text: str, width: int) -> str:
    """`text` cut in the middle to `width` characters (both the model's and the adapter's ends stay readable)."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep - keep // 2] + "\u2026" + text[len(text) - keep // 2:]


def compare_table(rows: list[dict], settings: list[dict | None] | None = None) -> str:
    """A plain-text table, one row per result: #, model, benchmark, style, n, accuracy, its 95% interval, the
    change vs the first comparable result in points (like_anchors), math-verify's accuracy, maj@k and its
    interval. `settings`: each result's eval_config.yaml mapping or None."""
    from arithmo.evaluation.intervals import intervals_of
    from arithmo.evaluation.metrics import format_interval, format_seeds

    settings = settings or [None] * len(rows)
    anchors = like_anchors(rows, settings)
    head = ["#", "model", "benchmark", "style", "n", "accuracy", "95% CI", "vs first", "math-verify", "maj@k",
            "maj 95% CI"]
    table = []
    for i, m in enumerate(rows, 1):
        ci = intervals_of(m)
        maj = m.get("maj_k") or {}
        anchor = anchors[i - 1]
        change = "" if anchor is None else f"{100 * (m['accuracy'] - rows[anchor]['accuracy']):+.1f}p" + \
            (f" vs #{anchor + 1}" if anchor else "")
        table.append([str(i), shorten(_label(m), 48), str(m["benchmark"]), str(m["style"]), str(m["n"]),
                      _pct(m["accuracy"]), format_interval(ci["accuracy"]), change,
                      _pct(m.get("accuracy_math_verify")),
                      f"{_pct(maj['accuracy'])} (k={maj['k']})" if maj else "-", format_interval(ci["maj_k"])])
    widths = [max(len(r[c]) for r in [head, *table]) for c in range(len(head))]
    right = {0, 4, 5, 7}  # numbers read best right-aligned
    lines = ["  ".join(h.rjust(w) if c in right else h.ljust(w) for c, (h, w) in enumerate(zip(head, widths))).rstrip()]
    lines.append("-" * len(lines[0]))
    for row in table:
        lines.append("  ".join(v.rjust(w) if c in right else v.ljust(w)
                               for c, (v, w) in enumerate(zip(row, widths))).rstrip())
    reasons = unlike_reasons(rows, settings)
    if reasons:  # never a difference between two benchmarks, two item counts or two generation settings
        lines.append("no change shown where results are not alike (a change compares the same items under the "
                     "same settings): " + "; ".join(reasons))
    for i, m in enumerate(rows, 1):
        opinion = m.get("math_verify") or {}
        if opinion.get("skipped"):
            lines.append(f"#{i} math-verify: not run ({opinion['skipped']})")
        elif opinion.get("disagreements"):
            lines.append(f"#{i} math-verify disagrees with arithmo on {opinion['disagreements']} item(s) "
                         f"(metrics.json: math_verify.disagreement_items)")
        if m.get("maj_k_seeds"):
            lines.append(f"#{i} {format_seeds(m['maj_k_seeds'])}")
    return "\n".join(lines)


def breakdown_table(rows: list[dict], key: str) -> str:
    """Accuracy per group of `key` ("by_level" | "by_type"), one column per result (#1, #2, ...): `correct/n
    accuracy [95% CI]`; "" when no result has the breakdown."""
    from arithmo.evaluation.intervals import intervals_of
    from arithmo.evaluation.metrics import format_interval

    names = sorted({name for m in rows for name in (m.get(key) or {})})
    if not names:
        return ""
    cells = [[""] * len(rows) for _ in names]
    for j, m in enumerate(rows):
        ci = intervals_of(m)
        for i, name in enumerate(names):
            group = (m.get(key) or {}).get(name)
            if group:
                cells[i][j] = (f"{group['correct']}/{group['n']} {_pct(group['accuracy'])} "
                               f"{format_interval(ci[key].get(name))}")
    first = max(len(key), *(len(n) for n in names))
    widths = [max(len(f"#{j + 1}"), *(len(row[j]) for row in cells)) for j in range(len(rows))]
    lines = ["  ".join([key.replace("_", " ").ljust(first)] + [f"#{j + 1}".ljust(w) for j, w in enumerate(widths)])]
    lines += ["  ".join([name.ljust(first)] + [c.ljust(w) for c, w in zip(row, widths)]) for name, row in zip(names, cells)]
    return "\n".join(line.rstrip() for line in lines)


def _panels(rows: list[dict]) -> list[tuple[str, list[str], list[list[tuple[float, list[float] | None] | None]]]]:
    """[(title, group names, per run: per group (accuracy, interval) or None)] for overall, by level, by type."""
    from arithmo.evaluation.intervals import intervals_of

    overall = [("accuracy", lambda m, ci: (m["accuracy"], ci["accuracy"])),
               ("flexible", lambda m, ci: (m.get("accuracy_flexible"), ci["accuracy_flexible"])),
               ("math-verify", lambda m, ci: (m.get("accuracy_math_verify"), ci["accuracy_math_verify"])),
               ("maj@k", lambda m, ci: ((m.get("maj_k") or {}).get("accuracy"), ci["maj_k"]))]
    intervals = [intervals_of(m) for m in rows]
    values = {name: [get(m, ci) for m, ci in zip(rows, intervals)] for name, get in overall}
    names = [name for name in values if any(v[0] is not None for v in values[name])]
    panels = [("overall", names, [[values[name][j] if values[name][j][0] is not None else None for name in names]
                                  for j in range(len(rows))])]
    for key, title in (("by_level", "by level"), ("by_type", "by type")):
        groups = sorted({name for m in rows for name in (m.get(key) or {})})
        if groups:
            panels.append((title, groups, [[((m.get(key) or {})[g]["accuracy"], ci[key].get(g))
                                            if g in (m.get(key) or {}) else None for g in groups]
                                           for m, ci in zip(rows, intervals)]))
    return panels


def compare_figure(rows: list[dict], labels: list[str] | None = None):
    """A matplotlib Figure: one panel each for overall, by level and by type, stacked top to bottom; in each, one
    bar per result (side by side, in the order given) with its value written on it (a 0% bar stays visible) and its
    95% interval as an error bar. The bars are numbered #1, #2 ... and the legend below lists each number's full
    label (cut in the middle past 90 characters). The size is bounded at any count: 10 inches wide, and each panel
    and legend line adds height, so 1 or 30 results read alike. Shared with the app."""
    from matplotlib.figure import Figure  # not pyplot: nothing global to close, safe in the app's threads

    labels = labels or [f"{_label(m)} ({m['benchmark']} {m['style']}, n={m['n']})" for m in rows]
    labels = [f"#{j + 1} {shorten(label, 90)}" for j, label in enumerate(labels)]
    panels = _panels(rows)
    legend_in = 0.22 * len(rows) + 0.3
    panel_in = 2.6 + (0.25 if len(rows) > 8 else 0)
    fig = Figure(figsize=(10, panel_in * len(panels) + legend_in + 0.4))
    axes = fig.subplots(len(panels), 1, squeeze=False)
    bar = 0.8 / max(1, len(rows))
    small = len(rows) * max(len(names) for _, names, _ in panels) > 40  # too many bars to write each value
    for ax, (title, names, per_run) in zip(axes[:, 0], panels):
        for j, cells in enumerate(per_run):
            xs = [i - 0.4 + bar * (j + 0.5) for i in range(len(names))]
            shown = [(x, cell) for x, cell in zip(xs, cells) if cell is not None]
            if not shown:
                continue
            heights = [100 * cell[0] for _, cell in shown]
            below = [100 * (cell[0] - cell[1][0]) if cell[1] else 0 for _, cell in shown]
            above = [100 * (cell[1][1] - cell[0]) if cell[1] else 0 for _, cell in shown]
            ax.bar([x for x, _ in shown], heights, bar, yerr=[below, above], capsize=2, ecolor="#333333",
                   color=f"C{j % 10}", edgecolor="#333333", linewidth=0.5,
                   label=labels[j] if ax is axes[0][0] else None)
            for (x, cell), height in zip(shown, heights):
                # the value at the bar's foot: a 0% bar has no height to see, its number shows it was measured
                ax.text(x, 1, f"{height:.0f}" if small else f"#{j + 1}\n{height:.0f}%", ha="center", va="bottom",
                        fontsize=6 if small else 7, color="#111111")
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylim(0, 105)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("accuracy (%)", fontsize=8)
    fig.legend(loc="lower left", ncol=1, fontsize=8, frameon=False, bbox_to_anchor=(0.01, 0.0))
    fig.suptitle("accuracy with 95% Wilson intervals", fontsize=10)
    total = panel_in * len(panels) + legend_in + 0.4
    fig.tight_layout(rect=(0, legend_in / total, 1, 1))
    return fig


def write_chart(rows: list[dict], path: str | Path) -> Path:
    """compare_figure(rows) saved as a PNG at `path`; returns the path."""
    path = Path(path)
    compare_figure(rows).savefig(path, dpi=100)
    return path


def sampled_lines(rows: list[dict]) -> list[str]:
    """Per result with k samples per item: avg@k with its 95% interval, pass@k', no-answer and truncated rates,
    token lengths (arithmo.evaluation.metrics.format_sampled)."""
    from arithmo.evaluation.metrics import format_sampled

    return [f"#{i} {line}" for i, m in enumerate(rows, 1) for line in format_sampled(m)]


def paired_section(path_a: str, path_b: str, label_a: str, label_b: str) -> str:
    """B against A item by item (arithmo.evaluation.paired): McNemar's exact test on the greedy answers, a paired
    bootstrap for avg@k; or why the two cannot be paired (other items or settings, no predictions)."""
    from arithmo.evaluation.paired import PairingError, compare_runs, format_comparison

    try:
        return format_comparison(compare_runs(path_a, path_b), label_a, label_b)
    except PairingError as err:
        return f"paired comparison {label_b} vs {label_a} refused: {err}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog_name("report"), description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="metrics.json files or eval output folders; first = baseline")
    parser.add_argument("--png", help=f"where to draw the comparison (default: {CHART_NAME} in the folder of the "
                                      "first metrics file)")
    parser.add_argument("--no-png", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    if args.png and not Path(args.png).parent.is_dir():  # checked before any work: a typo in the chart's folder
        print(f"error: --png {args.png}: {Path(args.png).parent} is not a folder (create it, or pick another path)",
              file=sys.stderr)
        return 2
    try:
        rows = [read_metrics(p) for p in args.results]
    except (RunError, *SYSTEM_ERRORS) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    from arithmo.evaluation.paired import run_settings

    settings = [run_settings(p) for p in args.results]
    print(compare_table(rows, settings))
    for key in ("by_level", "by_type"):
        table = breakdown_table(rows, key)
        if table:
            print(f"\n{table}")
    sampled = sampled_lines(rows)
    if sampled:
        print("\n" + "\n".join(sampled))
    # each later result item by item against the first of its kind (issue 26): the same benchmark and item count
    for j, anchor in enumerate(like_anchors(rows, settings)):
        if anchor is not None:
            print("\n" + paired_section(args.results[anchor], args.results[j], f"#{anchor + 1}", f"#{j + 1}"))
    if not args.no_png:
        first = Path(args.results[0])
        png = Path(args.png) if args.png else (first if first.is_dir() else first.parent) / CHART_NAME
        try:
            print(f"\n[report] chart: {write_chart(rows, png)}")
        except SYSTEM_ERRORS as err:
            print(error_line(err), file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
