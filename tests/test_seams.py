"""Where two stages meet (issue 23): each hand-over tested from both sides, one test (or table) per kind.

1. TIR hands a code block to the interpreter at its closing fence, and training's loss covers exactly what the
   model writes at inference (code, fences, prose) and nothing the interpreter writes.
2. A solution's blocks share one interpreter session: state and random generators persist, each block pays its
   own time.
3. The TIR token budget counts the model's own tokens over all rounds.
4. One end-of-turn rule for loading, both generation backends, GRPO (TRL reads generation_config) and export.
5. The Modelfile stops where evaluation stops (the plain template's text stop too).
6. vLLM is started with the context evaluation needs and the run's chat template.
7. predictions.jsonl is in item order whatever order the lines were generated in.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from _eval_fakes import ScriptedLM
from arithmo.evaluation import evaluate_items
from arithmo.evaluation.store import write_in_item_order
from arithmo.evaluation.tir import TIR_KEEP, TIR_STOPS, predict_tir
from arithmo.generate import cut_at_stop, end_token_ids
from arithmo.prompts import (CODE_END, TIR_INSTRUCTION, output_block, render_sft, stop_strings, tir_output_spans,
                             tokenize_sft, turn_end_ids)

# ----------------------------------------------------------------------------------------------
# 1. the TIR hand-over, from evaluation's side and from training's side


def _tir_completion(values: list[int]) -> str:
    """A TIR solution in the trained format: prose, a block, the interpreter's output block, ... an answer."""
    parts = []
    for value in values:
        parts.append(f"Compute it.\n```python\nprint({value} - 1 + 1)\n```\n" + output_block(str(value)))
    return "".join(parts) + f"So the answer is \\boxed{{{values[-1]}}}."


# (generated text, stops, keep, expected cut): what generation hands over
CUT_ROWS = [
    ("x\n```python\nprint(1)\n```\nthe program prints 2", list(TIR_STOPS), TIR_KEEP,
     "x\n```python\nprint(1)\n```\n"),  # the closing fence ends the round and stays: the interpreter needs it
    ("x\n```python\nprint(1)\n", list(TIR_STOPS), TIR_KEEP,
     "x\n```python\nprint(1)\n"),  # the opening fence must NOT stop generation ("```python\n" holds no "```\n")
    ("x\n```python\nprint(1)\n```\n```output\n5\n```\n", list(TIR_STOPS), TIR_KEEP,
     "x\n```python\nprint(1)\n```\n"),  # a model that writes the output block itself is cut before it
    ("answer\nQuestion: next", ["\nQuestion:", *TIR_STOPS], TIR_KEEP, "answer"),  # a dropped stop is NOT kept
    ("a STOP b", [" STOP"], (), "a"),  # plain stop strings are cut before, as always
]


@pytest.mark.parametrize("text, stops, keep, expected", CUT_ROWS)
def test_generation_hands_over_at_the_closing_fence(text, stops, keep, expected):
    assert cut_at_stop(text, stops, keep) == expected


def _tokenizers(tiny_model_dir):
    yield AutoTokenizer.from_pretrained(tiny_model_dir)
    try:  # the real SmolLM2 tokenizer when the embedded model is installed (it is in CI)
        from arithmo.model import plain_model_folder

        yield AutoTokenizer.from_pretrained(plain_model_folder("smollm2-135m-instruct"))
    except Exception as err:  # noqa: BLE001 -- only the tiny tokenizer then; say so
        print(f"SmolLM2 tokenizer not available ({err}); tiny tokenizer only")


@pytest.mark.parametrize("values", [[42], [7, 13, 20]])
def test_the_loss_covers_what_the_model_writes_at_inference_and_nothing_else(tiny_model_dir, values):
    """Replay inference on a training row: the model writes up to each CODE_END, the interpreter the output block.
    The loss tokens must spell exactly the model's pieces; the masked completion tokens exactly the interpreter's."""
    completion = _tir_completion(values)
    spans = tir_output_spans(completion)
    assert len(spans) == len(values)
    model_pieces, start = [], 0
    for span_start, span_end in spans:
        piece = completion[start:span_start]
        assert piece.endswith(CODE_END), "each round the model ends with the closing fence, where it hands over"
        assert cut_at_stop(piece + "more text", list(TIR_STOPS), TIR_KEEP) == piece, "generation stops right there"
        model_pieces.append(piece)
        start = span_end
    model_pieces.append(completion[start:])
    for tokenizer in _tokenizers(tiny_model_dir):
        row = {"prompt": "Sam has 3 apples. " + TIR_INSTRUCTION, "completion": completion, "style": "tir"}
        rendered = render_sft(row, tokenizer, "auto")
        ids, mask = tokenize_sft(rendered, tokenizer, tir_output_spans(rendered["completion"]))
        prompt_len = len(tokenizer(rendered["prompt"], add_special_tokens=False)["input_ids"])
        learned = tokenizer.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=True)
        masked = tokenizer.decode([i for i, m in zip(ids[prompt_len:], mask[prompt_len:]) if not m])
        assert learned.strip() == "".join(model_pieces).strip()
        assert "```python" in learned and learned.count(CODE_END) >= len(values), "fences are learned"
        assert "```output" not in learned, "the interpreter's fence is not the model's to write"
        assert masked.replace(" ", "") == "".join(completion[a:b] for a, b in spans).replace(" ", "")


