"""GGUF export through llama.cpp's converter: the file loads back in transformers (`gguf_file=`) with the merged
model's logits (tolerance per quant type), its tokenizer and chat template; the converter's tokenizer rules."""

import json
import shutil

import pytest
import torch

from arithmo.config import save_config
from arithmo.export import ExportError, convert_to_gguf, logit_distance, main, read_gguf_metadata
from arithmo.export.gguf import _staged_tokenizer, converter_version
from arithmo.export._convert import pre_tokenizer_by_rule
from arithmo.settings import TrainConfig

from test_export_merge import IDS, _random_adapter

if converter_version() is None:
    pytest.skip("llama.cpp's converter is not installed: pip install 'arithmo[gguf]' (in the dev extra)",
                allow_module_level=True)

# Largest |logit difference| allowed, as a share of the largest |logit|, per GGUF type. Measured on the tiny model
# (2026-11-29): f32 0 (the same floats), f16 4.2e-4 (11-bit mantissas), bf16 3.1e-3 (8-bit mantissas), q8_0
# 1.05e-2 (int8 blocks of 32 with an fp16 scale). Each bound is ~4x its measurement; the adapter moves the
# logits by more than every bound (checked below), so a GGUF without it fails.
TOLERANCE = {"f32": 1e-6, "f16": 2e-3, "bf16": 1.2e-2, "q8_0": 4e-2}
PROBE = "Tom has 12 apples, buys 30 more: 12 + 30 = 42.\nThe answer is: 42 ```print(3 ** 2)``` café ½"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    """A 16-bit LoRA run folder of the tiny chat model: config.yaml, adapter/ with its tokenizer."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("runs") / "tinyrun"
    cfg = TrainConfig(name="tinyrun")
    cfg.model.name, cfg.model.load_in_4bit = str(tiny_model_dir), False
    _random_adapter(tiny_model_dir, root / "adapter")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(root / "adapter")
    save_config(cfg, root / "config.yaml")
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory, run_dir):
    out = tmp_path_factory.mktemp("gguf") / "out"
    assert main([str(run_dir), "--out", str(out), "--format", "gguf", "--quant", "f32", "--dtype", "float32",
                 "--keep-hf"]) == 0
    return out


def _logits(model_dir, gguf_file=None):
    from transformers import AutoModelForCausalLM

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs)
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _check_logits(out, gguf_name, quant, base_dir):
    merged = _logits(out / "hf")
    scale = merged.abs().max().item()
    distance = logit_distance(merged, _logits(out, gguf_name))
    assert distance["max_abs"] <= TOLERANCE[quant] * scale, (quant, distance, scale)
    assert logit_distance(merged, _logits(base_dir))["max_abs"] > 2 * TOLERANCE["q8_0"] * scale  # the adapter mattered


def test_f32_gguf_is_the_merged_model(exported, tiny_model_dir):
    _check_logits(exported, "tinyrun-f32.gguf", "f32", tiny_model_dir)


@pytest.mark.parametrize("quant", ["q8_0", pytest.param("f16", marks=pytest.mark.slow),
                                   pytest.param("bf16", marks=pytest.mark.slow)])
def test_quantized_gguf_stays_within_its_tolerance(exported, tiny_model_dir, tmp_path, quant):
    out = tmp_path / "out"
    shutil.copytree(exported / "hf", out / "hf")
    convert_to_gguf(out / "hf", out / f"m-{quant}.gguf", quant=quant)
    _check_logits(out, f"m-{quant}.gguf", quant, tiny_model_dir)


def test_gguf_carries_tokenizer_template_and_a_modelfile(exported):
    from transformers import AutoTokenizer

    merged = AutoTokenizer.from_pretrained(exported / "hf")
    meta = read_gguf_metadata(exported / "tinyrun-f32.gguf")
    assert meta["general.architecture"] == "llama"
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt2"  # arithmo's rule fired
    assert meta["tokenizer.ggml.tokens"] == len(merged) and meta["tokenizer.ggml.merges"] > 0
    assert meta["tokenizer.ggml.eos_token_id"] == merged.eos_token_id
    assert meta["tokenizer.chat_template"] == merged.chat_template
    from_gguf = AutoTokenizer.from_pretrained(exported, gguf_file="tinyrun-f32.gguf")
    assert from_gguf(PROBE)["input_ids"] == merged(PROBE)["input_ids"]
    record = json.loads((exported / "arithmo_export.json").read_text())
    assert record["merge"]["base_weights"] == "original" and "config.yaml" in record["merge"]["base_weights_reason"]
    assert any("tokenizer.ggml.pre=gpt2" in note for note in record["notes"])
    assert (exported / "Modelfile").read_text().splitlines()[2:] == [
        "FROM ./tinyrun-f32.gguf",
        'TEMPLATE """<|im_start|>user',
        "{{ .Prompt }}<|im_end|>",
        "<|im_start|>assistant",
        '"""',
        'PARAMETER stop "<|im_end|>"',
        "PARAMETER temperature 0",
    ]


