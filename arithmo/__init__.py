"""arithmo: a lightweight single-GPU QLoRA fine-tuning kit for math-reasoning language models."""

__version__ = "0.1.0"
