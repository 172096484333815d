"""Think blocks: rendering a record whose reasoning and answer are kept apart into the text a model is trained on.

A long chain-of-thought record (`SFTRecord` with `reasoning`) holds the reasoning trace (what a reasoning model
writes between `<think>` and `</think>`) and the answer after it (`completion`). Rendering puts the reasoning in the
template's own think block, by the first of three paths that applies (`think_path`):

- `opened`: the generation prompt already opens the block (DeepSeek-R1-Distill's template ends its generation prompt
  with `<think>\\n`, huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/blob/main/tokenizer_config.json): the
  completion starts inside it -- reasoning, `\\n</think>\\n\\n`, answer, end of turn. That template's assistant-turn
  path *strips* everything up to `</think>` from assistant messages, so the assistant turn is never rendered
  through it: the completion is written after the generation prompt, which is the text the model continues at
  generation time.
- `reasoning_content`: the chat template renders an assistant message's `reasoning_content` itself (Qwen3's
  template, huggingface.co/Qwen/Qwen3-8B/blob/main/tokenizer_config.json: `<think>\\n{reasoning}\\n</think>\\n\\n`
  before the content, but only for assistant turns after the last user query -- earlier turns lose their
  reasoning). The record is rendered as one user turn and one assistant turn carrying `reasoning_content`, the
  last turn, so the template's own thinking path writes the block; the completion is that text after the
  generation prompt, and it is checked to hold the reasoning (a template that dropped it is an error, not a
  silently shorter target).
- `plain`: any other template, and the plain `Question: ... Answer:` template of base models: the completion
  writes the block itself -- `<think>\\n{reasoning}\\n</think>\\n\\n{answer}` -- and the model learns to open it.

A record without reasoning is rendered the way each template writes a turn that does not think
(`answer_completion`): after R1's opened block, an empty block is closed before the answer; Qwen3's own turn writes
its empty block; other templates take the answer alone.

In every path the generation prompt is exactly evaluation's (`arithmo.prompts.render_prompt`), so generation opens
the block where the template does (R1: in the prompt; Qwen3 with thinking on and `plain`: the model writes
`<think>`), and evaluation reads the answer after `</think>` (`arithmo.grading.extract`). A prompt that closes
an empty block (Qwen3 with `enable_thinking=False`: `<think>\\n\\n</think>\\n\\n`) cannot take a reasoning
target: ThinkError.
"""

from __future__ import annotations

from typing import Any, Literal

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ThinkPath = Literal["opened", "reasoning_content", "plain"]
_PROBE_REASONING = "ARITHMO_REASONING_PROBE"


class ThinkError(ValueError):
    """A reasoning record cannot be rendered with this template; the message names the template's behaviour."""


