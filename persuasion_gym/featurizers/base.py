"""The featurizer interface: task-item texts in, fixed-size float32 vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Featurizer(ABC):
    """Maps texts to rows of a float32 matrix with values in [-1, 1] (unit-norm rows)."""

    name: str
    dim: int

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the mapping (model, parameters): features are cached under it."""

    @abstractmethod
    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape ``(len(texts), dim)``, dtype float32."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"
