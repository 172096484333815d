"""`arithmo <command> ...`: one console script for every stage; each command is the stage's own `main(argv)`.

    arithmo data build RECIPE --out DIR [key=value ...]    = python -m arithmo.data build ...
    arithmo train --preset NAME [key=value ...]            = python -m arithmo.train ...
    arithmo eval | export | report | rft | grpo ...        = python -m arithmo.<command> ...
    arithmo app [options]                                  = python app.py ...

Everything after the command goes to that stage untouched, so `arithmo train --help` prints every training key.
A stage is imported only when its command runs (torch and transformers take seconds to import).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

# command -> (module, function, one line for `arithmo --help`)
COMMANDS = {
    "data": ("arithmo.data.__main__", "main", "build a training mix: arithmo data build RECIPE --out DIR"),
    "train": ("arithmo.train", "main", "LoRA/QLoRA SFT of a model on a data recipe"),
    "eval": ("arithmo.eval", "main", "score a model or run on a math benchmark"),
    "export": ("arithmo.export.cli", "main", "merge an adapter; write safetensors or GGUF + Ollama Modelfile"),
    "report": ("arithmo.report", "main", "compare metrics.json files side by side"),
    "rft": ("arithmo.rft", "main", "rejection-sampling fine-tuning data: sample, keep the correct distinct ones"),
    "grpo": ("arithmo.grpo", "main", "GRPO on arithmo's grader as the reward"),
    "plan": ("arithmo.plan", "main", "will it fit? predicted peak GPU memory of a train or GRPO preset"),
    "app": ("app.py", "main", "the Gradio app (from a source checkout: app.py beside the package)"),
}


class CommandError(RuntimeError):
    """A command cannot be dispatched; the message says why and what to run instead."""


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: arithmo <command> [args ...]   (arithmo <command> --help: that command's options and keys)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def _app_main():
    """app.py's main: app.py sits beside the package in a source checkout (it is UI, not library)."""
    path = Path(__file__).resolve().parent.parent / "app.py"
    if not path.is_file():
        raise CommandError(f"arithmo app runs app.py from a source checkout, and there is none at {path}; "
                           "clone the repository and run `python app.py` there")
    if importlib.util.find_spec("gradio") is None:
        raise CommandError("arithmo app needs gradio: pip install 'arithmo[app]'")
    spec = importlib.util.spec_from_file_location("arithmo_app_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _rft_main():
    """RFT's main: `arithmo.rft.main`, or `arithmo.rft.recipe.main` where the package keeps it there."""
    try:
        package = importlib.import_module("arithmo.rft")
    except ModuleNotFoundError as err:
        raise CommandError(f"arithmo rft: the RFT stage is not in this install ({err})") from err
    entry = getattr(package, "main", None)
    if entry is None and importlib.util.find_spec("arithmo.rft.recipe") is not None:
        entry = getattr(importlib.import_module("arithmo.rft.recipe"), "main", None)
    if entry is None:
        raise CommandError("arithmo rft: arithmo.rft has no main(argv) in this install")
    return entry


def resolve(command: str):
    """The `main(argv)` function of a command. Raises CommandError for an unknown or unavailable one."""
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    if command == "app":
        return _app_main()
    if command == "rft":
        return _rft_main()
    module, function, _ = COMMANDS[command]
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from arithmo import __version__

        print(f"arithmo {__version__}")
        return 0
    try:
        entry = resolve(args[0])
    except CommandError as err:
        print(f"error: {err}\n\n{_usage()}", file=sys.stderr)
        return 2
    from arithmo import config

    config.CONSOLE = True  # usage lines say `arithmo <command>`, as typed
    try:
        result = entry(args[1:])
    finally:
        config.CONSOLE = False
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
