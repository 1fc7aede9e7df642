"""A dependency-free featurizer: signed feature hashing of word n-grams.

The fallback when the sentence encoder is not installed. Hashing uses BLAKE2 (stable across
processes, unlike ``hash``), so the same text always gives the same vector.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from persuasion_gym.featurizers.base import Featurizer

_TOKEN = re.compile(r"\w+|[^\w\s]")


class HashedNgramFeaturizer(Featurizer):
    """Word 1..``max_n``-grams hashed into ``dim`` signed buckets, rows L2-normalised."""

    name = "hashed"

    def __init__(self, dim: int = 1024, max_n: int = 2):
        if dim < 2 or max_n < 1:
            raise ValueError(f"dim={dim}, max_n={max_n}: need dim >= 2 and max_n >= 1")
        self.dim, self.max_n = dim, max_n

    @property
    def fingerprint(self) -> str:
        return f"hashed-ngram-v1-d{self.dim}-n{self.max_n}"

    def _vector(self, text: str) -> np.ndarray:
        tokens = _TOKEN.findall(text.lower())
        vector = np.zeros(self.dim, dtype=np.float64)
        for n in range(1, self.max_n + 1):
            for i in range(len(tokens) - n + 1):
                digest = hashlib.blake2b(" ".join(tokens[i : i + n]).encode(), digest_size=8).digest()
                code = int.from_bytes(digest, "little")
                vector[code % self.dim] += 1.0 if (code >> 63) else -1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)
