"""Generic formats a user brings from other kits: chat messages, alpaca, TRL prompt-completion.

Each turns one row into the fields of a MathExample (question, solution, style, answer, meta) or names why
the row cannot be one (a drop reason the build counts). A row that is not in the format at all (no
`messages`, an unknown role) raises DataError naming the row and what was expected.

- `messages`: a list of turns under `messages` (OpenAI / TRL conversational) or `conversations` (ShareGPT).
  A turn is {role, content} (OpenAI) or {from, value} (ShareGPT); roles user/human, assistant/gpt/model/bot,
  system. `content` may be a string or OpenAI content parts [{"type": "text", "text": ...}].
  One row is one question and one answer: optional system turns, one user turn, one assistant turn.
  Longer conversations and tool turns are dropped as `multi_turn` (an SFT record holds one exchange),
  non-text parts as `non_text_content`; a system prompt is kept in meta["system"] and counted by the build.
- `alpaca`: instruction, input (optional context, appended after a blank line), output (Taori et al. 2023).
- `prompt_completion`: TRL's prompt-completion dataset type, {prompt, completion} as strings, or as lists of
  messages (conversational: prompt = [system?, user], completion = [assistant]).
Style is CoT unless the recipe's source says `style: pot`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arithmo.io import DataError

USER, ASSISTANT, SYSTEM, TOOL = "user", "assistant", "system", "tool"
# OpenAI roles, ShareGPT's `from` values, and the names other kits use for the same three speakers.
ROLES = {"user": USER, "human": USER, "assistant": ASSISTANT, "gpt": ASSISTANT, "model": ASSISTANT,
         "bot": ASSISTANT, "system": SYSTEM, "developer": SYSTEM,
         # tool use: a valid conversation, but not one question and one answer
         "tool": TOOL, "function": TOOL, "function_call": TOOL, "observation": TOOL, "ipython": TOOL}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _fields(row: dict, names: tuple[str, ...], where: str, fmt: str) -> str:
    found = next((n for n in names if n in row), None)
    if found is None:
        present = ", ".join(sorted(map(str, row))) or "none"
        wanted = " or ".join(repr(n) for n in names)
        raise DataError(f"{where}: missing field {wanted} for the {fmt} format (fields present: {present})")
    return found


def _content(value: Any, where: str) -> str | None:
    """A turn's text; None when it holds a non-text part (an image, audio)."""
    if value is None or isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        texts = []
        for part in value:
            if isinstance(part, dict) and part.get("type", "text") == "text" and "text" in part:
                texts.append(str(part["text"]))
            elif isinstance(part, str):
                texts.append(part)
            else:
                return None
        return _text("".join(texts))
    raise DataError(f"{where}: a turn's content should be text or a list of content parts, "
                    f"got {type(value).__name__}")


def _turns(messages: Any, where: str) -> list[tuple[str, str | None]]:
    """[(role, text)] of a message list in OpenAI or ShareGPT spelling; DataError for anything else."""
    if not isinstance(messages, list):
        raise DataError(f"{where}: expected a list of turns, got {type(messages).__name__}")
    turns = []
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict):
            raise DataError(f"{where}: turn {i} should be an object with role/content or from/value")
        role_key = "role" if "role" in turn else "from" if "from" in turn else None
        text_key = "content" if "content" in turn else "value" if "value" in turn else None
        if role_key is None or text_key is None:
            raise DataError(f"{where}: turn {i} needs role+content (OpenAI) or from+value (ShareGPT); "
                            f"it has {', '.join(sorted(map(str, turn))) or 'nothing'}")
        role = ROLES.get(str(turn[role_key]).lower())
        if role is None:
            raise DataError(f"{where}: turn {i} has unknown role {turn[role_key]!r}; expected one of "
                            f"{', '.join(sorted(ROLES))}")
        turns.append((role, _content(turn[text_key], f"{where} turn {i}")))
    return turns


def _exchange(turns: list[tuple[str, str | None]]) -> dict[str, Any] | str:
    """The one question and answer of [system*, user, assistant], or the drop reason."""
    system = [text for role, text in turns if role == SYSTEM]
    rest = [(role, text) for role, text in turns if role != SYSTEM]
    if any(text is None for _, text in turns):
        return "non_text_content"
    if not rest or rest[0][0] != USER:
        return "empty_question"
    if len(rest) == 1:
        return "empty_solution"
    if len(rest) > 2 or rest[1][0] != ASSISTANT:
        return "multi_turn"
    question, solution = rest[0][1], rest[1][1]
    if not question:
        return "empty_question"
    if not solution:
        return "empty_solution"
    meta = {"system": "\n".join(t for t in system if t)} if any(system) else {}
    return {"question": question, "solution": solution, "style": "cot", "answer": None, "meta": meta}


def adapt_messages(row: dict, where: str) -> dict | str:
    key = _fields(row, ("messages", "conversations"), where, "chat messages")
    return _exchange(_turns(row[key], f"{where} {key}"))


def adapt_alpaca(row: dict, where: str) -> dict | str:
    for key in ("instruction", "output"):
        _fields(row, (key,), where, "alpaca")
    instruction, context, output = _text(row["instruction"]), _text(row.get("input")), _text(row["output"])
    if not instruction:
        return "empty_question"
    if not output:
        return "empty_solution"
    question = f"{instruction}\n\n{context}" if context else instruction
    return {"question": question, "solution": output, "style": "cot", "answer": None, "meta": {}}


def adapt_prompt_completion(row: dict, where: str) -> dict | str:
    for key in ("prompt", "completion"):
        _fields(row, (key,), where, "prompt-completion")
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, list) or isinstance(completion, list):  # TRL's conversational prompt-completion
        if not (isinstance(prompt, list) and isinstance(completion, list)):
            raise DataError(f"{where}: prompt and completion should both be text or both be message lists")
        return _exchange(_turns(prompt, f"{where} prompt") + _turns(completion, f"{where} completion"))
    question, solution = _text(prompt), _text(completion)
    if not question:
        return "empty_question"
    if not solution:
        return "empty_solution"
    return {"question": question, "solution": solution, "style": "cot", "answer": None, "meta": {}}


FORMATS: dict[str, Callable[[dict, str], dict | str]] = {
    "messages": adapt_messages,
    "alpaca": adapt_alpaca,
    "prompt_completion": adapt_prompt_completion,
}
