"""`evaluate(cfg)` and `python -m arithmo.eval` end to end: the tiny random Llama on real GSM8K/MATH rows.

A random model's accuracy is whatever it is; what must hold are the files, the counts, the keys and
the denominators.
"""

import json

import pytest

from _shared import shared_file
from arithmo.config import load_config
from arithmo.eval import EvalConfig, EvalError, config_hash, evaluate, main

METRIC_KEYS = {"benchmark", "style", "n", "accuracy", "accuracy_flexible", "maj_k", "no_answer_rate",
               "exec_error_rate", "exec_timeout_rate", "by_level", "by_type", "grader_version", "model", "adapter",
               "config_hash", "seconds"}
LINE_KEYS = {"id", "benchmark", "style", "prompt", "completion", "program", "exec", "extracted", "correct"}


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_gsm8k_cot_files_counts_and_keys(tiny_model_dir, tmp_path):
    out = tmp_path / "gsm8k_cot"
    cfg = load_config(EvalConfig, None, [
        f"model={tiny_model_dir}", "benchmark=gsm8k", f"path={shared_file('gsm8k/test_first300.jsonl')}", "n=3",
        "style=cot", "max_new_tokens=8", f"output_dir={out}"])
    metrics = evaluate(cfg)
    lines = read_lines(out / "predictions.jsonl")
    assert [line["id"] for line in lines] == ["gsm8k/00000", "gsm8k/00001", "gsm8k/00002"]
    assert all(LINE_KEYS <= set(line) and line["sample"] is None for line in lines)
    assert [line["gold"] for line in lines] == ["18", "3", "70000"]
    assert all(line["program"] is None and line["exec"] is None for line in lines)
    assert all(line["prompt"].startswith("<|im_start|>user\n") for line in lines), "chat template by default"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert METRIC_KEYS <= set(saved)
    assert saved["n"] == 3 and saved["benchmark"] == "gsm8k" and saved["style"] == "cot"
    assert saved["accuracy"] == sum(line["correct"] for line in lines) / 3
    assert saved["accuracy_flexible"] == sum(line["correct_flexible"] for line in lines) / 3
    assert saved["no_answer_rate"] == sum(line["extracted"] is None for line in lines) / 3
    assert saved["maj_k"] is None and saved["exec_error_rate"] is None
    assert saved["by_level"] == {} and saved["by_type"] == {}
    assert saved["model"] == str(tiny_model_dir) and saved["adapter"] is None
    assert saved["config_hash"] == config_hash(load_config(EvalConfig, out / "eval_config.yaml"))
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_math_pot_with_maj_k_counts_every_item(tiny_base_model_dir, tmp_path):
    out = tmp_path / "math_pot"
    cfg = load_config(EvalConfig, None, [
        f"model={tiny_base_model_dir}", "benchmark=math", f"path={shared_file('math/test_dev500.jsonl')}", "n=4",
        "style=pot", "k=2", "temperature=1.0", "max_new_tokens=8", "program_timeout_s=2", "workers=2", f"output_dir={out}"])
    metrics = evaluate(cfg)
    lines = read_lines(out / "predictions.jsonl")
    assert len(lines) == 4 * 3, "one greedy and k=2 sampled lines per item"
    assert [line["sample"] for line in lines] == [None, 0, 1] * 4
    assert all(line["prompt"].startswith("Question: ") and line["prompt"].endswith("Answer:") for line in lines)
    greedy = [line for line in lines if line["sample"] is None]
    for line in lines:
        assert (line["exec"] is None) == (line["program"] is None)
        if line["exec"] is not None:
            assert set(line["exec"]) == {"stdout", "error", "timed_out"}
    assert metrics["n"] == 4
    assert metrics["accuracy"] == sum(line["correct"] for line in greedy) / 4
    errors = sum(1 for line in greedy if line["exec"] and line["exec"]["error"] and not line["exec"]["timed_out"])
    assert metrics["exec_error_rate"] == errors / 4
    assert metrics["no_program_rate"] == sum(line["program"] is None for line in greedy) / 4
    assert metrics["maj_k"]["k"] == 2 and metrics["maj_k"]["temperature"] == 1.0
    assert sum(group["n"] for group in metrics["by_level"].values()) == 4
    assert sum(group["n"] for group in metrics["by_type"].values()) == 4
    assert set(metrics["by_type"]) == {"Algebra"}, "the first 4 dev rows are all Algebra"
    # which sandbox layers ran the programs is recorded (the bubblewrap jail, or the fallback with its reason)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["sandbox"] and ("jail" in saved["sandbox"] or "fallback_reason" in saved["sandbox"])


