"""Predictions record what produced them; a resume never mixes another generator's completions into a score,
and a grader change re-grades saved completions without generating again (issue 13, "Stale results")."""

import json

import pytest
import torch
from test_eval_e2e import make_run, read_lines

from arithmo.config import load_config
from arithmo.eval import EvalConfig, EvalError, evaluate
from arithmo.evaluation.provenance import differences, folder_sha256, provenance


@pytest.fixture
def heldout(tmp_path):
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps({"id": f"h/{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)})
                            + "\n" for i in range(3)))
    return path


def _eval(run, heldout, *extra):
    return evaluate(load_config(EvalConfig, None, [f"run={run}", "benchmark=file", f"path={heldout}",
                                                   "max_new_tokens=4", "plot=false", *extra]))


def _retrain(adapter):
    """What `python -m arithmo.train ... resume=true` does to an adapter folder: new weights, same path."""
    from safetensors.torch import load_file, save_file

    weights = load_file(adapter / "adapter_model.safetensors")
    save_file({name: tensor + 0.01 for name, tensor in weights.items()}, adapter / "adapter_model.safetensors")


def test_a_retrained_adapter_is_not_scored_with_the_old_predictions(tiny_model_dir, tmp_path, heldout):
    run = make_run(tmp_path, tiny_model_dir)
    first = _eval(run, heldout)
    out = run / "eval" / "held_cot"
    saved = json.loads((out / "provenance.json").read_text())
    assert saved["adapter"]["sha256"] == folder_sha256(run / "adapter") and first["provenance"] == saved
    _retrain(run / "adapter")
    # the bug: "resuming: 3 of 3 items already in predictions.jsonl" and the OLD adapter's accuracy
    with pytest.raises(EvalError, match=r"another model, adapter or generation setting \(adapter: .* sha256 .* -> .*\).*resume=false"):
        _eval(run, heldout)
    again = _eval(run, heldout, "resume=false")
    assert again["resumed_items"] == 0
    assert json.loads((out / "provenance.json").read_text())["adapter"]["sha256"] == folder_sha256(run / "adapter")


def test_another_model_with_the_same_name_is_refused(tiny_model_dir, tmp_path, heldout):
    import shutil

    from transformers import AutoModelForCausalLM

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    out = tmp_path / "out"
    args = [f"model={model_dir}", "benchmark=file", f"path={heldout}", "max_new_tokens=4", "plot=false",
            f"output_dir={out}"]
    evaluate(load_config(EvalConfig, None, args))
    assert evaluate(load_config(EvalConfig, None, args))["resumed_items"] == 3  # same content: resumes
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    model.save_pretrained(model_dir)  # same folder name, other weights
    with pytest.raises(EvalError, match=r"model: .* sha256 .* -> "):
        evaluate(load_config(EvalConfig, None, args))


def test_settings_that_generate_are_compared(tiny_model_dir, tmp_path, heldout):
    run = make_run(tmp_path, tiny_model_dir)
    _eval(run, heldout)
    with pytest.raises(EvalError, match=r"template: 'plain' -> 'chat'"):
        _eval(run, heldout, "template=chat")


def test_a_grader_change_regrades_without_generating(tiny_model_dir, tmp_path, heldout, monkeypatch):
    run = make_run(tmp_path, tiny_model_dir)
    first = _eval(run, heldout)
    predictions = run / "eval" / "held_cot" / "predictions.jsonl"
    lines = read_lines(predictions)
    for line in lines:  # as an older grader left them: a different version and a different verdict
        line["grader_version"], line["correct"] = "arithmo-grader-0", not line["correct"]
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))

    def no_model(*args, **kwargs):
        raise AssertionError("re-grading must not load a model")

    monkeypatch.setattr("arithmo.eval.load_for_eval", no_model)  # the name eval.py calls
    again = _eval(run, heldout)
    assert again["accuracy"] == first["accuracy"] and again["resumed_items"] == 3
    regraded = read_lines(predictions)
    assert all(line["grader_version"] == first["grader_version"] for line in regraded)
    assert [line["correct"] for line in regraded] == [not line["correct"] for line in lines]
    # regrade=true does it on purpose, with the same grader
    assert _eval(run, heldout, "regrade=true")["accuracy"] == first["accuracy"]


def test_predictions_without_provenance_are_not_resumed(tiny_model_dir, tmp_path, heldout):
    run = make_run(tmp_path, tiny_model_dir)
    _eval(run, heldout)
    (run / "eval" / "held_cot" / "provenance.json").unlink()
    with pytest.raises(EvalError, match="has no provenance.json beside it"):
        _eval(run, heldout)


@pytest.mark.parametrize("changed, expected", [
    ({"backend": "vllm"}, "backend: 'hf' -> 'vllm'"),
    ({"dtype": "bfloat16"}, "dtype: 'float32' -> 'bfloat16'"),
    ({"load_in_4bit": True}, "load_in_4bit: False -> True"),
    ({"template": "chat"}, "template: 'plain' -> 'chat'"),
])
def test_differences_name_each_generation_key(tiny_model_dir, changed, expected):
    base = dict(model=str(tiny_model_dir), adapter=None, backend="hf", dtype="float32", load_in_4bit=False,
                template="plain", grader_version="g1")
    generation, grading = differences(provenance(**base), provenance(**{**base, **changed}))
    assert generation == [expected] and grading == []
    generation, grading = differences(provenance(**base), provenance(**{**base, "grader_version": "g2"}))
    assert generation == [] and grading == ["grader_version: 'g1' -> 'g2'"]


def test_regrade_of_hybrid_lines_uses_the_saved_fallback_or_asks_to_generate_again():
    from arithmo.evaluation.scoring import regrade
    from arithmo.sandbox import ExecResult

    def run(programs):  # a stand-in sandbox: "print(7)" prints 7, anything else crashes
        return [ExecResult("7\n", None, False) if p == "print(7)" else
                ExecResult("", "ZeroDivisionError: division by zero", False) for p in programs]

    def line(item_id, completion, fallback=None):
        return {"id": item_id, "benchmark": "t", "style": "hybrid", "sample": None, "prompt": "p",
                "completion": completion, "fallback": fallback, "grader_version": "old"}

    lines = [line("a", "```python\nprint(7)\n```"),                                    # the program answers
             line("b", "```python\n1/0\n```", {"prompt": "q", "completion": "The answer is: 7"}),  # saved CoT
             line("c", "```python\n1/0\n```")]   # the program answered under the old rules; no CoT was saved
    fresh, redo = regrade(lines, {"a": "7", "b": "7", "c": "7"}, "hybrid", run=run, grade_timeout_s=2.0)
    assert [(l["extracted"], l["correct"], l["answer_source"]) for l in fresh] == [
        ("7", True, "pot"), ("7", True, "cot"), (None, False, None)]
    assert redo == {"c"}


@pytest.mark.parametrize("damaged", ["{bad", "[]", ""])  # a crash or a full disk mid-write
def test_a_damaged_provenance_file_is_a_clear_refusal(tiny_model_dir, tmp_path, heldout, damaged):
    run = make_run(tmp_path, tiny_model_dir)
    _eval(run, heldout)
    (run / "eval" / "held_cot" / "provenance.json").write_text(damaged)
    with pytest.raises(EvalError, match="cannot be read as a provenance record.*resume=false"):
        _eval(run, heldout)
