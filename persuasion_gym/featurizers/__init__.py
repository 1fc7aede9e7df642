"""Featurizers: numeric observations of task items, so MLP policies work as is."""

from __future__ import annotations

import logging

from persuasion_gym.errors import ConfigError
from persuasion_gym.featurizers.base import Featurizer
from persuasion_gym.featurizers.hashed import HashedNgramFeaturizer
from persuasion_gym.featurizers.minilm import INSTALL_HINT, MiniLMFeaturizer, minilm_available
from persuasion_gym.featurizers.store import cached_features

logger = logging.getLogger(__name__)
FEATURIZERS = ("auto", "minilm", "hashed")


def make_featurizer(featurizer: str | Featurizer = "auto") -> Featurizer:
    """``"minilm"``, ``"hashed"``, or ``"auto"``: MiniLM when installed, else hashed n-grams."""
    if isinstance(featurizer, Featurizer):
        return featurizer
    if featurizer == "auto":
        if minilm_available():
            return MiniLMFeaturizer()
        logger.warning("sentence encoder not installed (%s): observations use hashed n-grams", INSTALL_HINT)
        return HashedNgramFeaturizer()
    if featurizer == "minilm":
        return MiniLMFeaturizer()
    if featurizer == "hashed":
        return HashedNgramFeaturizer()
    raise ConfigError(f"unknown featurizer {featurizer!r}: use one of {', '.join(FEATURIZERS)} or a Featurizer")


__all__ = [
    "FEATURIZERS", "Featurizer", "HashedNgramFeaturizer", "MiniLMFeaturizer",
    "cached_features", "make_featurizer", "minilm_available",
]
