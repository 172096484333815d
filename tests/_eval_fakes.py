"""A scripted stand-in for a causal LM, for tests whose outcome must be known exactly.

`ScriptedLM(tokenizer, respond)` has the parts of a transformers model that `arithmo.generate.generate`
uses (`device`, `generation_config`, `generate(input_ids, attention_mask, ...)`): for every prompt row it
decodes the prompt, asks `respond(prompt, sampled, sample_index)` for the completion text, and returns
prompt + completion + eos as token ids, like `model.generate` does. It records every prompt it was given.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import GenerationConfig


class ScriptedLM:
    def __init__(self, tokenizer, respond: Callable[[str, bool, int], str]):
        self.tokenizer = tokenizer
        self.respond = respond
        self.device = torch.device("cpu")
        self.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id)
        self.prompts: list[str] = []  # every prompt row generate() saw, in call order
        self.calls: list[dict] = []  # the decoding settings of every call

    def generate(self, input_ids, attention_mask, max_new_tokens, num_return_sequences=1, do_sample=False,
                 eos_token_id=None, pad_token_id=None, **settings):
        self.calls.append({"do_sample": do_sample, "rows": len(input_ids), "n": num_return_sequences,
                           "max_new_tokens": max_new_tokens, **settings})
        eos = eos_token_id[0] if isinstance(eos_token_id, list) else eos_token_id
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            prompt = self.tokenizer.decode([t for t, m in zip(ids, mask) if m], skip_special_tokens=False)
            self.prompts.append(prompt)
            for sample in range(num_return_sequences):
                text = self.respond(prompt, do_sample, sample)
                new = self.tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens - 1] + [eos]
                rows.append(ids + new)
        width = max(len(r) for r in rows)
        return torch.tensor([r + [pad_token_id] * (width - len(r)) for r in rows])


def respond_by_question(table: dict[str, str], default: str = "") -> Callable[[str, bool, int], str]:
    """A respond() that answers with table[q] for the first question q found in the prompt."""
    def respond(prompt: str, sampled: bool, sample: int) -> str:
        for question, completion in table.items():
            if question in prompt:
                return completion
        return default

    return respond
