"""A stand-in text generator for the demo's tests: scripted replies, streamed in chunks, every call recorded.

It has the members `arithmo.app.session.DemoSession` uses (tokenizer, template, has_adapter, stream), so the app's
logic and UI run unchanged around it; only the model is replaced.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from arithmo.prompts import POT_HINTS

REPO = Path(__file__).resolve().parents[1]

Reply = Callable[[str, bool, int], str]  # (prompt, use_adapter, seed) -> the full completion


def is_pot_prompt(prompt: str) -> bool:
    return POT_HINTS[0] in prompt


class ScriptedGenerator:
    tokenizer = None
    template = "plain"

    def __init__(self, reply: Reply | str, *, has_adapter: bool = True, chunk: int = 4, delay_s: float = 0.0):
        self.reply = reply if callable(reply) else (lambda prompt, use_adapter, seed: reply)
        self.has_adapter = has_adapter
        self.chunk, self.delay_s = chunk, delay_s
        self.calls: list[dict] = []
        self.active = 0
        self.most_active = 0  # the most generations that ever ran at the same time
        self._lock = threading.Lock()

    def stream(self, prompt: str, *, max_new_tokens: int, temperature: float, seed: int, max_time_s: float,
               use_adapter: bool = True) -> Iterator[str]:
        with self._lock:
            self.calls.append({"prompt": prompt, "max_new_tokens": max_new_tokens, "temperature": temperature,
                               "seed": seed, "max_time_s": max_time_s, "use_adapter": use_adapter})
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            text = self.reply(prompt, use_adapter, seed)
            pieces = range(self.chunk, len(text) + self.chunk, self.chunk)
            for end in pieces:
                if self.delay_s:
                    time.sleep(self.delay_s / len(pieces))
                yield text[:end]
        finally:
            with self._lock:
                self.active -= 1


def by_style(cot: str, pot: str, base_cot: str | None = None, base_pot: str | None = None) -> Reply:
    """A reply that depends on the style asked for (the PoT hint in the prompt) and on the adapter."""

    def reply(prompt: str, use_adapter: bool, seed: int) -> str:
        if not use_adapter and base_cot is not None:
            return base_pot if is_pot_prompt(prompt) and base_pot is not None else base_cot
        return pot if is_pot_prompt(prompt) else cot

    return reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def import_app():
    """app.py (at the repository root, not a package module) imported from its file, once per process."""
    if "app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("app", REPO / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["app"] = module
        spec.loader.exec_module(module)
    return sys.modules["app"]
