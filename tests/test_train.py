"""Training on a tiny random model: config resolution, label masks, packing, LoRA-only updates, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from arithmo.config import ConfigError, load_config
from arithmo.model import ModelError, load_model
from arithmo.prompts import render_sft
from arithmo.runs import RunFolder
from arithmo.settings import TrainConfig, TrainError
from arithmo.sft import render_dataset
from arithmo.train import build_trainer, resolve_preset, train
from arithmo.trainlog import read_train_log

from _shared import write_sft_folder


def _cfg(tmp_path, model_dir, **overrides):
    data = write_sft_folder(tmp_path / "data")
    base = [f"data={data}", f"output_dir={tmp_path / 'runs'}", f"model.name={model_dir}", "model.engine=hf",
            "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=128",
            "model.gradient_checkpointing=false", "micro_batch_size=4", "grad_accum=1", "logging_steps=1",
            "lr=5e-3", "warmup_ratio=0.0", "lr_scheduler=linear"]
    return load_config(TrainConfig, None, base + [f"{k}={v}" for k, v in overrides.items()])


# ---------------------------------------------------------------------------------------------- config


def test_presets_resolve_and_overrides_win():
    cfg = load_config(TrainConfig, resolve_preset("mistral7b_qlora"), ["model.lora_r=8", "lr=1e-4"])
    assert cfg.model.name == "mistralai/Mistral-7B-v0.1" and cfg.model.load_in_4bit is True
    assert cfg.model.lora_r == 8 and cfg.lr == 1e-4 and cfg.packing is True
    for name in ("smollm2_135m_cpu", "qwen25math7b_qlora"):
        assert load_config(TrainConfig, resolve_preset(name)).model.name


@pytest.mark.parametrize("override, key", [
    ("model.lora_rank=8", "model.lora_rank"),     # misspelt key: named, with a suggestion
    ("micro_batch_size=two", "micro_batch_size"),  # wrong type
    ("model.engine=vllm", "model.engine"),         # not one of the engines
    ("micro_batch_size=0", "micro_batch_size"),    # out of range
    ("resume=true overwrite=true", "resume=true and overwrite=true"),  # overwrite would delete what resume reads
])
def test_bad_keys_and_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(TrainConfig, resolve_preset("smollm2_135m_cpu"), override.split())


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="smollm2_135m_cpu"):
        resolve_preset("no_such_preset")


# ---------------------------------------------------------------------------------------------- label masks


def _trainer(tmp_path, model_dir, **overrides):
    cfg = _cfg(tmp_path, model_dir, **overrides)
    loaded = load_model(str(model_dir), engine="hf", trainable=True, load_in_4bit=False, dtype="float32",
                        gradient_checkpointing=False, max_seq_length=128)
    rows = [json.loads(line) for line in open(tmp_path / "data" / "train.jsonl")]
    dataset, _ = render_dataset(rows, loaded.tokenizer, "auto", 128)
    trainer, _ = build_trainer(loaded.model, loaded.tokenizer, dataset, None, cfg, RunFolder(tmp_path / "run"))
    return trainer, loaded.tokenizer, [render_sft(row, loaded.tokenizer, "auto") for row in rows]


def test_loss_is_never_computed_on_prompt_tokens(tmp_path, tiny_model_dir):
    trainer, tokenizer, rendered = _trainer(tmp_path, tiny_model_dir)
    for example, text in zip(trainer.train_dataset, rendered):
        prompt_ids = tokenizer(text["prompt"], add_special_tokens=False)["input_ids"]
        labels, ids = example["labels"], example["input_ids"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids
        assert all(label == -100 for label in labels[:n]), "a prompt token carries a label"
        assert labels[n:] == ids[n:], "a completion token lost its label"
        assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id  # learns to stop
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    padded = batch["attention_mask"] == 0
    assert padded.any() and (batch["labels"][padded] == -100).all()  # padding never carries a label


def test_packing_keeps_rows_apart(tmp_path, tiny_model_dir):
    trainer, tokenizer, _ = _trainer(tmp_path, tiny_model_dir, packing="true")
    packed = trainer.train_dataset[0]
    batch = trainer.data_collator([packed])
    positions = batch["position_ids"][0]
    starts = (positions == 0).nonzero().flatten().tolist()
    assert len(starts) >= 2, "the first pack should hold several rows"
    # each packed row restarts its positions and its first token (a prompt token) has no label
    assert all(batch["labels"][0, s] == -100 for s in starts)
    # no attention across rows: the packed forward equals each row run on its own
    model = trainer.model.eval()
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        bounds = starts + [batch["input_ids"].shape[1]]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            alone = model(input_ids=batch["input_ids"][:, lo:hi]).logits[0]
            torch.testing.assert_close(together[lo:hi], alone, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- a short run


def test_short_run_trains_lora_only_and_writes_the_run_folder(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir, max_steps=6, save_steps=3, name="short")
    summary = train(cfg)
    run = tmp_path / "runs" / "short"
    for name in ("config.yaml", "manifest.json", "train_log.jsonl", "summary.json", "adapter/adapter_config.json"):
        assert (run / name).is_file(), name
    assert load_config(TrainConfig, run / "config.yaml") == cfg  # the saved config is itself a preset
    losses = [row["loss"] for row in read_train_log(run / "train_log.jsonl") if "loss" in row]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert summary["steps"] == 6 and summary["tokens_seen"] > 0
    # LoRA weights moved (B starts at zero); the base weights on disk are what the model holds untouched
    adapter = load_file(run / "adapter" / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b)
    assert not any("lora" not in k for k in adapter), "the adapter holds only LoRA weights"
    reloaded = load_model(str(tiny_model_dir), adapter=str(run / "adapter"))
    base = load_file(tiny_model_dir / "model.safetensors")
    merged_view = dict(reloaded.model.base_model.model.named_parameters())
    for key, tensor in base.items():
        name = key.replace(".weight", ".base_layer.weight") if key.replace(".weight", ".base_layer.weight") \
            in merged_view else key
        torch.testing.assert_close(merged_view[name], tensor, rtol=0, atol=0)


def test_existing_run_needs_resume_or_overwrite(tmp_path, tiny_model_dir):
    train(_cfg(tmp_path, tiny_model_dir, max_steps=2, save_steps=2, name="again"))
    with pytest.raises(TrainError, match="resume=true"):
        train(_cfg(tmp_path, tiny_model_dir, max_steps=2, save_steps=2, name="again"))


# ---------------------------------------------------------------------------------------------- errors


def test_4bit_without_gpu_names_the_cpu_preset(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: 4-bit loads")
    with pytest.raises(ModelError, match="smollm2_135m_cpu"):
        load_model(str(tiny_model_dir), load_in_4bit=True)


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(str(tmp_path / "no_model_here"))
    with pytest.raises(ModelError, match="GGUF file not found"):
        load_model(str(tmp_path / "weights.gguf"))


def test_sequence_longer_than_the_model_allows(tiny_model_dir):
    with pytest.raises(ModelError, match="max_position_embeddings=512"):
        load_model(str(tiny_model_dir), trainable=True, max_seq_length=4096)


def test_empty_or_malformed_data_folder(tmp_path, tiny_model_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainError, match="train.jsonl"):
        train(_cfg(tmp_path, tiny_model_dir, data=empty, name="e1"))
    bad = write_sft_folder(tmp_path / "bad")
    lines = (bad / "train.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"id": "x", "source": "t", "style": "cot", "prompt": "q"})  # no completion
    (bad / "train.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TrainError, match=r"train.jsonl:3: missing or empty 'completion'"):
        train(_cfg(tmp_path, tiny_model_dir, data=bad, name="e2"))


def test_out_of_memory_suggests_the_knobs(tmp_path, tiny_model_dir, monkeypatch):
    from trl import SFTTrainer

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SFTTrainer, "train", oom)
    with pytest.raises(TrainError, match="micro_batch_size=2 grad_accum=2"):
        train(_cfg(tmp_path, tiny_model_dir, max_steps=2, name="oom"))
