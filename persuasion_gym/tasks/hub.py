"""Loading a split from the Hugging Face hub (optional: needs ``datasets`` and the network)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from persuasion_gym.errors import DataError


def hub_rows(hub_id: str, config: str | None, split: str, local_fix: str) -> Any:
    """The rows of ``hub_id`` (``config``, ``split``); a ``DataError`` naming ``local_fix`` (how
    to use local files instead) when ``datasets`` is missing or the hub cannot be reached."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"{local_fix}, or `pip install datasets` to fetch {hub_id} from the Hugging Face hub") from None
    try:
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # the hub is unreachable, or the dataset is missing
        raise DataError(
            f"could not load {hub_id} ({config}) from the Hugging Face hub ({type(exc).__name__}); "
            "offline, pass data_path= or set PERSUASION_GYM_DATA_DIR"
        ) from None


def content_sha256(parts: Iterable[Any]) -> str:
    """A data set's hash when there is no file to hash: over its items' JSON-able parts."""
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()