class _Session:
    """A stand-in interpreter session that runs nothing: outputs are scripted (for the loop's own rules)."""

    opened: list = []

    def __init__(self):
        self.runs, self.alive = [], True
        _Session.opened.append(self)

    def run(self, code):
        self.runs.append(code)
        return SimpleNamespace(stdout="42\n", error=None, timed_out=False)

    def close(self):
        self.alive = False


def test_a_block_followed_by_a_guess_still_calls_the_tool():
    """The issue's example: the model closes a block that prints 6 * 7 and, in the same breath, guesses "41".
    Generation must stop at the closing fence, so the interpreter's 42 comes before any guess."""
    full = "```python\nprint(6 * 7)\n```\nthe program prints 41, so \\boxed{41}."

    def complete(prompts, n, sampled, max_new_tokens=None):
        out = []
        for prompt in prompts:
            text = "So \\boxed{42}." if "```output" in prompt else full
            out.append([cut_at_stop(text, list(TIR_STOPS), TIR_KEEP)] * n)
        return out

    _Session.opened = []
    line = predict_tir([{"id": "q", "benchmark": "t", "question": "6 times 7?", "answer": "42", "meta": {}}],
                       complete, [None], tokenizer=None, template="plain", open_session=_Session,
                       grade_timeout_s=2.0)[0]
    assert len(line["tool_calls"]) == 1 and line["extracted"] == "42" and line["correct"]
    assert "41" not in line["completion"]
    assert all(not s.alive for s in _Session.opened), "every session is closed at the end"


# ----------------------------------------------------------------------------------------------
# 3. the token budget counts the model's own tokens, over all rounds


def test_the_token_budget_is_for_the_whole_solution(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    block = "Let me compute this step carefully with a program.\n```python\nprint(sum(range(10)))\n```\n"

    def respond(prompt, sampled, sample):
        return block  # never answers: every round writes another block (~30 tokens)

    model = ScriptedLM(tokenizer, respond)
    budget = 64
    lines, metrics = evaluate_items(model, tokenizer, [{"id": "q", "benchmark": "t", "question": "Sum?",
                                                        "answer": "45", "meta": {}}], "tir",
                                    max_new_tokens=budget, workers=1, max_tool_calls=10, template="plain")
    line = lines[0]
    written = line["completion"]
    for a, b in reversed(tir_output_spans(written)):
        written = written[:a] + written[b:]
    own = len(tokenizer(written, add_special_tokens=False)["input_ids"])
    assert line["new_tokens"] <= budget and own <= budget + 2, (own, line["new_tokens"])
    assert line["stopped"] == "token_budget" and len(line["tool_calls"]) < 10
    # each later round was asked for what was left, never a fresh full budget
    assert all(call["max_new_tokens"] <= budget for call in model.calls)
    assert sum(call["max_new_tokens"] for call in model.calls[1:]) < budget


# ----------------------------------------------------------------------------------------------
# 4. one end-of-turn rule


@pytest.fixture(scope="module")
def llama3_model_dir(tmp_path_factory, tiny_base_model_dir):
    """The tiny base model with Llama-3's special tokens and a generation_config that ships [eos, <|eot_id|>]."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    out = tmp_path_factory.mktemp("tiny_llama3")
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    model.generation_config = GenerationConfig(eos_token_id=[tokenizer.eos_token_id, eot])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_loading_keeps_every_end_of_turn_id(llama3_model_dir):
    from arithmo.model import load_model

    loaded = load_model(str(llama3_model_dir), engine="hf", trainable=False, load_in_4bit=False, dtype="float32",
                        chat_template="llama3")
    tokenizer = loaded.tokenizer
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    shipped = loaded.model.generation_config.eos_token_id
    assert isinstance(shipped, list) and eot in shipped and tokenizer.eos_token_id in shipped
    # the same ids from every side: generation (both backends read end_token_ids), TRL (generation_config)
    assert set(end_token_ids(loaded.model, tokenizer)) == set(shipped)
    assert set(end_token_ids(None, tokenizer)) <= set(shipped) and eot in end_token_ids(None, tokenizer)
    # the training completion ends with the token generation stops on
    rendered = render_sft({"prompt": "1+1?", "completion": "2", "style": "cot"}, tokenizer, "auto")
    assert rendered["completion"].endswith("<|eot_id|>")


def test_grpo_generation_stops_at_the_template_turn_end(llama3_model_dir):
    """TRL's GRPOTrainer takes its eos ids from model.generation_config (plus the tokenizer's eos): with the
    llama3 template that includes <|eot_id|>, so completions are cut and masked at the turn's end."""
    from arithmo.model import load_model

    loaded = load_model(str(llama3_model_dir), engine="hf", trainable=True, load_in_4bit=False, dtype="float32",
                        chat_template="llama3", gradient_checkpointing=False, max_seq_length=256)
    eos = loaded.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    assert loaded.tokenizer.convert_tokens_to_ids("<|eot_id|>") in eos


