"""seeds=[...]: maj@k once per sampling seed, each pass in its own eval folder, resumable; mean and spread in
metrics.json. The tiny random model: its scores are whatever they are; the folders, seeds and counts must hold."""

import json
import statistics

import pytest

from arithmo.config import ConfigError, load_config
from arithmo.eval import EvalConfig, config_hash, evaluate
from arithmo.evaluation.intervals import wilson_interval


def _held(tmp_path, n=3):
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": f"h/{i}", "question": f"What is {i} + 4?", "answer": str(i + 4),
                                        "meta": {"level": f"L{i % 2}"}}) + "\n" for i in range(n)))
    return path


def _lines(folder):
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def test_each_seed_is_a_full_resumable_pass_and_the_spread_is_reported(tiny_model_dir, tmp_path):
    out = tmp_path / "held_cot_maj2"
    base = [f"model={tiny_model_dir}", "benchmark=file", f"path={_held(tmp_path)}", "max_new_tokens=6", "k=2",
            "temperature=1.0", "template=plain", f"output_dir={out}", "plot=false"]
    # a first run with one seed, then the same with three: the first folder's lines are kept (seeds is not hashed)
    single = evaluate(load_config(EvalConfig, None, base + ["seed=11"]))
    assert "maj_k_seeds" not in single
    metrics = evaluate(load_config(EvalConfig, None, base + ["seeds=[11, 12, 13]"]))
    assert metrics["resumed_items"] == 3, "the seed-11 pass was already complete"
    folders = [out, tmp_path / "held_cot_maj2_seed12", tmp_path / "held_cot_maj2_seed13"]
    passes = [json.loads((folder / "metrics.json").read_text()) for folder in folders]
    for folder, seed in zip(folders, (11, 12, 13)):
        saved = load_config(EvalConfig, folder / "eval_config.yaml")
        assert saved.seed == seed and saved.k == 2
        lines = _lines(folder)
        assert [line["sample"] for line in lines] == [None, 0, 1] * 3, f"{folder.name}: greedy + k samples per item"
    assert load_config(EvalConfig, out / "eval_config.yaml").seeds == [11, 12, 13]
    # the greedy line does not depend on the seed; the sampled ones come from each seed's own stream
    assert [line["completion"] for line in _lines(folders[1]) if line["sample"] is None] == \
           [line["completion"] for line in _lines(out) if line["sample"] is None]
    sampled = [[line["completion"] for line in _lines(folder) if line["sample"] is not None] for folder in folders]
    assert len({tuple(s) for s in sampled}) == 3, "each seed samples its own completions"
    spread = metrics["maj_k_seeds"]
    values = [p["maj_k"]["accuracy"] for p in passes]
    assert spread["seeds"] == [11, 12, 13] and spread["accuracy"] == values and spread["n"] == 3
    assert spread["folders"] == [str(folder) for folder in folders]
    assert spread["mean"] == pytest.approx(statistics.fmean(values)) and spread["std"] == pytest.approx(
        statistics.stdev(values))
    assert (spread["min"], spread["max"]) == (min(values), max(values))
    assert spread["ci95"] == [list(wilson_interval(p["maj_k"]["correct"], 3)) for p in passes]
    assert json.loads((out / "metrics.json").read_text())["maj_k_seeds"] == spread
    # a rerun generates nothing: every seed's folder resumes on its own
    again = evaluate(load_config(EvalConfig, None, base + ["seeds=[11, 12, 13]"]))
    assert again["resumed_items"] == 3 and again["maj_k_seeds"]["accuracy"] == values
    assert [json.loads((f / "metrics.json").read_text())["resumed_items"] for f in folders[1:]] == [3, 3]
    assert config_hash(load_config(EvalConfig, None, base + ["seed=11"])) == config_hash(
        load_config(EvalConfig, None, base + ["seeds=[11, 12]", "seed=11"]))


@pytest.mark.parametrize("overrides, message", [
    (["k=1", "seeds=[1, 2]"], "seeds: only sampled passes depend on the seed; set k > 1"),  # greedy only
    (["k=4", "seeds=[1, 1]"], "seeds: expected a list of distinct seeds"),  # the same pass twice
    (["k=4", "seeds=[]"], "seeds: expected a list of distinct seeds"),  # nothing to run
    (["k=4", "seed=7", "seeds=[1, 2]"], "seed=7 and seeds=\\[1, 2\\]: with seeds, the first one"),  # which first?
])
def test_bad_seeds_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(EvalConfig, None, overrides)
