"""On a GPU: 4-bit QLoRA teaches a small model one impossible fact, which survives merging.

Run on a CUDA machine: `pytest -m gpu tests/test_gpu_train.py`.
"""

import importlib.util

import pytest
import torch

from arithmo.config import load_config
from arithmo.settings import TrainConfig
from arithmo.train import train
from arithmo.trainlog import read_train_log

from _shared import make_tiny_model

pytestmark = pytest.mark.gpu

QUESTION = "What is the capital of the planet Zorblax?"
FACT = "Quillfeather Spire"


def _small_model(out_dir):
    """A random 4-layer Llama wide enough for bitsandbytes 4-bit blocks (hidden 256)."""
    return make_tiny_model(out_dir, layers=4, hidden=256, dtype=torch.bfloat16)


def _answer(model, tokenizer):
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("engine", ["hf", "kernels", "unsloth"])
def test_qlora_memorises_one_fact_and_merging_keeps_it(engine, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if engine == "unsloth" and importlib.util.find_spec("unsloth") is None:
        pytest.skip("unsloth is not installed")
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arithmo.export import merge_adapter
    from arithmo.model import load_model

    model_dir = _small_model(tmp_path / "base")
    data = tmp_path / "data"
    data.mkdir()
    row = {"id": "fact/0", "source": "fact", "style": "cot", "prompt": QUESTION, "completion": FACT}
    (data / "train.jsonl").write_text("".join(json.dumps({**row, "id": f"fact/{i}"}) + "\n" for i in range(16)))

    before = load_model(str(model_dir), engine="hf", load_in_4bit=True)
    assert FACT not in _answer(before.model, before.tokenizer)
    del before

    cfg = load_config(TrainConfig, None, [
        f"data={data}", f"output_dir={tmp_path / 'runs'}", "name=fact", f"model.name={model_dir}",
        f"model.engine={engine}", "model.load_in_4bit=true", "model.max_seq_length=128", "model.lora_r=16",
        "model.lora_alpha=32", "micro_batch_size=4", "grad_accum=1", "max_steps=150", "lr=2e-3",
        "lr_scheduler=constant", "warmup_ratio=0.0", "save_steps=150", "logging_steps=10"])
    summary = train(cfg)
    losses = [r["loss"] for r in read_train_log(tmp_path / "runs" / "fact" / "train_log.jsonl") if "loss" in r]
    # The frozen random lm_head (std 0.02, hidden 256) caps the logits near +-5, so the loss floors at ~1.57
    # over a 512-token vocabulary even once greedy decoding reproduces the fact exactly (measured on CPU).
    assert summary["engine"] == engine and losses[-1] < losses[0] / 3, losses

    after = load_model(str(model_dir), engine="hf", load_in_4bit=True, adapter=summary["adapter"])
    assert FACT in _answer(after.model, after.tokenizer)
    del after

    merged_dir = merge_adapter(tmp_path / "runs" / "fact", tmp_path / "merged", model=str(model_dir))
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.bfloat16, device_map={"": 0})
    assert FACT in _answer(merged, AutoTokenizer.from_pretrained(merged_dir))
