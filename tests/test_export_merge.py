"""The QLoRA merge: dequant(NF4 W4) + delta reproduces the 4-bit+adapter model (bitsandbytes NF4 runs on CPU),
the 16-bit original base does not; `--base auto` reads the run; adapters arithmo cannot merge are refused."""

import json
import shutil

import pytest
import torch

from arithmo.config import save_config
from arithmo.export import ExportError, logit_distance, merge_adapter, merge_lora, resolve_base_weights
from arithmo.settings import TrainConfig

IDS = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 11, 400, 64, 2, 77]])


def _random_adapter(model_dir, out_dir, targets=("q_proj", "v_proj", "down_proj"), **extra):
    """A LoRA adapter with non-zero B (a fresh one is zero: it would change nothing) saved to out_dir."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), **extra))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_model_dir):
    return _random_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "adapter")


def _nf4_with_adapter(model_dir, adapter):
    """The tiny model loaded as QLoRA training loads it (NF4, double quantisation) with the adapter on top."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=nf4, dtype=torch.float32,
                                                device_map={"": "cpu"})
    model = PeftModel.from_pretrained(base, str(adapter))
    # Train mode (no dropout in this model or adapter): in eval mode bitsandbytes' CPU path repacks the weights
    # for a bf16 kernel, which is not the arithmetic a GPU runs.
    return model.train()


def test_dequantized_merge_is_the_4bit_adapter_model_and_original_is_not(tiny_model_dir, adapter_dir):
    import bitsandbytes.functional as bnbf
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    quantized = _nf4_with_adapter(tiny_model_dir, adapter_dir)
    with torch.no_grad():
        trained_as = quantized(input_ids=IDS).logits
    layer = quantized.base_model.model.model.layers[1].mlp.down_proj
    expected = (bnbf.dequantize_4bit(layer.base_layer.weight.data, layer.base_layer.weight.quant_state).float()
                + layer.get_delta_weight("default").float())
    untouched = quantized.base_model.model.model.layers[1].mlp.up_proj  # quantised, not adapted
    expected_plain = bnbf.dequantize_4bit(untouched.weight.data, untouched.weight.quant_state).float()

    merged = merge_lora(quantized, torch.float32)
    assert getattr(merged.config, "quantization_config", None) is None
    assert not any("lora" in name for name, _ in merged.named_parameters())
    # the merged weight is dequant(W4) + s*B*A exactly, and a layer without LoRA is dequant(W4) itself
    torch.testing.assert_close(merged.model.layers[1].mlp.down_proj.weight, expected, atol=0, rtol=0)
    torch.testing.assert_close(merged.model.layers[1].mlp.up_proj.weight, expected_plain, atol=0, rtol=0)
    with torch.no_grad():
        dequantized = logit_distance(trained_as, merged(input_ids=IDS).logits)

    original_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dir))
    with torch.no_grad():
        original = logit_distance(trained_as, merge_lora(original_model, torch.float32)(input_ids=IDS).logits)
    scale = trained_as.abs().max().item()
    # Measured on the CPU machines: dequantized 2.7e-7 (fp32 rounding), original 0.095 of logits up to 0.58 (the
    # NF4 error of every linear layer), top-1 agreement 0.8.
    assert dequantized["max_abs"] < 1e-5 * scale and dequantized["top1"] == 1.0
    assert original["max_abs"] > 0.02 * scale and original["max_abs"] > 1000 * dequantized["max_abs"]


