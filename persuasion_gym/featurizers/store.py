"""Features computed once per data set and kept on disk, keyed by content hash."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from persuasion_gym.featurizers.base import Featurizer
from persuasion_gym.paths import cache_dir

# Texts per transform call: a bar of chunks shows progress where one call for a whole split
# (MiniLM on 7,473 questions: half a minute on a CPU) would be silent; smaller inputs get no bar.
_CHUNK = 256


def features_key(featurizer: Featurizer, texts: Sequence[str]) -> str:
    payload = json.dumps([featurizer.fingerprint, list(texts)])
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_features(featurizer: Featurizer, texts: Sequence[str], directory: Path | None = None) -> np.ndarray:
    """``featurizer.transform(texts)``, read from ``<cache>/features/<hash>.npy`` when there."""
    directory = directory or cache_dir() / "features"
    path = directory / f"{features_key(featurizer, texts)}.npy"
    if path.is_file():
        features = np.load(path)
        if features.shape == (len(texts), featurizer.dim):
            return features
    chunks = [texts[start:start + _CHUNK] for start in range(0, len(texts), _CHUNK)]
    with tqdm(total=len(texts), desc="featurizing", unit="text", leave=False,
              disable=len(chunks) <= 1) as bar:
        parts = []
        for chunk in chunks:
            parts.append(featurizer.transform(chunk))
            bar.update(len(chunk))
    features = np.concatenate(parts) if parts else featurizer.transform(texts)
    directory.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    handle, tmp = tempfile.mkstemp(dir=directory, suffix=".npy.tmp")
    with os.fdopen(handle, "wb") as out:
        np.save(out, features)
    os.replace(tmp, path)
    return features
