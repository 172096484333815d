"""Think templates (issue 27): a reasoning record's trace goes in the template's own think block -- Qwen3's
reasoning_content path, R1-distill's opened generation prompt, a plain <think> block for other templates and base
models -- never through a path that strips it; the loss covers the block and the answer, the prompt is masked,
with and without packing (no attention across packed rows); evaluation reads the answer after the block; a trace
that long_rows=truncate cuts before its answer is counted."""

from pathlib import Path

import pytest
import torch

from _shared import CHATML_TEMPLATE, make_tokenizer, write_sft_folder
from arithmo.config import load_config
from arithmo.grading.extract import extract_answer
from arithmo.model import load_model
from arithmo.prompts import render_eval, render_sft, tokenize_sft
from arithmo.runs import RunFolder
from arithmo.settings import TrainConfig, TrainError
from arithmo.sft import render_dataset
from arithmo.thinking import ThinkError, renders_reasoning_content, think_completion, think_path, with_opened_think
from arithmo.train import build_trainer

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
R1_SPECIALS = {"bos": "<｜begin▁of▁sentence｜>", "eos": "<｜end▁of▁sentence｜>"}
SPECIALS = ["<｜User｜>", "<｜Assistant｜>", R1_SPECIALS["bos"], R1_SPECIALS["eos"]]
KINDS = ("qwen3", "r1", "chatml", "base")


