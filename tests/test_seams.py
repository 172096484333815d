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

from arithmo.evaluation.store import write_in_item_order
from arithmo.evaluation.tir import TIR_KEEP, TIR_STOPS, predict_tir
from arithmo.generate import cut_at_stop, end_token_ids
from arithmo.prompts import (CODE_END, TIR_INSTRUCTION, output_block, pending_code, render_sft, stop_strings,
                             tir_output_spans, tokenize_sft, turn_end_ids)

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


# (text the model wrote, the code the interpreter runs or None): which fences hand over
PENDING_ROWS = [
    ("a\n```python\nprint(1)\n```\n", "print(1)\n"),
    ("a\n```py\nprint(1)\n```\n", "print(1)\n"),  # the tags arithmo's PoT reader accepts run in TIR too
    ("a\n```python3\nprint(1)\n```\n", "print(1)\n"),
    ("a\n```python \nprint(1)\n``` \n", "print(1)\n"),  # trailing spaces on fence lines
    ("a\r\n```python\r\nprint(1)\r\n```\r\n", "print(1)\n"),  # CRLF newlines
    ("1. sum:\n   ```python\n   x = 2\n   print(x)\n   ```\n", "x = 2\nprint(x)\n"),  # indented: dedented
    ("a\n```python\nprint(1)\n```", "print(1)\n"),  # the fence at the very end of generation
    ("Plan:\n```text\nmultiply\n```\n", None),  # a text block is NOT code
    ("Plan:\n```\n", None),  # a bare opening fence is NOT a closed block
    ("```\nx = 1\n```\n", None),  # an untagged block is NOT run (as likely text as code)
    ("```python\nprint(1)\n```\n```output\n1\n```\n", None),  # answered already: NOT run again
    ("```python\nprint(1)\n```\nso the answer is 1", None),  # the model went on: NOT pending
]


@pytest.mark.parametrize("text, code", PENDING_ROWS)
def test_which_block_the_interpreter_runs(text, code):
    assert pending_code(text) == code


def _scripted(segments_by_question):
    def complete(prompts, n, sampled, max_new_tokens=None):
        out = []
        for prompt in prompts:
            question = next(q for q in segments_by_question if q in prompt)
            segments = segments_by_question[question]
            done = prompt.count("```output") + prompt.count("```text")
            text = segments[min(done, len(segments) - 1)]
            out.append([cut_at_stop(text, list(TIR_STOPS), TIR_KEEP)] * n)
        return out
    return complete


def test_a_text_fence_does_not_end_the_solution():
    segments = {"Q?": ["Plan:\n```text\nmultiply six by seven\n```\nNow code.\n```python\nprint(6 * 7)\n```\n",
                       "Now code.\n```python\nprint(6 * 7)\n```\n", "So \\boxed{42}."]}
    _Session.opened = []
    line = predict_tir([{"id": "q", "benchmark": "t", "question": "Q?", "answer": "42", "meta": {}}],
                       _scripted(segments), [None], tokenizer=None, template="plain", open_session=_Session,
                       grade_timeout_s=2.0)[0]
    assert "```text\nmultiply six by seven\n```" in line["completion"]
    assert len(line["tool_calls"]) == 1 and line["correct"] and line["stopped"] == "answered"


def test_a_long_output_keeps_its_error_line():
    from arithmo.evaluation.tir import shown_output

    result = SimpleNamespace(stdout="".join(f"{i}\n" for i in range(400)), error="ZeroDivisionError: division by zero",
                             timed_out=False)
    shown = output_block(shown_output(result))
    assert shown.rstrip().endswith("ZeroDivisionError: division by zero\n```"), shown[-200:]
    assert "more characters]" in shown and "\n27\n[" not in shown
    timed = SimpleNamespace(stdout="x" * 5000, error=None, timed_out=True)
    assert output_block(shown_output(timed)).rstrip().endswith("timed out\n```")


def test_a_finished_solution_frees_its_session_at_once():
    segments = {"A?": ["```python\nprint(1)\n```\n", "So \\boxed{1}."],
                "B?": ["```python\nprint(2)\n```\n", "```python\nprint(2)\n```\n", "```python\nprint(2)\n```\n",
                       "So \\boxed{2}."]}
    opened_at_run = []

    class Counting(_Session):
        def run(self, code):
            opened_at_run.append(sum(s.alive for s in _Session.opened))
            return super().run(code)

    _Session.opened = []
    items = [{"id": q, "benchmark": "t", "question": q, "answer": a, "meta": {}} for q, a in (("A?", "1"), ("B?", "2"))]
    predict_tir(items, _scripted(segments), [None], tokenizer=None, template="plain", open_session=Counting,
                grade_timeout_s=2.0)
    assert opened_at_run[:2] == [1, 2] and opened_at_run[2:] == [1, 1], opened_at_run
    assert not any(s.alive for s in _Session.opened)


# ----------------------------------------------------------------------------------------------
# 3. the token budget counts the model's own tokens, over all rounds


def _budget_model(tokenizer, block):
    """A `complete` that writes `block` again and again (never answers), honouring max_new_tokens as generate()
    does: the text is cut at the allowance and reported as such (Completion: tokens, finish)."""
    from arithmo.generate import Completion

    asked = []

    def complete(prompts, n, sampled, max_new_tokens=None):
        allowance = max_new_tokens or 64
        asked.append(allowance)
        ids = tokenizer(block, add_special_tokens=False)["input_ids"]
        out = []
        for _ in prompts:
            text = cut_at_stop(tokenizer.decode(ids[:allowance]), list(TIR_STOPS), TIR_KEEP)
            used = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            out.append([Completion(text, used, "length" if used >= allowance else "stop")] * n)
        return out

    return complete, asked


def test_the_token_budget_is_for_the_whole_solution(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    block = "Let me compute this step carefully with a program.\n```python\nprint(sum(range(10)))\n```\n"
    complete, asked = _budget_model(tokenizer, block)
    budget = 64
    _Session.opened = []
    line = predict_tir([{"id": "q", "benchmark": "t", "question": "Sum?", "answer": "45", "meta": {}}], complete,
                       [None], tokenizer=tokenizer, template="plain", open_session=_Session, grade_timeout_s=2.0,
                       max_tool_calls=10, max_new_tokens=budget)[0]
    written = line["completion"]
    for a, b in reversed(tir_output_spans(written)):
        written = written[:a] + written[b:]
    own = len(tokenizer(written, add_special_tokens=False)["input_ids"])
    assert line["new_tokens"] <= budget and own <= budget + 1, (own, line["new_tokens"])
    assert line["stopped"] == "token_budget" and len(line["tool_calls"]) < 10
    assert asked[0] == budget and sum(asked[1:]) < budget, "later rounds get what is left, never a fresh budget"


def test_a_round_that_ends_itself_is_not_a_budget_stop(tiny_model_dir):
    """Generation reports how a round ended: a round that stopped at its own fence well inside its allowance is
    NOT counted as cut by the budget (the +-1 guess applies only when nothing is reported)."""
    from arithmo.evaluation.tir import _was_cut
    from arithmo.generate import Completion

    assert not _was_cut(Completion("x", 63, "stop"), 63, 64)
    assert _was_cut(Completion("x", 64, "length"), 64, 64)
    assert _was_cut("x", 63, 64) and not _was_cut("x", 10, 64)


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
