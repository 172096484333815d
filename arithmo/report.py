"""`python -m arithmo.report METRICS_OR_FOLDER [...]`: one table comparing evaluation results.

Each argument is a `metrics.json` file or a folder holding one (an eval output folder). The first one is
the baseline; every other row shows its accuracy and the change against it in points. The CPU demo
(`make demo`) ends with it: the base model, then the trained adapter, on the same held-out set.
"""

from __future__ import annotations

import argparse
import sys

from arithmo.runs import RunError, read_metrics


def _label(metrics: dict) -> str:
    adapter = metrics.get("adapter")
    return f"{metrics.get('model')}" + (f" + {adapter}" if adapter else "")


def compare_table(rows: list[dict]) -> str:
    """A plain-text table: model, benchmark, style, n, accuracy, change vs the first row."""
    base = rows[0]["accuracy"]
    header = f"{'model':<48} {'benchmark':<12} {'style':<7} {'n':>5} {'accuracy':>9} {'vs first':>9}"
    lines = [header, "-" * len(header)]
    for i, m in enumerate(rows):
        delta = "" if i == 0 else f"{100 * (m['accuracy'] - base):+8.1f}p"
        lines.append(f"{_label(m)[-48:]:<48} {m['benchmark']:<12} {m['style']:<7} {m['n']:>5} "
                     f"{100 * m['accuracy']:>8.1f}% {delta:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arithmo.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="metrics.json files or eval output folders; first = baseline")
    args = parser.parse_args(argv)
    try:
        rows = [read_metrics(p) for p in args.results]
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(compare_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
