"""Evaluation pieces behind `python -m arithmo.eval`: benchmark loaders, scoring per style, metrics, resume.

    from arithmo.evaluation import evaluate_items, load_items
    items = load_items("file", path="data_recipes/tiny/heldout.jsonl")
    predictions, metrics = evaluate_items(model, tokenizer, items, "pot", max_new_tokens=256)

The names below are loaded on first use (PEP 562): importing one submodule (provenance, store) must not import
torch, transformers and sympy through the loop, or `python -m arithmo.eval --help` takes seconds.
"""

import importlib

_HOMES = {"load_items": "arithmo.benchmarks", "evaluate_items": "arithmo.evaluation.loop",
          "compute_metrics": "arithmo.evaluation.metrics", "format_table": "arithmo.evaluation.metrics",
          "plot_accuracy": "arithmo.evaluation.metrics", "majority_vote": "arithmo.evaluation.scoring"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'arithmo.evaluation' has no attribute {name!r}")