def prompt_opens_think(prompt: str) -> bool:
    """Whether a generation prompt ends inside an open think block (`...<think>` plus whitespace)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def prompt_closes_think(prompt: str) -> bool:
    """Whether a generation prompt ends with a closed think block (thinking switched off by the template)."""
    return prompt.rstrip().endswith(THINK_CLOSE)


def renders_reasoning_content(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template writes an assistant message's `reasoning_content` (Qwen3-style)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template or "reasoning_content" not in template:
        return False
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "?"},
             {"role": "assistant", "content": "A", "reasoning_content": _PROBE_REASONING}], tokenize=False)
    except Exception:  # noqa: BLE001 -- a template that cannot render the probe does not take this path
        return False
    return _PROBE_REASONING in text


def think_path(prompt: str, tokenizer: Any, uses_chat: bool) -> ThinkPath:
    """Which path renders a reasoning record after `prompt` (module docstring). Raises ThinkError when the prompt
    closes an empty think block (thinking disabled)."""
    if prompt_closes_think(prompt):
        raise ThinkError("the generation prompt closes an empty think block (thinking is switched off in this "
                         "template, e.g. Qwen3 with enable_thinking=False): a reasoning trace cannot be trained "
                         "after it; render with thinking on")
    if prompt_opens_think(prompt):
        return "opened"
    if uses_chat and tokenizer is not None and renders_reasoning_content(tokenizer):
        return "reasoning_content"
    return "plain"


def _check_parts(reasoning: str, answer: str) -> None:
    if THINK_CLOSE in reasoning or THINK_OPEN in reasoning:
        raise ThinkError(f"the reasoning holds a {THINK_OPEN}/{THINK_CLOSE} tag of its own: the trace would end "
                         "early; `python -m arithmo.data build` drops such rows (counted as trace_nested_think in "
                         "the manifest), so this record was written by something else: rebuild it, or remove the "
                         "tag")
    if THINK_CLOSE in answer:
        raise ThinkError(f"the answer holds {THINK_CLOSE}: evaluation would read the answer after it")


def think_completion(prompt: str, question: str, reasoning: str, answer: str, tokenizer: Any, uses_chat: bool,
                     end: str) -> str:
    """The completion text for a reasoning record after `prompt` (evaluation's generation prompt for `question`):
    the think block and the answer, ending with `end` (the template's end of turn, or the eos). Path by
    `think_path`. Raises ThinkError when the template loses the reasoning or its text does not continue `prompt`."""
    reasoning, answer = reasoning.strip("\n"), answer.strip()
    _check_parts(reasoning, answer)
    path = think_path(prompt, tokenizer, uses_chat)
    if path == "opened":
        lead = "" if prompt.endswith("\n") else "\n"
        completion = f"{lead}{reasoning}\n{THINK_CLOSE}\n\n{answer}"
    elif path == "plain":
        completion = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"
    else:
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": question},
             {"role": "assistant", "content": answer, "reasoning_content": reasoning}], tokenize=False)
        if not full.startswith(prompt):
            raise ThinkError("the chat template's assistant turn does not continue its own generation prompt, so "
                             "the trained text would differ from what generation continues")
        completion = full[len(prompt):]
        if end and end in completion:  # the turn's text ends at its end-of-turn marker (what generation stops on)
            completion = completion[: completion.rindex(end)]
        completion = completion.rstrip()
        if reasoning not in completion or (answer and answer not in completion):
            raise ThinkError("the chat template dropped the reasoning (or the answer) of the last assistant turn; "
                             "it cannot train on reasoning through reasoning_content")
        return completion + end
    return completion + end if end and not completion.endswith(end) else completion


def answer_completion(prompt: str, question: str, answer: str, tokenizer: Any, uses_chat: bool, end: str) -> str:
    """The completion text for a record without reasoning (short CoT, PoT, TIR) after `prompt`: the answer the way
    the template writes a turn that does not think, ending with `end`.

    - `opened` (R1-distill: the prompt opened the block): the block is closed empty first --
      `\n</think>\n\n{answer}` after the prompt's `<think>\n` -- so the answer is outside the think block, where
      evaluation reads it (an answer left inside the opened block is an unfinished thought: no answer, truncated).
    - `reasoning_content` (Qwen3): the template's own assistant turn for the answer alone, which writes an empty
      block (`<think>\n\n</think>\n\n{answer}`) for the last turn; ThinkError when that turn does not continue
      the generation prompt or loses the answer.
    - `plain`, and a prompt that already closed an empty block (thinking switched off): the answer as it is.
    """
    answer = answer.strip()
    if prompt_closes_think(prompt) or not prompt_opens_think(prompt) and not (
            uses_chat and tokenizer is not None and renders_reasoning_content(tokenizer)):
        completion = answer
    elif prompt_opens_think(prompt):
        completion = f"{'' if prompt.endswith(chr(10)) else chr(10)}\n{THINK_CLOSE}\n\n{answer}"
    else:
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], tokenize=False)
        if not full.startswith(prompt):
            raise ThinkError("the chat template's assistant turn does not continue its own generation prompt, so "
                             "the trained text would differ from what generation continues")
        completion = full[len(prompt):]
        if end and end in completion:
            completion = completion[: completion.rindex(end)]
        completion = completion.rstrip()
        if answer not in completion:
            raise ThinkError("the chat template dropped the answer of the last assistant turn")
        return completion + end
    return completion + end if end and not completion.endswith(end) else completion


def answer_offset(completion: str) -> int | None:
    """Character offset in a rendered completion where the answer starts (just after `</think>` and the blank
    line); None when the completion has no closed think block."""
    at = completion.rfind(THINK_CLOSE)
    if at < 0:
        return None
    at += len(THINK_CLOSE)
    while at < len(completion) and completion[at] in "\n ":
        at += 1
    return at


def with_opened_think(prompt: str, completion: str) -> str:
    """A generated completion as answer extraction should read it: when the generation prompt opened the think block
    (R1-distill), the completion starts inside it, so the opening tag is put back -- otherwise a completion cut off
    while thinking would have its trace read as the answer. Other completions are returned unchanged."""
    return f"{THINK_OPEN}\n{completion}" if prompt_opens_think(prompt) and THINK_OPEN not in completion else completion
