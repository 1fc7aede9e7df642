import numpy as np
import pytest

from persuasion_gym.errors import ConfigError
from persuasion_gym.featurizers import HashedNgramFeaturizer, MiniLMFeaturizer, cached_features, make_featurizer

TEXTS = [
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "Tom owns three apples and then purchases five more. How many apples does he own now?",
    "A train travels 60 miles per hour for 2 hours. How far does it go?",
]


def test_hashed_is_deterministic_unit_norm_and_separates_texts():
    featurizer = HashedNgramFeaturizer(dim=128)
    a, b = featurizer.transform(TEXTS), HashedNgramFeaturizer(dim=128).transform(TEXTS)
    assert a.shape == (3, 128) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert a[0] @ a[1] > a[0] @ a[2]
    assert featurizer.transform([]).shape == (0, 128)


def test_minilm_embeds_meaning():
    featurizer = make_featurizer("minilm")
    assert isinstance(featurizer, MiniLMFeaturizer)
    x = featurizer.transform(TEXTS)
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    assert x[0] @ x[1] > 0.8 > x[0] @ x[2]  # a paraphrase is closer than another problem


class CountingFeaturizer(HashedNgramFeaturizer):
    calls = 0

    def transform(self, texts):
        CountingFeaturizer.calls += 1
        return super().transform(texts)


def test_features_are_cached_on_disk_by_content(tmp_path):
    featurizer = CountingFeaturizer(dim=16)
    first = cached_features(featurizer, TEXTS, tmp_path)
    second = cached_features(CountingFeaturizer(dim=16), TEXTS, tmp_path)
    np.testing.assert_array_equal(first, second)
    assert CountingFeaturizer.calls == 1 and len(list(tmp_path.glob("*.npy"))) == 1
    cached_features(featurizer, TEXTS[:2], tmp_path)  # other content, other file
    cached_features(CountingFeaturizer(dim=32), TEXTS, tmp_path)  # other featurizer, other file
    assert CountingFeaturizer.calls == 3 and len(list(tmp_path.glob("*.npy"))) == 3


def test_unknown_featurizer():
    with pytest.raises(ConfigError, match="unknown featurizer 'bert'.*minilm, hashed"):
        make_featurizer("bert")
