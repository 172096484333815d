"""Training and generation see the same tokens: one BOS whatever the chat template writes, completions that end
with the token generation stops on, and rows longer than max_seq_length counted and handled (issue 14)."""

import json

import pytest
from tokenizers import processors
from transformers import AutoTokenizer

from _shared import make_tokenizer, write_sft_folder
from arithmo.generate import _prompt_ids, end_token_ids
from arithmo.prompts import render_eval, render_sft, tokenize_sft
from arithmo.settings import TrainError
from arithmo.sft import render_dataset

# Chat templates in the shapes of three families (the tokenizers below are tiny, the templates are real shapes).
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant"
          "<|end_header_id|>\n\n{% endif %}")
MISTRAL = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
           "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
CHATML = None  # the tiny tokenizer's own template: no BOS written, none added


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """style -> a tokenizer that adds BOS by itself (as Llama's and Mistral's do), with that style's template."""
    made = {}
    for style, template, eos in (("llama3", LLAMA3, "<|end_of_text|>"), ("mistral", MISTRAL, "</s>"),
                                 ("chatml", CHATML, None)):
        folder = tmp_path_factory.mktemp(style)
        make_tokenizer(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|eot_id|>", "<|start_header_id|>",
                                                                    "<|end_header_id|>", "<|end_of_text|>", "</s>"]})
        if template is not None:
            tokenizer.chat_template = template
            tokenizer.eos_token = eos
            bos = tokenizer.bos_token
            tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.bos_token_id)])
        made[style] = tokenizer
    return made


RECORD = {"id": "t/1", "source": "t", "style": "cot", "prompt": "What is 2 + 3?",
          "completion": "2 + 3 = 5.\nThe answer is: 5"}


@pytest.mark.parametrize("style, end", [
    ("llama3", "<|eot_id|>"),   # the pitfall: the template writes <|begin_of_text|> AND the tokenizer adds one;
                                # the turn ends with <|eot_id|>, not the tokenizer's eos <|end_of_text|>
    ("mistral", "</s>"),        # the template writes <s>; the tokenizer adds <s>
    ("chatml", "<|im_end|>"),   # no BOS at all; the turn ends with <|im_end|>
])
def test_training_ids_start_like_generation_and_end_where_it_stops(tokenizers, style, end):
    tokenizer = tokenizers[style]
    ids, mask = tokenize_sft(render_sft(RECORD, tokenizer, "chat"), tokenizer)
    generation_prompt = _prompt_ids(tokenizer, render_eval(RECORD["prompt"], "cot", tokenizer, "chat"))
    assert ids[:len(generation_prompt)] == generation_prompt, "training starts with the ids generation is fed"
    assert mask == [0] * len(generation_prompt) + [1] * (len(ids) - len(generation_prompt))
    bos = tokenizer.bos_token_id
    assert ids[:2] != [bos, bos], "a doubled BOS"
    assert ids.count(bos) == (0 if style == "chatml" else 1)
    end_id = tokenizer.convert_tokens_to_ids(end)
    assert ids[-1] == end_id and mask[-1] == 1, "the completion ends with (and learns) the end of turn"
    assert end_id in end_token_ids(None, tokenizer), "generation stops on that token"


def test_the_plain_template_ends_with_eos(tokenizers):
    tokenizer = tokenizers["chatml"]
    rendered = render_sft(RECORD, tokenizer, "plain")
    assert rendered["prompt"].endswith("Answer:") and rendered["completion"].startswith(" 2 + 3")
    assert rendered["completion"].endswith(tokenizer.eos_token)
    ids, _ = tokenize_sft(rendered, tokenizer)
    assert ids[-1] == tokenizer.eos_token_id


def _rows(n_short=6, n_long=3):
    rows = [{"id": f"s/{i}", "source": "short", "style": "cot", "prompt": f"What is {i} + 1?",
             "completion": f"The answer is: {i + 1}"} for i in range(n_short)]
    long_text = " ".join(f"step {j}: add {j} to the total." for j in range(60)) + "\nThe answer is: 7"
    rows += [{"id": f"l/{i}", "source": "long", "style": "cot", "prompt": "Add the numbers.", "completion": long_text}
             for i in range(n_long)]
    return rows


def test_long_rows_are_dropped_by_default_and_counted_per_source(tokenizers):
    tokenizer = tokenizers["chatml"]
    dataset, report = render_dataset(_rows(), tokenizer, "chat", max_seq_length=64)
    assert len(dataset) == 6 and report["over_limit"] == {"long": 3} and report["longest"] > 64
    assert all(len(row["input_ids"]) <= 64 for row in dataset)
    # truncate keeps them, cut at the limit (without their end: why drop is the default)
    dataset, report = render_dataset(_rows(), tokenizer, "chat", max_seq_length=64, long_rows="truncate")
    assert len(dataset) == 9 and max(len(row["input_ids"]) for row in dataset) == 64
    with pytest.raises(TrainError, match=r"3 rows are longer than model.max_seq_length=64 .*'long': 3.*l/0, l/1"):
        render_dataset(_rows(), tokenizer, "chat", max_seq_length=64, long_rows="error")


def test_long_rows_reach_the_progress_output_summary_and_manifest(tmp_path, tiny_model_dir, capsys):
    from arithmo.config import load_config
    from arithmo.settings import TrainConfig
    from arithmo.train import train

    data = write_sft_folder(tmp_path / "data", n_train=8)
    rows = [json.loads(line) for line in open(data / "train.jsonl")]
    rows[0]["completion"] = " ".join(["and one more"] * 80) + "\nThe answer is: 1"  # far over 96 tokens
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(TrainConfig, None, [
        f"data={data}", f"output_dir={tmp_path / 'runs'}", f"model.name={tiny_model_dir}", "model.engine=hf",
        "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=96",
        "model.gradient_checkpointing=false", "micro_batch_size=4", "grad_accum=1", "max_steps=1", "name=long"])
    summary = train(cfg)
    assert "rows over max_seq_length=96 tokens: 1 of 8 (t 1; dropped" in capsys.readouterr().out
    assert summary["long_rows"]["over_limit"] == {"t": 1} and summary["rows"] == 7
    manifest = json.loads((tmp_path / "runs" / "long" / "manifest.json").read_text())
    assert manifest["training"]["long_rows"]["over_limit"] == {"t": 1}
    assert json.loads((tmp_path / "runs" / "long" / "summary.json").read_text())["long_rows"]["policy"] == "drop"
