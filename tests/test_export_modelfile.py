"""The Ollama Modelfile's TEMPLATE is arithmo's own prompt with {{ .Prompt }} for the question, with the BOS where
llama.cpp needs it; its strings are escaped as Modelfiles and Go templates require."""

import pytest

from arithmo.export import ExportError
from arithmo.export.modelfile import modelfile_text, ollama_template

MISTRAL = ("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
           "{% endfor %}")


@pytest.fixture
def tokenizer(tiny_base_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base_model_dir)


@pytest.mark.parametrize("chat_template, template, gguf_adds_bos, expected", [
    # the plain template of base models
    (None, "auto", False, "Question: {{ .Prompt }}\n\nAnswer:"),
    # a template that writes the BOS itself: llama.cpp adds one from the GGUF header, so it is left out ...
    (MISTRAL, "chat", True, "[INST] {{ .Prompt }} [/INST]"),
    # ... and kept when the header does not add one (one BOS, as arithmo's prompt_token_ids gives)
    (MISTRAL, "chat", False, "<s>[INST] {{ .Prompt }} [/INST]"),
    # literal braces in a prompt are escaped for Go's template parser
    ("{{ '{{x}} ' + messages[0]['content'] }}", "chat", False, '{{ "{{" }}x}} {{ .Prompt }}'),
])
def test_template_is_arithmo_s_prompt(tokenizer, chat_template, template, gguf_adds_bos, expected):
    tokenizer.chat_template = chat_template
    assert ollama_template(tokenizer, template, gguf_adds_bos=gguf_adds_bos) == expected


def test_bos_the_tokenizer_adds_is_written_when_the_gguf_does_not(tokenizer):
    from tokenizers import processors

    # A Llama-2-style tokenizer adds <s> itself (its post-processor): arithmo's prompt then starts with it.
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.bos_token_id)])
    assert ollama_template(tokenizer, "plain", gguf_adds_bos=False) == "<s>Question: {{ .Prompt }}\n\nAnswer:"
    assert ollama_template(tokenizer, "plain", gguf_adds_bos=True) == "Question: {{ .Prompt }}\n\nAnswer:"


def test_modelfile_text_escapes_stops():
    text = modelfile_text("m.gguf", "Q: {{ .Prompt }}", ["<|im_end|>", 'say "stop"\\', ""], header="a\nb")
    assert text.splitlines() == ["# a", "# b", "FROM ./m.gguf", 'TEMPLATE """Q: {{ .Prompt }}"""',
                                 'PARAMETER stop "<|im_end|>"', 'PARAMETER stop "say \\"stop\\"\\\\"',
                                 "PARAMETER temperature 0"]
    with pytest.raises(ExportError, match='contains """'):
        modelfile_text("m.gguf", 'x """ y', [])