# (ids shipped in generation_config, expected to be kept): nothing a model ships is dropped
SHIPPED_ROWS = [
    (None, []),  # no generation_config eos: the tokenizer's own
    (7, [7]),  # a single id is kept
    ([7, 9], [7, 9]),  # an instruct model's [eos, end_of_turn] is NOT cut to [eos]
]


@pytest.mark.parametrize("shipped, kept", SHIPPED_ROWS)
def test_turn_end_ids_keeps_what_the_model_ships(tiny_model_dir, shipped, kept):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = turn_end_ids(tokenizer, shipped)
    assert ids[0] == tokenizer.eos_token_id and all(i in ids for i in kept)
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------------------------
# 5. the Modelfile stops where evaluation stops


@pytest.mark.parametrize("template, text_stops", [("plain", ["\nQuestion:"]), ("chat", [])])
def test_modelfile_stops_are_evaluations_stops(tmp_path, tiny_model_dir, template, text_stops):
    from arithmo.export.modelfile import modelfile_text, stop_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert stop_strings(tokenizer, template) == text_stops
    stops = stop_tokens(tiny_model_dir, tokenizer) + stop_strings(tokenizer, template)
    text = modelfile_text("m.gguf", "{{ .Prompt }}", stops)
    for stop in text_stops:
        assert f'PARAMETER stop """{stop}"""' in text, "a newline stop is written literally, in triple quotes"
    for token in [tokenizer.decode([i]) for i in end_token_ids(None, tokenizer)]:
        assert f'PARAMETER stop "{token}"' in text


def test_write_modelfile_uses_the_templates_text_stop(tmp_path, tiny_model_dir):
    from arithmo.export.modelfile import write_modelfile

    path = write_modelfile(tmp_path, "m.gguf", tiny_model_dir, "plain", gguf_adds_bos=False)
    assert 'PARAMETER stop """\nQuestion:"""' in path.read_text()


# ----------------------------------------------------------------------------------------------
# 6. vLLM as configured


def test_vllm_gets_the_context_evaluation_needs(tmp_path):
    from arithmo.backends import vllm_context

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 131072}))
    cfg = SimpleNamespace(max_model_len=None, max_new_tokens=512, style="cot", max_tool_calls=4)
    assert vllm_context(cfg, str(folder)) == 512 + 2048, "a 128K model is NOT started at 128K"
    assert vllm_context(SimpleNamespace(**{**vars(cfg), "style": "tir"}), str(folder)) > 512 + 2048
    assert vllm_context(SimpleNamespace(**{**vars(cfg), "max_model_len": 4096}), str(folder)) == 4096
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 1024}))
    assert vllm_context(cfg, str(folder)) == 1024, "never above the model's own context"


def test_vllm_path_applies_the_runs_chat_template(tmp_path, monkeypatch, tiny_base_model_dir):
    """A run trained with model.chat_template=chatml on a base model: on vLLM the prompt is rendered with it."""
    import arithmo.backends as backends
    import arithmo.generate as generate
    from arithmo.model import CHAT_TEMPLATES

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "chat_template.jinja").write_text(CHAT_TEMPLATES["chatml"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model_dir)
    assert not tokenizer.chat_template
    seen = {}

    def fake_load_vllm(folder, adapter=None, **kwargs):
        seen.update(kwargs)
        return generate.VLLMModel(llm=SimpleNamespace(get_tokenizer=lambda: tokenizer))

    monkeypatch.setattr(generate, "load_vllm", fake_load_vllm)
    monkeypatch.setattr("arithmo.model.plain_model_folder", lambda name: str(tiny_base_model_dir))
    cfg = SimpleNamespace(model=str(tiny_base_model_dir), adapter=str(adapter), seed=0, dtype="float32",
                          max_model_len=None, max_new_tokens=256, style="cot", max_tool_calls=4)
    _, used, description = backends.load_for_eval(cfg, "vllm")
    assert used.chat_template == CHAT_TEMPLATES["chatml"]
    assert seen["max_model_len"] == 512 and "max_model_len 512" in description  # the tiny model's own context


# ----------------------------------------------------------------------------------------------
# 7. predictions in item order


def test_predictions_are_rewritten_in_item_order(tmp_path):
    ids = [f"q{i}" for i in range(6)]
    lines = [{"id": i, "sample": s} for i in ids for s in (None, 0, 1)]
    shuffled = lines[:]
    random.Random(3).shuffle(shuffled)
    shuffled.append({"id": "other", "sample": None})  # a line of an item not in this run keeps its place, last
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in shuffled))
    write_in_item_order(path, ids)
    got = [json.loads(text) for text in path.read_text().splitlines()]
    assert got[:-1] == lines and got[-1]["id"] == "other"