def _make(out: Path, kind: str) -> Path:
    """A tiny random Llama whose tokenizer carries `kind`'s chat template (none for `base`)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(out, chat_template=False)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS})
    if kind == "r1":
        tokenizer.bos_token, tokenizer.eos_token = R1_SPECIALS["bos"], R1_SPECIALS["eos"]
    tokenizer.chat_template = {"qwen3": (TEMPLATES / "qwen3.jinja").read_text(encoding="utf-8"),
                               "r1": (TEMPLATES / "r1_distill.jinja").read_text(encoding="utf-8"),
                               "chatml": CHATML_TEMPLATE, "base": None}[kind]
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def think_models(tmp_path_factory):
    return {kind: _make(tmp_path_factory.mktemp(f"think_{kind}"), kind) for kind in KINDS}


@pytest.fixture(scope="module")
def tokenizers(think_models):
    from transformers import AutoTokenizer

    return {kind: AutoTokenizer.from_pretrained(folder) for kind, folder in think_models.items()}


# A trace whose own boxed number is not the answer: evaluation must read the answer after the block.
RECORD = {"id": "t/0", "source": "t", "style": "cot", "prompt": "Sam has 5 apples and gets 7 more. How many?",
          "reasoning": "First guess \\boxed{11}. Wait: 5 + 7 = 12.", "completion": "The answer is: 12"}


# ---------------------------------------------------------------------------------------------- rendering

@pytest.mark.parametrize("kind, path, prompt_tail, completion", [
    # Qwen3: its own reasoning_content path writes the block; the generation prompt does not open one
    ("qwen3", "reasoning_content", "<|im_start|>assistant\n",
     "<think>\nFirst guess \\boxed{11}. Wait: 5 + 7 = 12.\n</think>\n\nThe answer is: 12<|im_end|>"),
    # R1-distill: the generation prompt opened the block; the completion starts inside it
    ("r1", "opened", "<｜Assistant｜><think>\n",
     "First guess \\boxed{11}. Wait: 5 + 7 = 12.\n</think>\n\nThe answer is: 12<｜end▁of▁sentence｜>"),
    # a chat template without a think path (SmolLM2's ChatML): the completion writes the block itself
    ("chatml", "plain", "<|im_start|>assistant\n",
     "<think>\nFirst guess \\boxed{11}. Wait: 5 + 7 = 12.\n</think>\n\nThe answer is: 12<|im_end|>"),
    # a base model's plain template: the same block after "Answer:"
    ("base", "plain", "\n\nAnswer:",
     " <think>\nFirst guess \\boxed{11}. Wait: 5 + 7 = 12.\n</think>\n\nThe answer is: 12<|im_end|>"),
])
def test_each_template_puts_the_trace_in_its_think_block(tokenizers, kind, path, prompt_tail, completion):
    tokenizer = tokenizers[kind]
    rendered = render_sft(RECORD, tokenizer, "auto")
    assert rendered["prompt"].endswith(prompt_tail) and rendered["completion"] == completion
    assert think_path(rendered["prompt"], tokenizer, kind != "base") == path
    # generation is prompted with exactly the training prompt: it opens the block where the template does
    assert render_eval(RECORD["prompt"], "cot", tokenizer, "auto") == rendered["prompt"]


def test_the_paths_that_strip_reasoning_are_never_taken(tokenizers):
    # R1's assistant-turn path drops everything up to </think>: rendering the turn would lose the trace ...
    r1 = tokenizers["r1"]
    turn = r1.apply_chat_template([{"role": "user", "content": "Q"},
                                   {"role": "assistant", "content": "<think>\nTRACE\n</think>\n\nA"}], tokenize=False)
    assert "TRACE" not in turn
    assert "TRACE" in render_sft({**RECORD, "reasoning": "TRACE"}, r1, "auto")["completion"]  # ... training keeps it
    # Qwen3 drops the reasoning of turns before the last user query: only a single last turn keeps it
    qwen = tokenizers["qwen3"]
    two = qwen.apply_chat_template([{"role": "user", "content": "Q1"},
                                    {"role": "assistant", "content": "A1", "reasoning_content": "EARLIER"},
                                    {"role": "user", "content": "Q2"},
                                    {"role": "assistant", "content": "A2", "reasoning_content": "LATEST"}],
                                   tokenize=False)
    assert "EARLIER" not in two and "LATEST" in two
    assert renders_reasoning_content(qwen) and not renders_reasoning_content(tokenizers["chatml"])


@pytest.mark.parametrize("change, message", [
    ({"reasoning": "R </think> more"}, "tag of its own"),        # the block would end inside the trace
    ({"reasoning": "<think> R"}, "tag of its own"),
    ({"completion": "A </think> B"}, "answer holds"),              # evaluation would read after the second tag
])
def test_traces_that_would_corrupt_the_block_are_refused(tokenizers, change, message):
    with pytest.raises(ThinkError, match=message):
        render_sft({**RECORD, **change}, tokenizers["chatml"], "auto")


def test_a_prompt_with_thinking_switched_off_takes_no_trace(tokenizers):
    qwen = tokenizers["qwen3"]
    prompt = qwen.apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False,
                                      add_generation_prompt=True, enable_thinking=False)
    assert prompt.endswith("<think>\n\n</think>\n\n")
    with pytest.raises(ThinkError, match="switched off"):
        think_completion(prompt, "Q", "R", "A", qwen, True, "<|im_end|>")


def test_a_row_the_template_refuses_is_a_train_error_naming_it(tokenizers):
    with pytest.raises(TrainError, match="row t/0: .*tag of its own"):
        render_dataset([{**RECORD, "reasoning": "x </think> y"}], tokenizers["chatml"], "auto", 256)


@pytest.mark.parametrize("kind", KINDS)
def test_labels_cover_the_block_and_the_answer_and_mask_the_prompt(tokenizers, kind):
    tokenizer = tokenizers[kind]
    rendered = render_sft(RECORD, tokenizer, "auto")
    ids, mask = tokenize_sft(rendered, tokenizer)
    learned = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    unlearned = tokenizer.decode([i for i, m in zip(ids, mask) if not m])
    assert "5 + 7 = 12" in learned and "</think>" in learned and "The answer is: 12" in learned
    assert "Sam has" in unlearned and "Sam has" not in learned
    assert ids[-1] == tokenizer.convert_tokens_to_ids(tokenizer.eos_token) and mask[-1] == 1  # learns to stop
    if kind == "r1":  # the opened <think> is the prompt's: not a label
        assert "<think>" in unlearned and "<think>" not in learned
    else:  # Qwen3 with thinking on, and the plain block: the model opens it, so it learns to
        assert "<think>" in learned


# ---------------------------------------------------------------------------------------------- the trainer's batches

def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = 3 + i, 4 + 2 * i
        rows.append({"id": f"t/{i}", "source": "t", "style": "cot",
                     "prompt": f"Sam has {a} apples and gets {b} more. How many apples?",
                     "reasoning": f"Start with {a}. Add {b}. " * (1 + i % 3) + f"So {a} + {b} = {a + b}.",
                     "completion": f"The answer is: {a + b}"})
    return rows


def _trainer(tmp_path, folder, packing: bool):
    data = write_sft_folder(tmp_path / "data", n_train=4)
    cfg = load_config(TrainConfig, None, [
        f"data={data}", f"output_dir={tmp_path / 'runs'}", f"model.name={folder}", "model.engine=hf",
        "model.load_in_4bit=false", "model.dtype=float32", "model.max_seq_length=512",
        "model.gradient_checkpointing=false", "micro_batch_size=4", "grad_accum=1", f"packing={packing}"])
    loaded = load_model(str(folder), engine="hf", trainable=True, load_in_4bit=False, dtype="float32",
                        gradient_checkpointing=False, max_seq_length=512)
    dataset, _ = render_dataset(_rows(6), loaded.tokenizer, "auto", 512)
    trainer, _ = build_trainer(loaded.model, loaded.tokenizer, dataset, None, cfg, RunFolder(tmp_path / "run"))
    return trainer, loaded.tokenizer


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_trainer_batches_learn_the_trace_and_answer_not_the_prompt(tmp_path, think_models, kind, packing):
    trainer, tokenizer = _trainer(tmp_path, think_models[kind], packing)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    if packing:
        assert batch["input_ids"].shape[0] < 6, "rows were packed together"
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        learned = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
        unlearned = tokenizer.decode([i for i, label in zip(ids, labels) if label == -100])
        assert "Start with" in learned and "</think>" in learned and "The answer is:" in learned
        assert "Sam has" in unlearned and "Sam has" not in learned, "the prompt carries no label"


def test_packed_reasoning_rows_do_not_attend_across_rows(tmp_path, think_models):
    trainer, _ = _trainer(tmp_path, think_models["qwen3"], True)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    assert len(starts) >= 2
    model = trainer.model.eval()
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        bounds = starts + [batch["input_ids"].shape[1]]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            alone = model(input_ids=batch["input_ids"][:, lo:hi]).logits[0]
            torch.testing.assert_close(together[lo:hi], alone, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- evaluation, long rows

@pytest.mark.parametrize("kind", KINDS)
def test_evaluation_reads_the_answer_after_the_block(tokenizers, kind):
    tokenizer = tokenizers[kind]
    # what a trained model would generate, decoded as arithmo.generate decodes (special tokens skipped)
    target = render_sft(RECORD, tokenizer, "auto")["completion"]
    completion = tokenizer.decode(tokenizer(target, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
    prompt = render_sft(RECORD, tokenizer, "auto")["prompt"]
    assert extract_answer(with_opened_think(prompt, completion)) == "12"  # not the trace's \boxed{11}
    cut_off = completion.split("</think>")[0]  # generation ran out of tokens while thinking
    assert extract_answer(with_opened_think(prompt, cut_off)) is None, "a trace is not an answer"


@pytest.mark.parametrize("limit, policy, over, cut, kept", [
    (512, "truncate", 0, 0, 2),     # fits: nothing counted
    (40, "truncate", 2, 2, 2),      # cut inside the trace: trained without an answer, counted
    (40, "drop", 2, 0, 0),          # dropped rows are not "cut"
])
def test_traces_cut_before_their_answer_are_counted(tokenizers, limit, policy, over, cut, kept):
    rows = [{**RECORD, "id": f"t/{i}", "reasoning": "Think more. " * 30} for i in range(2)]
    if kept == 0:
        with pytest.raises(TrainError, match="every row is longer"):
            render_dataset(rows, tokenizers["chatml"], "auto", limit, policy)
        return
    dataset, report = render_dataset(rows, tokenizers["chatml"], "auto", limit, policy)
    assert len(dataset) == kept and sum(report["over_limit"].values()) == over
    assert sum(report["cut_before_answer"].values()) == cut


def test_a_cut_inside_the_answer_is_not_a_cut_before_it(tokenizers):
    tokenizer = tokenizers["chatml"]
    rows = [{**RECORD, "completion": "The answer is: 12. " + "It checks out. " * 10}]
    full = len(tokenize_sft(render_sft(rows[0], tokenizer, "auto"), tokenizer)[0])
    _, report = render_dataset(rows, tokenizer, "auto", full - 3, "truncate")
    assert report["over_limit"] == {"t": 1} and report["cut_before_answer"] == {}


# ---------------------------------------------------------------------------------------------- review fixes

SHORT = {"id": "s/0", "source": "s", "style": "cot", "prompt": "What is 5 + 7?",
         "completion": "5 + 7 = 12. The answer is: 12"}


@pytest.mark.parametrize("kind, completion", [
    # R1-distill: the prompt opened the block; a turn that does not think closes it empty before the answer
    ("r1", "\n</think>\n\n5 + 7 = 12. The answer is: 12<｜end▁of▁sentence｜>"),
    # Qwen3: its own assistant turn for an answer without reasoning writes the empty block
    ("qwen3", "<think>\n\n</think>\n\n5 + 7 = 12. The answer is: 12<|im_end|>"),
    # must NOT gain a block: templates without a think path take the answer as it is
    ("chatml", "5 + 7 = 12. The answer is: 12<|im_end|>"),
    ("base", " 5 + 7 = 12. The answer is: 12<|im_end|>"),
])
def test_a_row_without_reasoning_is_written_as_the_template_writes_a_turn_that_does_not_think(
        tokenizers, kind, completion):
    from arithmo.evaluation.outputs import annotate

    tokenizer = tokenizers[kind]
    rendered = render_sft(SHORT, tokenizer, "auto")
    assert rendered["completion"] == completion
    if kind == "qwen3":  # exactly the template's own turn
        turn = tokenizer.apply_chat_template([{"role": "user", "content": SHORT["prompt"]},
                                              {"role": "assistant", "content": SHORT["completion"]}], tokenize=False)
        assert turn.startswith(rendered["prompt"] + completion)
    # a model that learned the row answers outside any think block: read, and not truncated
    generated = completion.replace(tokenizer.eos_token, "")
    assert extract_answer(with_opened_think(rendered["prompt"], generated)) == "12"
    assert annotate({"prompt": rendered["prompt"], "completion": generated, "style": "cot"})["truncated"] is not True


def test_a_prompt_that_closed_an_empty_block_gets_no_second_one(tokenizers):
    from arithmo.thinking import answer_completion

    qwen = tokenizers["qwen3"]
    prompt = qwen.apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False,
                                      add_generation_prompt=True, enable_thinking=False)
    assert answer_completion(prompt, "Q", "A", qwen, True, "<|im_end|>") == "A<|im_end|>"


def _answer_start(tokenizer, record):
    from arithmo.sft import _answer_token

    return _answer_token(render_sft(record, tokenizer, "auto"), tokenizer)


LONG = {**RECORD, "reasoning": "Think more. " * 20 + "5 + 7 = 12."}


@pytest.mark.parametrize("record, cut_at, lost", [
    # the cut keeps only part of the answer: `The`, `The answer is`, `The answer is: 1` of `... 12` -- lost
    (LONG, lambda full, start: start + 1, True),
    (LONG, lambda full, start: start + 3, True),
    (LONG, lambda full, start: start, True),                  # cut exactly where the answer starts
    (LONG, lambda full, start: start - 5, True),              # inside the trace
    ({**LONG, "completion": "So \\boxed{12}"}, lambda full, start: full - 2, True),  # `\boxed{12` left open
    (SHORT, lambda full, start: full - 2, True),              # a short row's answer line cut: lost too
    # must NOT count: the answer is whole in the kept tokens
    (LONG, lambda full, start: full - 1, False),              # only the end-of-turn token goes
    ({**LONG, "completion": "The answer is: 12. " + "It checks out. " * 5}, lambda full, start: full - 3, False),
    ({**SHORT, "completion": "The answer is: 12. " + "It checks out. " * 5}, lambda full, start: full - 3, False),
])
@pytest.mark.parametrize("kind", KINDS)
def test_a_cut_that_loses_the_final_answer_is_counted(tokenizers, kind, record, cut_at, lost):
    tokenizer = tokenizers[kind]
    full = len(tokenize_sft(render_sft(record, tokenizer, "auto"), tokenizer)[0])
    limit = cut_at(full, _answer_start(tokenizer, record))
    _, report = render_dataset([record], tokenizer, "auto", limit, "truncate")
    assert report["over_limit"] == {record["source"]: 1}
    assert report["answer_lost"] == ({record["source"]: 1} if lost else {})


def test_the_refusal_of_a_tagged_trace_names_what_drops_it(tokenizers):
    with pytest.raises(TrainError, match="trace_nested_think"):
        render_dataset([{**RECORD, "reasoning": "x </think> y"}], tokenizers["chatml"], "auto", 256)


ITEM = {"id": "q1", "benchmark": "b", "question": "Sam has 5 apples and gets 7 more. How many?", "answer": "12"}


@pytest.mark.parametrize("kind, completion, extracted", [
    # R1 opened the block in the prompt: a boxed guess inside the unfinished trace is no answer
    ("r1", "Maybe \\boxed{12}? Let me double-check by count", None),
    ("r1", "Maybe 12.\n</think>\n\nThe answer is \\boxed{12}.", "12"),   # the answer after the closed block
    # must NOT change: a template that opens no block reads the completion as it is
    ("chatml", "Maybe \\boxed{12}? Let me double-check by count", "12"),
    ("base", "The answer is: 12", "12"),
])
def test_scoring_reads_a_completion_as_starting_inside_the_opened_block(tokenizers, kind, completion, extracted):
    from arithmo.evaluation.outputs import annotate
    from arithmo.evaluation.scoring import predict_text, regrade

    lines = predict_text([ITEM], "cot", lambda prompts, n, s: [[completion] for _ in prompts], [None],
                         tokenizer=tokenizers[kind], template="auto", pot_hint="", run=None, grade_timeout_s=2)
    line = annotate(lines[0])
    assert line["extracted"] == extracted and line["correct"] is (extracted is not None)
    if kind == "r1" and extracted is None:
        assert line["truncated"] is True
    again, _ = regrade(lines, {"q1": "12"}, "cot", run=None, grade_timeout_s=2)  # a regrade reads it the same
    assert again[0]["extracted"] == extracted


@pytest.mark.parametrize("kind, completion, stopped, extracted", [
    ("r1", "Maybe \\boxed{12}? Let me double-check", "no_code", None),   # inside the opened block: not answered
    ("r1", "So 12.\n</think>\n\n\\boxed{12}", "answered", "12"),
    ("chatml", "Maybe \\boxed{12}? Let me double-check", "answered", "12"),  # must NOT change without a block
])
def test_tir_answered_check_reads_after_the_opened_block(tokenizers, kind, completion, stopped, extracted):
    from arithmo.evaluation.tir import predict_tir

    def complete(prompts, n, sampled, max_new_tokens=None):
        return [[completion] for _ in prompts]

    lines = predict_tir([ITEM], complete, [None], tokenizer=tokenizers[kind], template="auto",
                        open_session=lambda: None, grade_timeout_s=2)
    assert (lines[0]["stopped"], lines[0]["extracted"]) == (stopped, extracted)
