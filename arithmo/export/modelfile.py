"""The Ollama `Modelfile` written beside a GGUF export (`ollama create NAME -f Modelfile`).

Ollama's TEMPLATE is a Go template, not the model's Jinja chat template, so it is derived, not copied: the prompt
arithmo trains and evaluates with (`arithmo.prompts.render_prompt` with the run's template) is rendered around a
placeholder question, and the placeholder becomes `{{ .Prompt }}` (Ollama's Modelfile docs, "Template
variables"). That is a single-turn template, the only turn arithmo trains; earlier turns of a chat are not sent.
The stop parameters are what evaluation stops on: every end-of-turn token (`arithmo.prompts.turn_end_ids`: the
eos, the chat template's end of turn, the model's generation_config eos ids) and, with the plain template, its text
stop (`arithmo.prompts.stop_strings`: "\nQuestion:", or a base model invents the next question). Greedy decoding (temperature 0) is what
arithmo's scores are measured with.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from arithmo.export import ExportError

_QUESTION = "ARITHMO_MODELFILE_QUESTION"


def _quoted(text: str) -> str:
    """A Modelfile string parameter: double quotes, with backslashes and quotes escaped; a stop string that holds
    a newline (the plain template's "\\nQuestion:") goes in Ollama's triple quotes, which keep it literally."""
    if "\n" in text:
        if '"""' in text:
            raise ExportError(f'a stop string holds both a newline and """, which a Modelfile cannot write: {text!r}')
        return '"""' + text + '"""'
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ollama_template(tokenizer: Any, template: str = "auto", gguf_adds_bos: bool = False) -> str:
    """The Go template of arithmo's prompt for this tokenizer: `{{ .Prompt }}` where the question goes.

    The BOS is placed so that llama.cpp sees the ids arithmo trains with (arithmo.prompts.prompt_token_ids: one
    BOS when the tokenizer adds one or the chat template writes it): llama.cpp adds it itself when the GGUF header
    says `add_bos_token` (`gguf_adds_bos`), so a BOS the template writes is then left out, and written into the
    template otherwise. Literal `{{` in the prompt is escaped as Go templates require.
    """
    from arithmo.prompts import prompt_token_ids, render_prompt

    prompt = render_prompt(_QUESTION, tokenizer, template)
    bos = getattr(tokenizer, "bos_token", None)
    ids = prompt_token_ids(tokenizer, prompt)
    with_bos = bool(bos) and bool(ids) and ids[0] == tokenizer.bos_token_id
    if bos and prompt.startswith(bos):
        prompt = prompt[len(bos):]
    if with_bos and not gguf_adds_bos:
        prompt = bos + prompt
    if prompt.count(_QUESTION) != 1:
        raise ExportError(f"the {template} template does not place the question exactly once: {prompt!r}")
    before, after = (part.replace("{{", '{{ "{{" }}') for part in prompt.split(_QUESTION))
    return before + "{{ .Prompt }}" + after


def stop_tokens(model_dir: str | Path, tokenizer: Any) -> list[str]:
    """The text of every token generation stops on, for this model folder's generation_config and tokenizer."""
    from transformers import GenerationConfig

    from arithmo.generate import end_token_ids

    try:
        generation = GenerationConfig.from_pretrained(model_dir)
    except OSError:  # a folder without generation_config.json: the tokenizer's ends only
        generation = None
    ids = end_token_ids(SimpleNamespace(generation_config=generation), tokenizer)
    return [tokenizer.decode([i], skip_special_tokens=False) for i in ids]


def modelfile_text(gguf_name: str, template_go: str, stops: list[str], header: str = "") -> str:
    """A Modelfile: FROM the GGUF file beside it, TEMPLATE, one PARAMETER stop per stop token, temperature 0."""
    if '"""' in template_go:
        raise ExportError('the prompt contains """, which ends a Modelfile TEMPLATE: it cannot be written')
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"FROM ./{gguf_name}", f'TEMPLATE """{template_go}"""']
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in stops if stop]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def write_modelfile(out_dir: str | Path, gguf_name: str, model_dir: str | Path, template: str = "auto", *,
                    gguf_adds_bos: bool) -> Path:
    """Write `<out_dir>/Modelfile` for `gguf_name`, its prompt and stops from `model_dir`'s tokenizer.

    `gguf_adds_bos`: the GGUF file's `tokenizer.ggml.add_bos_token` (the converter's caller, gguf.py, reads it),
    so that the template does not write a second BOS.
    """
    from transformers import AutoTokenizer

    from arithmo.prompts import stop_strings

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    adds_bos = gguf_adds_bos
    header = (f"Ollama Modelfile written by arithmo export: ollama create <name> -f Modelfile; ollama run <name>\n"
              f"TEMPLATE: arithmo's {template} prompt with the question as {{{{ .Prompt }}}} (single turn)")
    # The stops evaluation uses: every end-of-turn token, and the plain template's text stop (arithmo.prompts).
    stops = stop_tokens(model_dir, tokenizer) + stop_strings(tokenizer, template)
    text = modelfile_text(gguf_name, ollama_template(tokenizer, template, gguf_adds_bos=adds_bos), stops, header)
    path = Path(out_dir) / "Modelfile"
    path.write_text(text, encoding="utf-8")
    return path
