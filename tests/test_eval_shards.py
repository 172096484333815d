"""data_parallel=2: two processes split the items; one merged predictions.jsonl; the same predictions and metrics
as one process (greedy, fp32 on CPU)."""

import json

from arithmo.config import load_config
from arithmo.eval import EvalConfig, evaluate
from arithmo.evaluation.shards import SHARDS


def _held(tmp_path, n=5):
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": f"h/{i}", "question": f"What is {i} + 4?", "answer": str(i + 4),
                                        "meta": {"level": f"L{i % 2}"}}) + "\n" for i in range(n)))
    return path


def _lines(out):
    return {line["id"]: line for line in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}


def test_two_processes_give_the_predictions_and_metrics_of_one(tiny_model_dir, tmp_path):
    held = _held(tmp_path)
    base = [f"model={tiny_model_dir}", "benchmark=file", f"path={held}", "max_new_tokens=6", "plot=false",
            "template=plain"]
    one = evaluate(load_config(EvalConfig, None, base + [f"output_dir={tmp_path / 'one'}"]))
    two = evaluate(load_config(EvalConfig, None, base + [f"output_dir={tmp_path / 'two'}", "data_parallel=2"]))
    single, split = _lines(tmp_path / "one"), _lines(tmp_path / "two")
    assert sorted(split) == sorted(single) == [f"h/{i}" for i in range(5)]
    for item_id in single:
        for key in ("completion", "extracted", "correct", "gold", "benchmark"):
            assert split[item_id][key] == single[item_id][key], (item_id, key)
    for key in ("n", "accuracy", "accuracy_flexible", "no_answer_rate", "by_level", "correct", "benchmark"):
        assert two[key] == one[key], key
    assert not (tmp_path / "two" / SHARDS).exists(), "shard folders are folded in and removed"
    # a rerun finds every item done: nothing generated, nothing sharded
    again = evaluate(load_config(EvalConfig, None, base + [f"output_dir={tmp_path / 'two'}", "data_parallel=2"]))
    assert again["resumed_items"] == 5 and again["accuracy"] == one["accuracy"]


def test_finished_shard_lines_of_an_interrupted_run_are_kept(tiny_model_dir, tmp_path):
    held = _held(tmp_path, n=4)
    base = [f"model={tiny_model_dir}", "benchmark=file", f"path={held}", "max_new_tokens=6", "plot=false",
            "template=plain", f"output_dir={tmp_path / 'out'}"]
    first = evaluate(load_config(EvalConfig, None, base + ["n=2"]))
    lines = _lines(tmp_path / "out")
    # as if a data-parallel run was killed after one shard wrote its items: its folder is still there
    shard = tmp_path / "out" / SHARDS / "0"
    shard.mkdir(parents=True)
    (tmp_path / "out" / "predictions.jsonl").write_text(json.dumps(lines["h/0"]) + "\n")
    (shard / "predictions.jsonl").write_text(json.dumps(lines["h/1"]) + "\n")
    metrics = evaluate(load_config(EvalConfig, None, base + ["n=2", "data_parallel=2"]))
    assert metrics["resumed_items"] == 2 and metrics["accuracy"] == first["accuracy"]
    assert not (tmp_path / "out" / SHARDS).exists()
