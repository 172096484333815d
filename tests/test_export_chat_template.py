"""model.chat_template: a base model without a chat template trains with a named or .jinja one, the adapter keeps
it, loading the adapter applies it, and the merged export (and so its GGUF and Modelfile) carries it."""

import json

import pytest

from arithmo.config import load_config
from arithmo.export import merge_adapter
from arithmo.export.modelfile import ollama_template
from arithmo.model import CHAT_TEMPLATES, ModelError, load_model
from arithmo.prompts import render_prompt
from arithmo.settings import TrainConfig
from arithmo.train import train

from _shared import CHATML_TEMPLATE, write_sft_folder


@pytest.fixture(scope="module")
def chatml_run(tmp_path_factory, tiny_base_model_dir):
    root = tmp_path_factory.mktemp("chat_template")
    write_sft_folder(root / "data", n_train=8, n_val=0)
    cfg = load_config(TrainConfig, None, [
        f"data={root / 'data'}", f"output_dir={root / 'runs'}", "name=chatml", f"model.name={tiny_base_model_dir}",
        "model.engine=hf", "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=128",
        "model.gradient_checkpointing=false", "model.chat_template=chatml", "micro_batch_size=4", "grad_accum=1",
        "max_steps=2", "save_steps=2", "logging_steps=1", "report_to=none"])
    train(cfg)
    return root / "runs" / "chatml"


def test_the_run_trains_keeps_and_reloads_the_override(chatml_run, tiny_base_model_dir):
    assert (chatml_run / "adapter" / "chat_template.jinja").read_text() == CHAT_TEMPLATES["chatml"]
    assert "chat_template: chatml" in (chatml_run / "config.yaml").read_text()
    plain = load_model(str(tiny_base_model_dir)).tokenizer
    assert not plain.chat_template and render_prompt("Q?", plain).startswith("Question: Q?")
    with_adapter = load_model(str(tiny_base_model_dir), adapter=str(chatml_run / "adapter")).tokenizer
    assert render_prompt("Q?", with_adapter) == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"


def test_the_merged_export_carries_it_into_the_modelfile_prompt(chatml_run, tmp_path):
    from transformers import AutoTokenizer

    out = merge_adapter(chatml_run, tmp_path / "merged", dtype="float32")
    assert json.loads((out / "arithmo_export.json").read_text())["base_weights"] == "original"
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == CHAT_TEMPLATES["chatml"]
    assert ollama_template(tokenizer, "auto") == "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("spec, error", [
    ("chatml", None),                                   # a name from CHAT_TEMPLATES
    ("FILE", None),                                     # a .jinja file (written below)
    ("alpaca", None),                                   # ends with the eos: any tokenizer can stop on it
    ("chatlm", "expected one of chatml, llama3"),       # a typo names the choices
    ("missing.jinja", "file not found"),
    ("llama3", "'<|eot_id|>' is 10 tokens"),            # not a token of this tokenizer: generation could not stop
])
def test_chat_template_settings(tmp_path, tiny_base_model_dir, spec, error):
    if spec == "FILE":
        spec = str(tmp_path / "t.jinja")
        (tmp_path / "t.jinja").write_text(CHATML_TEMPLATE)
    if error is None:
        tokenizer = load_model(str(tiny_base_model_dir), chat_template=spec).tokenizer
        assert tokenizer.chat_template == (CHAT_TEMPLATES.get(spec) or CHATML_TEMPLATE)
    else:
        with pytest.raises(ModelError, match=rf"chat_template.*{error.replace('|', '.')}"):
            load_model(str(tiny_base_model_dir), chat_template=spec)
