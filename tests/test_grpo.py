"""GRPO on a tiny random model: config checks, prompt ids, a few steps that move only the LoRA weights."""

import json
import zlib

import pytest
import torch
from safetensors.torch import load_file

from arithmo.config import ConfigError, load_config
from arithmo.grpo import GRPOError, GRPOTrainConfig, grpo, resolve_preset, trl_prompt
from arithmo.prompts import prompt_token_ids
from arithmo.rewards import Verdict
from arithmo.trainlog import read_train_log


def test_presets_resolve():
    cpu = load_config(GRPOTrainConfig, resolve_preset("smollm2_135m_cpu"))
    assert cpu.model.load_in_4bit is False and cpu.model.dtype == "float32"
    gpu = load_config(GRPOTrainConfig, resolve_preset("qwen25math7b_qlora"))
    assert gpu.model.load_in_4bit is True and gpu.styles == ["cot", "pot"]


@pytest.mark.parametrize("overrides, key", [
    (["num_generations=1"], "num_generations"),                     # no group, no baseline
    (["num_generations=3", "micro_batch_size=4"], "multiple of num_generations"),  # a group split across steps
    (["styles=[]"], "styles"),
    (["benchmark=file"], "path"),
    (["resume=true", "overwrite=true"], "contradict"),
    (["loss_type=ppo"], "loss_type"),
])
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(GRPOTrainConfig, None, overrides)


def _bos_tokenizer(tiny_model_dir):
    """The tiny tokenizer, made to add <s> itself (as Llama-3's does) while its chat template also writes it."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tokenizer.convert_tokens_to_ids("<s>"))])
    tokenizer.chat_template = "<s>" + tokenizer.chat_template
    return tokenizer


def test_trl_prompt_gives_the_ids_generation_uses(tiny_model_dir):
    from transformers import AutoTokenizer

    from arithmo.prompts import render_eval

    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    doubled = _bos_tokenizer(tiny_model_dir)
    for tokenizer, strips in ((plain, False), (doubled, True)):
        rendered = render_eval("What is 2 + 2?", "cot", tokenizer, "chat")
        text = trl_prompt(rendered, tokenizer)
        # TRL tokenizes a text prompt as tokenizer(text): that must be generation's ids, one BOS
        assert tokenizer(text)["input_ids"] == prompt_token_ids(tokenizer, rendered)
        assert (text != rendered) is strips
        assert tokenizer(text)["input_ids"].count(tokenizer.bos_token_id) == (1 if strips else 0)


def _cfg(tmp_path, model_dir, **overrides):
    items = [{"id": f"q{i}", "question": f"Sam has {i} apples and gets 3 more. How many apples?",
              "answer": str(i + 3)} for i in range(6)]
    # unreadable golds: excluded and counted (empty; text the grader reads nothing from)
    items += [{"id": "blank", "question": "What is it?", "answer": ""},
              {"id": "dollars", "question": "What is it?", "answer": "$$"}]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    base = [f"output_dir={tmp_path / 'runs'}", "name=g", f"model.name={model_dir}", "model.engine=hf",
            "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=128",
            "model.gradient_checkpointing=false", "benchmark=file", f"path={path}", "num_generations=4",
            "micro_batch_size=8", "max_completion_length=8", "max_steps=3", "lr=5e-2", "save_steps=3"]
    return load_config(GRPOTrainConfig, None, base + [f"{k}={v}" for k, v in overrides.items()])


def test_a_few_steps_train_only_lora_and_log_reward(tmp_path, tiny_model_dir, monkeypatch):
    """A random tiny model never writes a gradable answer (every reward 0: no advantage, no update), so this
    test scores completions by a fixed hash: what it checks is the loop, not the grader (test_grpo_rewards)."""
    import arithmo.rewards

    def scripted(completions, golds, styles, *, run, grade_timeout_s=2.0, prompts=None):
        return [Verdict("correct" if zlib.crc32(text.encode()) % 2 else "wrong") for text in completions]

    monkeypatch.setattr(arithmo.rewards, "grade_completions", scripted)
    summary = grpo(_cfg(tmp_path, tiny_model_dir))
    run = tmp_path / "runs" / "g"
    rows = [row for row in read_train_log(run / "train_log.jsonl") if "reward" in row]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(0 <= row["reward"] <= 1 and row["accuracy"] == pytest.approx(row["reward"]) for row in rows)
    assert summary["steps"] == 3 and summary["excluded_unreadable_gold"] == 2
    assert sum(summary["verdicts"].values()) == 3 * 8
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["questions"]["used"] == 6
    assert list(manifest["questions"]["excluded_unreadable_gold"]) == ["blank", "dollars"]
    # only LoRA weights moved: the adapter holds LoRA tensors only, B moved off zero, the base is untouched
    adapter = load_file(run / "adapter" / "adapter_model.safetensors")
    assert adapter and all("lora_" in key for key in adapter)
    assert any(t.abs().max() > 0 for k, t in adapter.items() if "lora_B" in k)
    from arithmo.model import load_model

    reloaded = load_model(str(tiny_model_dir), adapter=str(run / "adapter"))
    params = dict(reloaded.model.base_model.model.named_parameters())
    for key, tensor in load_file(tiny_model_dir / "model.safetensors").items():
        name = key.replace(".weight", ".base_layer.weight")
        torch.testing.assert_close(params.get(name, params.get(key)), tensor, rtol=0, atol=0)
    # a rerun of the finished run does nothing; a run folder with checkpoints needs resume or overwrite
    assert grpo(_cfg(tmp_path, tiny_model_dir, resume="true"))["steps"] == 3
    with pytest.raises(GRPOError, match="resume=true"):
        grpo(_cfg(tmp_path, tiny_model_dir))


def test_only_unreadable_golds_is_an_error(tmp_path, tiny_model_dir):
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "?", "answer": " "}) + "\n")
    cfg = _cfg(tmp_path, tiny_model_dir, path=str(path))
    with pytest.raises(GRPOError, match="gold answer the grader reads"):
        grpo(cfg)