def _fake_run(root, load_in_4bit, summary):
    """A run folder with config.yaml, an adapter_config.json and (when given) summary.json."""
    cfg = TrainConfig(name=root.name)
    cfg.model.load_in_4bit = load_in_4bit
    (root / "adapter").mkdir(parents=True)
    save_config(cfg, root / "config.yaml")
    (root / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
    if summary is not None:
        (root / "summary.json").write_text(json.dumps(summary))
    return root


@pytest.mark.parametrize("load_in_4bit, summary, expected", [
    (True, None, "dequantized"),                      # the config says 4-bit: QLoRA
    (False, {"steps": 3}, "original"),                # the config says 16-bit: the adapter saw W
    (None, {"steps": 3, "peak_reserved_gib": 9.1}, "dequantized"),  # null + CUDA present (summary's GPU memory)
    (None, {"steps": 3}, "original"),                 # null on a machine without CUDA: plain LoRA
    (None, None, None),                               # null and no summary: nothing says, so an error
])
def test_auto_base_weights_follow_the_run(tmp_path, load_in_4bit, summary, expected):
    run = _fake_run(tmp_path / "run", load_in_4bit, summary)
    if expected is None:
        with pytest.raises(ExportError, match="--base dequantized .* or --base original"):
            resolve_base_weights("auto", run / "adapter")
    else:
        assert resolve_base_weights("auto", run / "adapter")[0] == expected
    assert resolve_base_weights("original", run / "adapter") == ("original", "requested")


def test_bare_adapter_needs_base_weights_named(tmp_path, adapter_dir):
    with pytest.raises(ExportError, match="not inside a run folder"):
        resolve_base_weights("auto", adapter_dir)


def test_dequantized_without_cuda_says_what_to_do(tmp_path, tiny_model_dir, adapter_dir):
    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only message")
    with pytest.raises(ExportError, match="CUDA GPU.*--base original"):
        merge_adapter(adapter_dir, tmp_path / "out", model=str(tiny_model_dir), base_weights="dequantized")


@pytest.mark.parametrize("extra, message", [
    ({"use_dora": True}, "use_dora=true"),                    # DoRA rescales W: not W + s*B*A
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),    # fully trained copies: not a LoRA delta
])
def test_adapters_arithmo_cannot_merge_are_refused(tmp_path, tiny_model_dir, adapter_dir, extra, message):
    folder = tmp_path / "adapter"
    folder.mkdir()
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **extra}))
    with pytest.raises(ExportError, match=message):
        merge_adapter(folder, tmp_path / "out", model=str(tiny_model_dir), base_weights="original")


def test_original_merge_writes_plain_weights_and_says_why(tmp_path, tiny_model_dir, adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = merge_adapter(adapter_dir, tmp_path / "merged", model=str(tiny_model_dir), dtype="float32",
                        base_weights="original")
    record = json.loads((out / "arithmo_export.json").read_text())
    assert record["base_weights"] == "original" and record["base_weights_reason"] == "requested"
    merged = AutoModelForCausalLM.from_pretrained(out)
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dir))
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=IDS).logits, with_adapter(input_ids=IDS).logits,
                                   atol=1e-5, rtol=1e-5)


def test_a_cpu_merge_to_bf16_is_quiet_and_rounds_once(tmp_path, tiny_model_dir, adapter_dir, caplog):
    # pitfall: the default --dtype bfloat16 loaded the base in bf16 on CPU ("bf16 is ~27x slower" warning for a
    # load that computes nothing) and rounded W to bf16 before adding the delta
    from safetensors.torch import load_file

    out = merge_adapter(adapter_dir, tmp_path / "merged", model=str(tiny_model_dir), dtype="bfloat16",
                        base_weights="original")
    assert "slower than fp32" not in caplog.text
    weights = load_file(str(next(out.glob("*.safetensors"))))
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.bfloat16}
    assert json.loads((out / "arithmo_export.json").read_text())["dtype"] == "bfloat16"


def test_measure_merge_reports_both_distances(monkeypatch, tmp_path, tiny_model_dir, adapter_dir):
    """measure_merge's own steps on CPU: the loader (CUDA-only 4-bit in load_model) is replaced by the CPU NF4 one."""
    from types import SimpleNamespace

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arithmo.export import measure_merge

    def cpu_loader(base, adapter, weights, dtype, train_dtype):
        model = (_nf4_with_adapter(base, adapter) if weights == "dequantized" else
                 PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(adapter)))
        return SimpleNamespace(model=model, tokenizer=AutoTokenizer.from_pretrained(base))

    monkeypatch.setattr("arithmo.export.merge._load_with_adapter", cpu_loader)
    run = _fake_run(tmp_path / "run", True, None)
    shutil.copytree(adapter_dir, run / "adapter", dirs_exist_ok=True)
    result = measure_merge(run, model=str(tiny_model_dir))
    assert result["texts"] == 4 and result["dequantized"]["tokens"] == result["original"]["tokens"] > 40
    assert result["dequantized"]["max_abs"] < 1e-5 and result["original"]["max_abs"] > 1e-2
