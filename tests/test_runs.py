"""arithmo.runs: the run folder's layout, the typed run config, the adapter's rank, metrics.json, and vLLM
sized from the adapter's own rank."""

import json
import sys
import types

import pytest

from arithmo.generate import VLLM_LORA_RANKS, load_vllm, vllm_max_lora_rank
from arithmo.runs import (RunError, RunFolder, adapter_info, default_eval_dir, eval_label, find_adapter,
                          find_metrics, read_metrics, read_run_config)
from arithmo.settings import TrainConfig


def make_run(root, *, config="model:\n  name: my/model\n  lora_r: 128\n  template: plain\n", rank=128,
             extra_adapter=None):
    run = RunFolder(root)
    run.adapter.mkdir(parents=True)
    run.config.write_text(config)
    adapter_config = {"r": rank, "lora_alpha": 2 * rank, "target_modules": ["v_proj", "q_proj"],
                      "base_model_name_or_path": "my/model", **(extra_adapter or {})}
    (run.adapter / "adapter_config.json").write_text(json.dumps(adapter_config))
    return run


def test_layout_names_every_file_of_a_run(tmp_path):
    run = RunFolder.of(tmp_path, "r1")
    assert run.root == tmp_path / "r1"
    assert [p.name for p in (run.config, run.manifest, run.data, run.checkpoints, run.adapter, run.train_log,
                             run.summary)] == ["config.yaml", "manifest.json", "data", "checkpoints", "adapter",
                                               "train_log.jsonl", "summary.json"]
    assert run.eval_dir("gsm8k", "cot") == tmp_path / "r1" / "eval" / "gsm8k_cot"
    assert run.eval_dir("gsm8k", "cot", k=8) == tmp_path / "r1" / "eval" / "gsm8k_cot_maj8"
    # an evaluation without a run: the model id becomes a folder name (no slash), the adapter's name follows
    assert default_eval_dir("org/model", "x/adapter", "math", "pot").as_posix() == \
        "runs/eval/org--model+adapter/math_pot"


def test_run_config_is_typed(tmp_path):
    run = make_run(tmp_path / "r")
    cfg = read_run_config(run)
    assert isinstance(cfg, TrainConfig) and cfg.model.name == "my/model" and cfg.model.lora_r == 128
    assert cfg.model.template == "plain" and cfg.micro_batch_size == TrainConfig().micro_batch_size  # defaults fill
    bad = make_run(tmp_path / "bad", config="model:\n  name: m\n  lora_rank: 8\n")  # a misspelt key
    with pytest.raises(RunError, match=r"config.yaml: not a training run's config .*lora_rank"):
        read_run_config(bad)
    with pytest.raises(RunError, match="config.yaml not found"):
        read_run_config(tmp_path / "nothing")
    # an empty (or model-less) config.yaml is not a run's: the defaults would stand in for the real base model
    for text in ("", "lr: 1e-4\n", "model: {lora_r: 8}\n"):
        empty = make_run(tmp_path / f"e{len(text)}", config=text)
        with pytest.raises(RunError, match=r"no `model: \{name: ...\}`"):
            read_run_config(empty)


def test_adapter_info_reads_the_real_rank(tmp_path):
    run = make_run(tmp_path / "r", rank=128)
    info = adapter_info(run.root)  # a run folder or the adapter folder itself
    assert (info.rank, info.alpha, info.target_modules, info.base_model) == (128, 256.0, ["q_proj", "v_proj"],
                                                                             "my/model")
    assert adapter_info(run.adapter) == info
    # rank_pattern: some modules at another rank; vLLM must hold the largest
    patterned = make_run(tmp_path / "p", rank=16, extra_adapter={"rank_pattern": {"down_proj": 96}})
    assert adapter_info(patterned.root).rank == 96
    with pytest.raises(RunError, match="holds no trained adapter"):
        find_adapter(tmp_path)
    broken = make_run(tmp_path / "b", extra_adapter={"r": "sixteen"})
    with pytest.raises(RunError, match="expected a positive integer `r`"):
        adapter_info(broken.root)


@pytest.mark.parametrize("rank, served", [
    (8, 8), (16, 16), (64, 64),
    (128, 128),   # the bug: a fixed max_lora_rank=64 refused (or cut) a run trained with model.lora_r=128
    (100, 128),   # vLLM accepts only some ranks: the next one up
    (512, 512),
])
def test_vllm_max_lora_rank_holds_the_adapter(rank, served):
    assert vllm_max_lora_rank(rank) == served and served in VLLM_LORA_RANKS


def test_vllm_is_started_with_the_adapters_rank(tmp_path, monkeypatch):
    run = make_run(tmp_path / "r", rank=128)
    started = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            started.update(kwargs)

    class FakeLoRARequest:
        def __init__(self, name, number, path):
            self.path = path

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    monkeypatch.setattr("arithmo.generate.vllm_available", lambda: True)
    engine = load_vllm("my/model", str(run.adapter))
    assert started == {"model": "my/model", "seed": 0, "dtype": "float32", "enable_lora": True, "max_lora_rank": 128}
    assert engine.lora_request.path == str(run.adapter)
    started.clear()
    load_vllm("my/model")  # no adapter: no LoRA settings at all
    assert started == {"model": "my/model", "seed": 0, "dtype": "float32"}


def test_read_metrics_names_the_file_and_the_problem(tmp_path):
    good = tmp_path / "runs" / "demo" / "eval" / "heldout_pot" / "metrics.json"
    good.parent.mkdir(parents=True)
    good.write_text(json.dumps({"benchmark": "heldout", "style": "pot", "n": 2, "accuracy": 0.5}))
    assert read_metrics(good.parent)["accuracy"] == 0.5
    assert eval_label(good) == "demo/heldout_pot"
    assert find_metrics(tmp_path / "runs") == {"demo": [good]}
    cases = [("[1, 2]", "expected a JSON object"), ("{not json", "cannot be read as JSON"),
             ('{"benchmark": "b", "style": "cot", "n": 1}', "no 'accuracy'"),
             ('{"benchmark": "b", "style": "cot", "n": 1, "accuracy": 1.5}', "from 0 to 1, got 1.5"),
             ('{"benchmark": "b", "style": "cot", "n": 1, "accuracy": true}', "from 0 to 1, got True")]
    for number, (text, message) in enumerate(cases):
        path = tmp_path / f"m{number}.json"
        path.write_text(text)
        with pytest.raises(RunError, match=message):
            read_metrics(path)
    with pytest.raises(RunError, match="no metrics.json here"):
        read_metrics(tmp_path / "empty")
