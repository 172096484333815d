"""arithmo.generate on the tiny random Llama (real transformers generation) and on a scripted stand-in."""

import sys
import types

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from _eval_fakes import ScriptedLM
from arithmo.generate import VLLMModel, cut_at_stop, generate, stream_generate
from arithmo.prompts import render_eval

QUESTIONS = [
    "Ines has 14 shells and gets 21 more. How many shells does Ines have now?",
    "What is 2 + 3?",
    "Karl shares 125 pencils equally among 5 friends, and then he buys 3 more boxes of 12 pencils each. "
    "How many pencils does each friend get?",
    "x",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def prompts(tiny):
    return [render_eval(q, "cot", tiny[1]) for q in QUESTIONS]


def reference_greedy(model, tokenizer, prompt, max_new_tokens):
    """transformers' own unpadded greedy generation of one prompt, new text only (the oracle)."""
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    new = out[0, ids["input_ids"].shape[1]:].tolist()
    if tokenizer.eos_token_id in new:
        new = new[:new.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new, skip_special_tokens=True)


def test_batched_left_padded_greedy_equals_unbatched(tiny, prompts):
    model, tokenizer = tiny
    lengths = {len(tokenizer(p)["input_ids"]) for p in prompts}
    assert len(lengths) == len(prompts), "prompts must differ in length so that batching pads"
    tokenizer.padding_side = "right"
    batched = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=4)
    assert tokenizer.padding_side == "right", "padding_side must be restored"
    single = [generate(model, tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert batched == single
    assert [texts[0] for texts in single] == [reference_greedy(model, tokenizer, p, 12) for p in prompts]
    assert all(len(texts) == 1 and texts[0] for texts in batched)


def test_sampling_is_seeded_and_shaped(tiny, prompts):
    model, tokenizer = tiny
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = generate(model, tokenizer, prompts, max_new_tokens=8, temperature=1.0, num_samples=3, batch_size=6, seed=1)
    assert torch.equal(torch.rand(1), before), "generate must not move the caller's global RNG"
    again = generate(model, tokenizer, prompts, max_new_tokens=8, temperature=1.0, num_samples=3, batch_size=6, seed=1)
    other = generate(model, tokenizer, prompts, max_new_tokens=8, temperature=1.0, num_samples=3, batch_size=6, seed=2)
    assert [len(texts) for texts in first] == [3, 3, 3, 3]
    assert first == again
    assert first != other
    # A random model at temperature 1 over a 512-token vocabulary: three samples of 8 tokens coincide
    # with probability far below 1e-6.
    assert all(len(set(texts)) == 3 for texts in first)


def test_stop_string_cuts_text(tiny, prompts):
    model, tokenizer = tiny
    full = generate(model, tokenizer, prompts[:1], max_new_tokens=16)[0][0]
    marker = full[len(full) // 2:len(full) // 2 + 3]
    assert marker and full.find(marker) > 0
    cut = generate(model, tokenizer, prompts[:1], max_new_tokens=16, stop=[marker, "never-produced"])[0][0]
    assert cut == full[:full.find(marker)]


def test_eos_ends_and_only_new_text_returned(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    fake = ScriptedLM(tokenizer, lambda prompt, sampled, j: f"answer to [{prompt[-6:]}]")
    prompts = ["Question: one\n\nAnswer:", "Question: a longer question here\n\nAnswer:"]
    outputs = generate(fake, tokenizer, prompts, max_new_tokens=64, stop=["never"])
    # The stand-in appends eos and then pads; the text stops at eos and holds no prompt text.
    assert outputs == [["answer to [nswer:]"], ["answer to [nswer:]"]]
    assert fake.calls[0]["stop_strings"] == ["never"]
    assert fake.calls[0]["do_sample"] is False


def test_argument_errors(tiny, prompts):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="temperature > 0"):
        generate(model, tokenizer, prompts, num_samples=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tokenizer, prompts, max_new_tokens=0)
    with pytest.raises(ValueError, match="backend"):
        generate(model, tokenizer, prompts, backend="vllm")
    with pytest.raises(TypeError, match="list of strings"):
        generate(model, tokenizer, "one prompt")
    assert generate(model, tokenizer, [], max_new_tokens=4) == []


def test_stream_generate_grows_to_the_batch_result(tiny, prompts):
    model, tokenizer = tiny
    pieces = list(stream_generate(model, tokenizer, prompts[1], max_new_tokens=12, temperature=0.0, stop=None,
                                  max_time_s=30))
    assert pieces and all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))
    assert pieces[-1] == generate(model, tokenizer, [prompts[1]], max_new_tokens=12)[0][0]
    marker = pieces[-1][3:5]
    stopped = list(stream_generate(model, tokenizer, prompts[1], max_new_tokens=12, temperature=0.0,
                                   stop=[marker], max_time_s=30))
    assert stopped[-1] == pieces[-1][:pieces[-1].find(marker)]


def test_stream_generate_can_be_abandoned(tiny, prompts):
    model, tokenizer = tiny
    stream = stream_generate(model, tokenizer, prompts[0], max_new_tokens=200, temperature=0.0, stop=None,
                             max_time_s=60)
    first = next(stream)
    stream.close()  # joins the generation thread, which the stopping criterion ends at its next token
    assert isinstance(first, str)


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("a b\nQuestion: c ### d", ["###", "\nQuestion:"]) == "a b"
    assert cut_at_stop("abc", None) == "abc"
    assert cut_at_stop("abc", [""]) == "abc"


class CharTokenizer:
    """One id per character; BOS is id 1 and written '<s>' (as Llama-style chat templates write it)."""

    bos_token = "<s>"
    eos_token_id = 2

    def __call__(self, text, add_special_tokens=True):
        body = text[len(self.bos_token):] if text.startswith(self.bos_token) else text
        head = [1] if add_special_tokens or text.startswith(self.bos_token) else []
        return {"input_ids": head + [ord(c) for c in body]}


def test_vllm_path_with_a_stand_in_engine(monkeypatch):
    captured = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            captured.update(kwargs)

    class FakeLLM:
        def get_tokenizer(self):
            return CharTokenizer()

        def generate(self, requests, params, lora_request=None):
            captured["lora"] = lora_request
            captured["ids"] = [r["prompt_token_ids"] for r in requests]
            choice = types.SimpleNamespace
            texts = ["".join(chr(i) for i in ids if i != 1) for ids in captured["ids"]]
            return [types.SimpleNamespace(outputs=[choice(text=f"{t}-{i} STOP tail") for i in range(captured["n"])])
                    for t in texts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=SamplingParams))
    engine = VLLMModel(llm=FakeLLM(), lora_request="adapter-request")
    out = generate(engine, None, ["p1", "<s>p2"], max_new_tokens=7, temperature=0.5, num_samples=2, stop=[" STOP"])
    assert out == [["p1-0", "p1-1"], ["p2-0", "p2-1"]]
    ids = captured.pop("ids")
    # one BOS each: added to the bare prompt, kept (not doubled) where the template wrote it
    assert ids == [[1, ord("p"), ord("1")], [1, ord("p"), ord("2")]]
    assert captured == {"n": 2, "temperature": 0.5, "top_p": 1.0, "max_tokens": 7, "stop": [" STOP"], "seed": 0,
                        "stop_token_ids": [2], "lora": "adapter-request", "include_stop_str_in_output": False}
    with pytest.raises(ValueError, match="vLLM engine"):
        generate(engine, None, ["p"], backend="hf")


def test_missing_pad_token_is_a_clear_error(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = None
    fake = ScriptedLM(tokenizer, lambda prompt, sampled, j: "x")
    with pytest.raises(ValueError, match="no pad token"):
        generate(fake, tokenizer, ["a", "bb"])