def test_a_tokenizer_neither_llama_cpp_nor_the_rule_knows_stops_the_export(exported, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(exported / "hf", folder)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, tokenizer["pre_tokenizer"]]}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ExportError, match="converter failed.*pre-tokenizer was not recognized"):
        convert_to_gguf(folder, tmp_path / "x.gguf", quant="f32")
    assert not (tmp_path / ".x.stage").exists()


def test_missing_converter_names_the_extra(monkeypatch, exported, tmp_path):
    monkeypatch.setattr("arithmo.export.gguf.converter_version", lambda: None)
    with pytest.raises(ExportError, match=r"pip install 'arithmo\[gguf\]'"):
        convert_to_gguf(exported / "hf", tmp_path / "x.gguf")


def test_safetensors_format_needs_an_adapter(tiny_model_dir, tmp_path, capsys):
    assert main([str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 2
    assert "holds no trained adapter" in capsys.readouterr().err


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


@pytest.mark.parametrize("pre_tokenizer, expected", [
    (BYTE_LEVEL, "gpt2"),                                          # GPT-2's regex, alone: the rule names it
    ({**BYTE_LEVEL, "use_regex": False}, None),                    # no regex split: not GPT-2's pre-tokenizer
    ({**BYTE_LEVEL, "add_prefix_space": True}, None),              # a leading space added: llama.cpp's gpt2 adds none
    # digits split first (SmolLM2's hub tokenizer: llama.cpp knows it by its hash, the rule does not guess it)
    ({"type": "Sequence", "pretokenizers": [{"type": "Digits"}, BYTE_LEVEL]}, None),
    ({"type": "Metaspace"}, None),                                 # SentencePiece-style: never guessed
])
def test_pre_tokenizer_rule(tmp_path, pre_tokenizer, expected):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"pre_tokenizer": pre_tokenizer}))
    assert pre_tokenizer_by_rule(tmp_path) == expected


@pytest.mark.parametrize("model, pre_tokenizer, fires", [
    ({"type": "BPE", "byte_fallback": True}, BYTE_LEVEL, True),    # transformers' GGUF conversion writes this
    ({"type": "BPE", "byte_fallback": False}, BYTE_LEVEL, False),  # already right
    ({"type": "BPE", "byte_fallback": True}, {"type": "Metaspace"}, False),  # a real SentencePiece BPE: keep it
    ({"type": "Unigram"}, BYTE_LEVEL, False),                      # not BPE
])
def test_byte_fallback_staging_rule(model, pre_tokenizer, fires):
    staged, fired = _staged_tokenizer({"model": model, "pre_tokenizer": pre_tokenizer})
    assert bool(fired) == fires
    assert staged["model"].get("byte_fallback") == (False if fires else model.get("byte_fallback"))


@pytest.mark.slow
def test_smollm2_with_an_adapter_exports_to_gguf(tmp_path):
    """The embedded SmolLM2-135M-Instruct (real weights) + a random adapter -> q8_0 GGUF and back (~2 min)."""
    from transformers import AutoTokenizer

    from arithmo.model import ModelError, plain_model_folder

    try:
        base = plain_model_folder("smollm2-135m-instruct")
    except ModelError as err:
        pytest.skip(str(err))
    _random_adapter(base, tmp_path / "adapter", targets=("q_proj", "v_proj"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "adapter"), "--model", base, "--base", "original", "--out", str(out), "--format",
                 "gguf", "--dtype", "float32", "--keep-hf", "--name", "smol"]) == 0
    merged, gguf = _logits(out / "hf"), _logits(out, "smol-q8_0.gguf")
    distance = logit_distance(merged, gguf)
    # Measured 2026-11-29: max |dlogit| 0.81 of logits up to ~30 (2.7%), KL <= 0.0066 nats, top-1 1.0 (30 layers
    # of int8 rounding add up more than the tiny model's 2).
    assert distance["max_abs"] <= 0.1 * merged.abs().max().item() and distance["kl"] < 0.01, distance
    assert distance["top1"] >= 0.9, distance
    merged_tokenizer = AutoTokenizer.from_pretrained(out / "hf")
    assert AutoTokenizer.from_pretrained(out, gguf_file="smol-q8_0.gguf")(PROBE)["input_ids"] == \
        merged_tokenizer(PROBE)["input_ids"]
    modelfile = (out / "Modelfile").read_text()
    assert "You are a helpful AI assistant named SmolLM" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
