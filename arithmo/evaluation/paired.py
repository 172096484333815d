"""Paired comparison of two evaluation runs on the same items: does B beat A, and how sure is that?

    result = compare_runs("runs/base/eval/amc23_cot", "runs/sft/eval/amc23_cot")   # PairingError if not comparable
    print(format_comparison(result, "#1", "#2"))

Two runs are paired when they hold predictions for exactly the same items (same ids and golds) made with the
same evaluation settings (`PAIRED_SETTINGS` of eval_config.yaml: benchmark and its source, style, k, decoding);
the model, adapter, template and seed may differ: they are what is compared. Otherwise `PairingError` says what
differs. Also refused, each naming what differs (issue 26 review):
- runs graded by different grader versions (each line's `grader_version`): one grader's verdict against
  another's is not a paired difference; `arithmo.eval` with `regrade=true` on the older run's folder regrades it;
- an incomplete run: an item without its greedy line, or (k > 1) without all k sample lines, or fewer items than
  metrics.json's n (an interrupted eval; resume it) -- a missing sample is not a wrong one.
Not refused: greedy-only runs (k = 1 on both) that differ only in the sampling knobs greedy decoding never uses
(`GREEDY_UNUSED`: temperature, top_p), and one dataset `path` spelled relative and absolute (compared resolved;
the eval's working directory is not recorded, so a relative path that is the tail of the other's absolute path
names the same file too -- the items' ids and golds are compared besides). Per benchmark (a `file` benchmark may
mix several):
- one answer per item (the greedy completions): McNemar's exact test (McNemar 1947; the exact form is the
  two-sided binomial test of the discordant pairs, b items only A got right and c items only B got right,
  against p = 1/2: Fagerland, Lydersen & Laake 2013, "The McNemar test for binary matched-pairs data",
  BMC Medical Research Methodology 13:91, sec. "The McNemar exact conditional test"), with the difference in
  accuracy and its paired bootstrap interval;
- k samples per item (avg@k): a paired percentile bootstrap over items of the per-item difference in the
  share of correct samples (arithmo.evaluation.bootstrap), with the share of resamples in which B is ahead.
A difference counts as real when its 95% interval excludes 0 (and, for McNemar, p < 0.05).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from arithmo.evaluation.bootstrap import METHOD, bootstrap_means, percentile_interval

# Settings that change what a prediction means: two runs must agree on them to be compared item by item.
PAIRED_SETTINGS = ("benchmark", "path", "hub", "config", "split", "style", "k", "temperature", "top_p",
                   "max_new_tokens", "max_tool_calls", "pot_hint", "stop")
ALPHA = 0.05
GREEDY_UNUSED = ("temperature", "top_p")  # sampling knobs: they change nothing when k = 1 (greedy only)


class PairingError(ValueError):
    """Two runs cannot be compared item by item; the message says why (other items, golds or settings)."""


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs: min(1, 2 * P[X <= min(b, c)]), X ~ Bin(b+c, 1/2).
    1.0 when there is no discordant pair. Raises ValueError for negative counts."""
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def _folder(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_dir() else path.parent


def load_run(path: str | Path) -> dict[str, Any]:
    """{folder, settings, items: {id: {benchmark, gold, greedy: bool | None, samples: {j: bool}}}} of an eval output
    folder (or its metrics.json): the first `n` items of predictions.jsonl (metrics.json's n; the file lists the
    run's items first, in order). Raises PairingError when predictions.jsonl or eval_config.yaml is missing or
    unreadable."""
    import yaml

    from arithmo.runs import EVAL_CONFIG, METRICS, PREDICTIONS

    folder = _folder(path)
    predictions, config = folder / PREDICTIONS, folder / EVAL_CONFIG
    for needed in (predictions, config):
        if not needed.is_file():
            raise PairingError(f"{needed} not found: a paired comparison needs each run's per-item predictions and "
                               "settings (an eval output folder)")
    try:
        settings = yaml.safe_load(config.read_text()) or {}
        n = json.loads((folder / METRICS).read_text())["n"] if (folder / METRICS).is_file() else None
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        raise PairingError(f"{folder}: cannot read its settings or metrics ({err})") from err
    items: dict[str, dict[str, Any]] = {}
    for number, text in enumerate(predictions.read_text(encoding="utf-8").split("\n"), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            item_id, sample = line["id"], line["sample"]
        except (ValueError, KeyError, TypeError) as err:
            raise PairingError(f"{predictions}:{number}: not a prediction line ({err})") from err
        if item_id not in items:
            if n is not None and len(items) >= n:
                continue  # a line of an item outside this run's set (an earlier run with another n)
            items[item_id] = {"benchmark": line.get("benchmark"), "gold": line.get("gold"), "greedy": None,
                              "samples": {}, "graders": set()}
        items[item_id]["graders"].add(line.get("grader_version"))
        if sample is None:
            items[item_id]["greedy"] = bool(line.get("correct"))
        else:
            items[item_id]["samples"][int(sample)] = bool(line.get("correct"))
    return {"folder": str(folder), "settings": settings, "items": items, "n": n}


def _same_path(first: Any, second: Any) -> bool:
    """Whether two `path` settings name one file: equal text, equal once resolved (against the current
    directory), the same file on disk, or a relative path that is the tail of the other's absolute path."""
    if first == second:
        return True
    if not isinstance(first, str) or not isinstance(second, str):
        return False
    one, two = Path(first).expanduser(), Path(second).expanduser()
    if one.resolve() == two.resolve():
        return True
    try:
        if one.exists() and two.exists() and one.samefile(two):
            return True
    except OSError:
        pass
    for relative, absolute in ((one, two), (two, one)):
        if (not relative.is_absolute() and absolute.is_absolute() and ".." not in relative.parts
                and absolute.parts[-len(relative.parts):] == relative.parts):
            return True
    return False


def _graders(run: dict) -> set:
    return set().union(*(item["graders"] for item in run["items"].values())) if run["items"] else set()


def _check_complete(run: dict, k: int) -> None:
    """PairingError when `run` lacks lines: items short of metrics.json's n, a greedy line or k sample lines."""
    items, n = run["items"], run["n"]
    if n is not None and len(items) < n:
        raise PairingError(f"{run['folder']} is incomplete: predictions for {len(items)} of its n={n} items (an "
                           "interrupted eval? resume it); missing items are not wrong answers")
    no_greedy = [item_id for item_id, item in items.items() if item["greedy"] is None]
    short = [item_id for item_id, item in items.items() if k > 1 and len(set(item["samples"]) & set(range(k))) < k]
    if no_greedy or short:
        example = (no_greedy or short)[0]
        raise PairingError(f"{run['folder']} is incomplete: {len(no_greedy)} item(s) without their greedy line and "
                           f"{len(short)} without all k={k} sample lines (e.g. {example}: samples "
                           f"{sorted(items[example]['samples'])}); resume that eval first -- missing samples are "
                           "not wrong answers")


def settings_differ(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """`key: first vs second` for every PAIRED_SETTINGS key whose values differ between two eval_config.yaml
    mappings (the sampling knobs are ignored when both runs are greedy only; `path` compares the files named,
    not the text). Empty: the two runs' accuracies measure the same thing and may be compared."""
    k_a, k_b = int(first.get("k") or 1), int(second.get("k") or 1)
    greedy_only = k_a == 1 and k_b == 1
    return [f"{key}: {first.get(key)!r} vs {second.get(key)!r}" for key in PAIRED_SETTINGS
            if not (greedy_only and key in GREEDY_UNUSED)
            and not (key == "path" and _same_path(first.get(key), second.get(key)))
            and first.get(key) != second.get(key)]


def run_settings(path: str | Path) -> dict[str, Any] | None:
    """The eval_config.yaml mapping of an eval output folder (or of its metrics.json), or None when the folder has
    none or it cannot be read (a metrics.json copied on its own)."""
    import yaml

    from arithmo.runs import EVAL_CONFIG

    config = _folder(path) / EVAL_CONFIG
    try:
        settings = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return settings if isinstance(settings, dict) else None


def _check_pairable(a: dict, b: dict) -> None:
    k_a = int(a["settings"].get("k") or 1)
    changed = settings_differ(a["settings"], b["settings"])
    if changed:
        raise PairingError(f"{a['folder']} and {b['folder']} were evaluated with different settings "
                           f"({'; '.join(changed)}); a paired comparison needs the same ones")
    graders_a, graders_b = _graders(a), _graders(b)
    if len(graders_a) > 1 or len(graders_b) > 1 or graders_a != graders_b:
        raise PairingError(f"{a['folder']} and {b['folder']} were graded by different grader versions "
                           f"({sorted(map(str, graders_a))} vs {sorted(map(str, graders_b))}); regrade the older run "
                           "(python -m arithmo.eval <its eval_config.yaml> regrade=true) so both use one grader")
    for run in (a, b):
        _check_complete(run, k_a)
    ids_a, ids_b = set(a["items"]), set(b["items"])
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        raise PairingError(f"the runs cover different items ({len(ids_a)} vs {len(ids_b)}, {len(ids_a & ids_b)} in "
                           f"common; only in the first: {only_a[:3]}{' ...' if len(only_a) > 3 else ''}; only in "
                           f"the second: {only_b[:3]}{' ...' if len(only_b) > 3 else ''}); compare runs over the "
                           "same items (same benchmark, source and n)")
    golds = [item_id for item_id in sorted(ids_a) if a["items"][item_id]["gold"] != b["items"][item_id]["gold"]]
    if golds:
        raise PairingError(f"the runs hold different golds for {len(golds)} item(s) (e.g. {golds[0]}: "
                           f"{a['items'][golds[0]]['gold']!r} vs {b['items'][golds[0]]['gold']!r}): not the same items")


def _interval_verdict(low: float, high: float) -> str:
    if low > 0:
        return "B is better"
    if high < 0:
        return "A is better"
    return "no significant difference"


def compare_runs(path_a: str | Path, path_b: str | Path, *, seed: int = 0) -> dict[str, Any]:
    """{folders, benchmarks: {name: {n, greedy: {...} | None, avg_k: {...} | None}}} comparing run B with run A item
    by item. Raises PairingError when they are not over the same items and settings (or lack predictions)."""
    a, b = load_run(path_a), load_run(path_b)
    _check_pairable(a, b)
    k = int(a["settings"].get("k") or 1)
    groups: dict[str, list[str]] = defaultdict(list)
    for item_id, item in a["items"].items():
        groups[str(item["benchmark"])].append(item_id)
    out: dict[str, Any] = {"folders": [a["folder"], b["folder"]], "method": METHOD, "benchmarks": {}}
    for name, ids in sorted(groups.items()):
        entry: dict[str, Any] = {"n": len(ids), "greedy": None, "avg_k": None}
        if all(a["items"][i]["greedy"] is not None and b["items"][i]["greedy"] is not None for i in ids):
            right_a = [a["items"][i]["greedy"] for i in ids]
            right_b = [b["items"][i]["greedy"] for i in ids]
            only_a = sum(x and not y for x, y in zip(right_a, right_b))
            only_b = sum(y and not x for x, y in zip(right_a, right_b))
            diffs = [float(y) - float(x) for x, y in zip(right_a, right_b)]
            low, high = percentile_interval(bootstrap_means(diffs, seed=seed))
            p = mcnemar_exact(only_a, only_b)
            entry["greedy"] = {"accuracy": [sum(right_a) / len(ids), sum(right_b) / len(ids)], "only_a": only_a,
                               "only_b": only_b, "difference": sum(diffs) / len(ids), "ci95": [low, high],
                               "p_value": p, "test": "McNemar exact (two-sided)",
                               "verdict": _interval_verdict(low, high) if p < ALPHA else "no significant difference"}
        if k > 1:
            share_a = [sum(a["items"][i]["samples"].get(j, False) for j in range(k)) / k for i in ids]
            share_b = [sum(b["items"][i]["samples"].get(j, False) for j in range(k)) / k for i in ids]
            diffs = [y - x for x, y in zip(share_a, share_b)]
            means = bootstrap_means(diffs, seed=seed)
            low, high = percentile_interval(means)
            entry["avg_k"] = {"k": k, "accuracy": [sum(share_a) / len(ids), sum(share_b) / len(ids)],
                              "difference": sum(diffs) / len(ids), "ci95": [low, high],
                              "b_ahead": sum(m > 0 for m in means) / len(means),
                              "test": "paired bootstrap over items", "verdict": _interval_verdict(low, high)}
        out["benchmarks"][name] = entry
    return out


def _pts(value: float) -> str:
    return f"{100 * value:+.1f}p"


def format_comparison(result: dict[str, Any], label_a: str = "A", label_b: str = "B") -> str:
    """The comparison as text: one line per benchmark and test, with the difference, its 95% interval and verdict."""
    lines = [f"paired comparison {label_b} vs {label_a} (same items and settings; {result['method']}):"]
    for name, entry in result["benchmarks"].items():
        greedy, avg = entry["greedy"], entry["avg_k"]
        if greedy:
            verdict = greedy["verdict"].replace("B", label_b).replace("A", label_a)
            lines.append(f"  {name} (n={entry['n']}) greedy, {greedy['test']}: {label_a} {100 * greedy['accuracy'][0]:.1f}%, "
                         f"{label_b} {100 * greedy['accuracy'][1]:.1f}%; only {label_a} right on {greedy['only_a']}, "
                         f"only {label_b} on {greedy['only_b']}; difference {_pts(greedy['difference'])} "
                         f"[{_pts(greedy['ci95'][0])}, {_pts(greedy['ci95'][1])}], p = {greedy['p_value']:.3g}: {verdict}")
        if avg:
            verdict = avg["verdict"].replace("B", label_b).replace("A", label_a)
            lines.append(f"  {name} (n={entry['n']}) avg@{avg['k']}, {avg['test']}: {label_a} {100 * avg['accuracy'][0]:.1f}%, "
                         f"{label_b} {100 * avg['accuracy'][1]:.1f}%; difference {_pts(avg['difference'])} "
                         f"[{_pts(avg['ci95'][0])}, {_pts(avg['ci95'][1])}]; {label_b} ahead in "
                         f"{100 * avg['b_ahead']:.0f}% of resamples: {verdict}")
        if not greedy and not avg:
            lines.append(f"  {name}: no per-item verdicts to compare")
    return "\n".join(lines)
