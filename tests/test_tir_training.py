"""TIR training: the loss covers the model's text and code, never the interpreter's output blocks, on the
trainer's own batches, with and without packing (issue 19)."""

import json

import pytest
import torch

from _shared import write_sft_folder
from arithmo.config import load_config
from arithmo.model import load_model
from arithmo.prompts import TIR_INSTRUCTION, output_block, render_sft, tir_output_spans
from arithmo.runs import RunFolder
from arithmo.settings import TrainConfig
from arithmo.sft import render_dataset
from arithmo.train import build_trainer


def tir_row(i: int) -> dict:
    a, b = 3 + i, 4 + 2 * i
    completion = (f"Add the two amounts.\n```python\ntotal = {a} + {b}\nprint(total)\n```\n"
                  + output_block(str(a + b)) + f"So there are {a + b} apples.\nThe answer is: {a + b}")
    return {"id": f"tir/{i}", "source": "tir", "style": "tir", "completion": completion,
            "prompt": f"Sam has {a} apples and gets {b} more. How many apples?\n\n{TIR_INSTRUCTION}"}


@pytest.fixture
def trainer_for(tmp_path, tiny_model_dir):
    def make(packing: bool):
        data = write_sft_folder(tmp_path / "data", n_train=4)
        rows = [tir_row(i) for i in range(8)]
        (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = load_config(TrainConfig, None, [
            f"data={data}", f"output_dir={tmp_path / 'runs'}", f"model.name={tiny_model_dir}", "model.engine=hf",
            "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=256",
            "model.gradient_checkpointing=false", "micro_batch_size=4", "grad_accum=1", f"packing={packing}"])
        loaded = load_model(str(tiny_model_dir), engine="hf", trainable=True, load_in_4bit=False, dtype="float32",
                            gradient_checkpointing=False, max_seq_length=256)
        dataset, _ = render_dataset(rows, loaded.tokenizer, "auto", 256)
        trainer, _ = build_trainer(loaded.model, loaded.tokenizer, dataset, None, cfg, RunFolder(tmp_path / "run"))
        return trainer, loaded.tokenizer, rows
    return make


def _labelled_text(tokenizer, ids, labels) -> tuple[str, str]:
    """(the text of the tokens that carry a label, the text of those that do not)."""
    kept = [i for i, label in zip(ids, labels) if label != -100]
    masked = [i for i, label in zip(ids, labels) if label == -100]
    return tokenizer.decode(kept), tokenizer.decode(masked)


@pytest.mark.parametrize("packing", [False, True])
def test_output_blocks_carry_no_loss_on_the_trainers_batches(trainer_for, packing):
    trainer, tokenizer, rows = trainer_for(packing)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        learned, unlearned = _labelled_text(tokenizer, ids, labels)
        assert "```output" not in learned, "the interpreter's output block carries a label"
        assert "```output" in unlearned
        assert "```python" in learned and "print(total)" in learned and "The answer is:" in learned, \
            "the model's own text and code keep their labels"
        assert "Sam has" not in learned  # the prompt stays masked
    if packing:
        assert batch["input_ids"].shape[0] < len(rows), "rows were packed together"


def test_the_masked_spans_are_exactly_the_output_blocks(tiny_model_dir):
    from transformers import AutoTokenizer

    from arithmo.prompts import tokenize_sft

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rendered = render_sft(tir_row(1), tokenizer, "auto")
    spans = tir_output_spans(rendered["completion"])
    assert len(spans) == 1 and rendered["completion"][slice(*spans[0])] == "```output\n10\n```\n"
    ids, mask = tokenize_sft(rendered, tokenizer, spans)
    ids_plain, mask_plain = tokenize_sft(rendered, tokenizer)
    assert ids == ids_plain and sum(mask) < sum(mask_plain)  # same tokens, fewer with a loss
    masked_text = tokenizer.decode([i for i, m, p in zip(ids, mask, mask_plain) if p and not m])
    assert masked_text.strip() == "```output\n10\n```".strip()
