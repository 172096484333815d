"""The model behind the demo: a loaded model (and adapter) as a stream of growing text.

    generator = load_generator(None, "runs/demo/adapter")   # the run's model and template, plus its adapter
    for text in generator.stream(prompt, max_new_tokens=128, temperature=0.0, seed=0, max_time_s=60):
        ...                                                   # the whole completion so far
    generator.stream(prompt, ..., use_adapter=False)          # the base model: peft's disable_adapter()

`arithmo.app.session.DemoSession` takes any object with the members of `TextGenerator`, so tests can hand it a
scripted stand-in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

from arithmo.runs import RunFolder, is_adapter, read_run_config, run_of_adapter

DEFAULT_MODEL = "smollm2-135m-instruct"  # the CPU demo's embedded model (docs/design.md "Offline by design")
REPO = Path(__file__).resolve().parents[2]


class TextGenerator(Protocol):
    """What the session needs from a model: how prompts are written, and a stream of growing text."""

    tokenizer: Any  # for the chat template (None: the plain template)
    template: str  # auto | plain | chat (arithmo.prompts)
    has_adapter: bool  # whether use_adapter=False gives a different (base) model

    def stream(self, prompt: str, *, max_new_tokens: int, temperature: float, seed: int, max_time_s: float,
               use_adapter: bool = True) -> Iterator[str]: ...


class ModelGenerator:
    """A loaded model (optionally a PEFT model with an adapter) as a TextGenerator.

    One generation at a time (a lock): a PEFT model's adapter is switched off for the whole model while
    `use_adapter=False` streams, so two requests must not interleave.
    """

    def __init__(self, model: Any, tokenizer: Any, *, template: str = "auto", description: str = ""):
        from arithmo.prompts import stop_strings

        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.has_adapter = hasattr(model, "disable_adapter") and bool(getattr(model, "peft_config", None))
        self.stop = stop_strings(tokenizer, template)
        self.description = description
        self._lock = threading.Lock()

    def stream(self, prompt: str, *, max_new_tokens: int, temperature: float, seed: int, max_time_s: float,
               use_adapter: bool = True) -> Iterator[str]:
        from arithmo.generate import stream_generate

        if not use_adapter and not self.has_adapter:
            raise ValueError("use_adapter=False: no adapter is loaded, so there is no base model to switch to")
        # A request waits at most as long as the one before it may run (its time cap), then says so.
        if not self._lock.acquire(timeout=max_time_s + 30):
            raise TimeoutError("the model is busy with another request; try again in a moment")
        try:
            # peft's disable_adapter(): the base model's answer from the same weights, without a second copy.
            with nullcontext() if use_adapter or not self.has_adapter else self.model.disable_adapter():
                yield from stream_generate(self.model, self.tokenizer, prompt, max_new_tokens=max_new_tokens,
                                           temperature=temperature, stop=self.stop, max_time_s=max_time_s,
                                           seed=seed)
        finally:
            self._lock.release()


def default_adapter(runs_dir: str | Path = REPO / "runs") -> Path | None:
    """runs/demo/adapter when `make demo` has trained it, else None."""
    adapter = RunFolder(Path(runs_dir) / "demo").adapter
    return adapter if is_adapter(adapter) else None


def load_generator(model: str | None = None, adapter: str | Path | None = None, *, template: str = "auto",
                   engine: str = "auto") -> ModelGenerator:
    """Load `model` (default: the adapter's run's model, else the embedded SmolLM2) and `adapter` for the app.

    The prompt template is the one the adapter's run trained with when `template` is auto.
    """
    from arithmo.model import load_model

    run = run_of_adapter(adapter) if adapter is not None else None
    trained = read_run_config(run).model if run is not None else None
    name = model or (trained.name if trained is not None else DEFAULT_MODEL)
    if template == "auto" and trained is not None:
        template = trained.template
    loaded = load_model(name, engine=engine, adapter=str(adapter) if adapter is not None else None)
    shown = adapter
    if adapter is not None and Path(adapter).resolve().is_relative_to(REPO):
        shown = Path(adapter).resolve().relative_to(REPO)  # runs/demo/adapter, not the checkout's absolute path
    description = f"{name}" + (f" + adapter {shown}" if adapter is not None else "") + f" ({loaded.engine})"
    return ModelGenerator(loaded.model, loaded.tokenizer, template=template, description=description)
