"""Evaluation pieces behind `python -m arithmo.eval`: benchmark loaders, scoring per style, metrics, resume.

    from arithmo.evaluation import evaluate_items, load_items
    items = load_items("file", path="data_recipes/tiny/heldout.jsonl")
    predictions, metrics = evaluate_items(model, tokenizer, items, "pot", max_new_tokens=256)
"""

from arithmo.benchmarks import load_items
from arithmo.evaluation.loop import evaluate_items
from arithmo.evaluation.metrics import compute_metrics, format_table, plot_accuracy
from arithmo.evaluation.scoring import majority_vote

__all__ = ["compute_metrics", "evaluate_items", "format_table", "load_items", "majority_vote", "plot_accuracy"]
