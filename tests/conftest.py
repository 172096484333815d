"""Shared fixtures: a tiny random-initialised causal LM with a real (locally trained) tokenizer.

Tests never touch the hub: `tiny_model_dir` is a folder that `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load offline, like a downloaded checkpoint would.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

# Triton runs on CPU only in its interpreter, chosen when a kernel is decorated: set it before any test
# module (or transformers, which may import triton) imports arithmo.kernels.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

sys.path.insert(0, str(Path(__file__).parent))  # `from _shared import ...` in every test module

from _shared import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama (hidden 64) with a 512-token byte-level BPE tokenizer and a ChatML chat template."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny_llama"), chat_template=True)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory) -> Path:
    """The same tiny model without a chat template (a 'base' model: prompts use the plain template)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny_llama_base"), chat_template=False)


# sandbox tests (test_sandbox_*.py): one jail fixture, shared (issue 22) ---------------------------------


@pytest.fixture(scope="module")
def jail():
    """A two-worker sandbox pool in the bubblewrap jail, one per test module. Skips where bubblewrap cannot
    run, except under ARITHMO_REQUIRE_JAIL=1 (set by .ci/run, which installs bubblewrap): there it fails."""
    from arithmo.sandbox import Sandbox, SandboxError

    try:
        box = Sandbox(workers=2, jail=True)
    except SandboxError as why:
        if os.environ.get("ARITHMO_REQUIRE_JAIL") == "1":
            pytest.fail(f"bubblewrap is installed but the jail cannot run: {why}")
        pytest.skip(f"{why}; CI installs it (.ci/run)")
    with box:
        yield box
