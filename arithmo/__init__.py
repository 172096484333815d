"""arithmo: a lightweight single-GPU QLoRA fine-tuning kit for math-reasoning language models."""

import logging as _logging

__version__ = "0.1.0"


class _QuietLibraryNotice(_logging.Filter):
    """Drops library log lines that read like a broken install but only name an optional speed-up.

    bitsandbytes (0.49) logs "Failed to load CPU gemm_4bit_forward from kernels-community: No module named
    'kernels'" as a warning on import on every CPU with AVX512-BF16; it then uses its own CPU kernel (the 4-bit
    path arithmo never takes on CPU: load_in_4bit is CUDA only). Every other line of that logger passes.
    """

    def filter(self, record: _logging.LogRecord) -> bool:
        return "kernels-community" not in str(record.msg)


_logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_QuietLibraryNotice())