def test_resume_refuses_other_settings_and_skips_done_items(tiny_model_dir, tmp_path):
    out = tmp_path / "gsm8k_cot"
    gsm8k = shared_file("gsm8k/test_first300.jsonl")
    base = [f"model={tiny_model_dir}", "benchmark=gsm8k", f"path={gsm8k}", "max_new_tokens=4", f"output_dir={out}",
            "plot=false"]
    evaluate(load_config(EvalConfig, None, base + ["n=2"]))
    metrics = evaluate(load_config(EvalConfig, None, base + ["n=3", "batch_size=2"]))
    assert metrics["resumed_items"] == 2 and metrics["n"] == 3
    assert len(read_lines(out / "predictions.jsonl")) == 3
    with pytest.raises(EvalError, match=r"max_new_tokens: 4 -> 5.*resume=false"):
        evaluate(load_config(EvalConfig, None, base + ["n=3", "max_new_tokens=5"]))
    metrics = evaluate(load_config(EvalConfig, None, base + ["n=3", "max_new_tokens=5", "resume=false"]))
    assert metrics["resumed_items"] == 0 and len(read_lines(out / "predictions.jsonl")) == 3


def make_run(tmp_path, model_dir, with_adapter=True):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: demo\nmodel:\n  name: {model_dir}\n  template: plain\n")
    if with_adapter:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        peft_model.save_pretrained(run / "adapter")
    return run


def test_run_folder_evaluates_its_adapter(tiny_model_dir, tmp_path):
    run = make_run(tmp_path, tiny_model_dir)
    heldout = tmp_path / "held.jsonl"
    heldout.write_text("".join(json.dumps({"id": f"h/{i}", "question": f"What is {i} + 1?", "answer": str(i + 1),
                                           "meta": {"level": "one_step"}}) + "\n" for i in range(3)))
    metrics = evaluate(load_config(EvalConfig, None, [
        f"run={run}", "benchmark=file", f"path={heldout}", "max_new_tokens=4", "plot=false"]))
    out = run / "eval" / "held_cot"
    assert (out / "metrics.json").is_file() and len(read_lines(out / "predictions.jsonl")) == 3
    assert metrics["adapter"] == str(run / "adapter") and metrics["model"] == str(tiny_model_dir)
    assert metrics["by_level"] == {"one_step": {"n": 3, "correct": metrics["by_level"]["one_step"]["correct"],
                                                "accuracy": metrics["accuracy"]}}
    saved = load_config(EvalConfig, out / "eval_config.yaml")
    assert saved.template == "plain", "the run's training template is used"
    assert read_lines(out / "predictions.jsonl")[0]["prompt"] == "Question: What is 0 + 1?\n\nAnswer:"

    bare = make_run(tmp_path / "other", tiny_model_dir, with_adapter=False)
    with pytest.raises(EvalError, match="holds no trained adapter"):
        evaluate(load_config(EvalConfig, None, [f"run={bare}", "benchmark=file", f"path={heldout}"]))


def test_cli_help_and_user_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for key in EvalConfig.__dataclass_fields__:
        assert f"  {key} (" in text
    assert "gsm8k_cot" in text and "tiny_pot" in text
    cases = [
        (["benchmark=gsm9k"], "benchmark: expected one of"),
        (["n=0"], "n: expected a positive number"),
        (["benchmark=file"], "benchmark=file needs path"),
        (["benchmark=gsm8k", f"path={tmp_path / 'missing.jsonl'}"], "missing.jsonl: not found: expected a benchmark file"),
        (["--preset", "gsm8k_nope"], "preset 'gsm8k_nope' not found"),
        (["k=4", "temperature=0"], "maj@k (k=4) samples need temperature > 0"),
        (["modle=x"], "unknown key 'modle' (did you mean 'model'?)"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_presets_load():
    from arithmo.eval import PRESETS

    names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
    assert {"gsm8k_cot", "gsm8k_pot", "gsm8k_hybrid", "math_cot", "math_pot", "tiny_pot"} <= set(names)
    for name in names:
        cfg = load_config(EvalConfig, PRESETS / f"{name}.yaml")
        assert name.startswith(cfg.benchmark if cfg.benchmark != "file" else "tiny")
