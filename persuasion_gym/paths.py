"""Where persuasion_gym keeps caches and looks for local data sets."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$PERSUASION_GYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/persuasion_gym``
    (``~/.cache/persuasion_gym``). Created on first use."""
    root = os.environ.get("PERSUASION_GYM_CACHE_DIR")
    if root:
        path = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(xdg).expanduser() / "persuasion_gym"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """``$PERSUASION_GYM_DATA_DIR`` (holding e.g. ``gsm8k/train.jsonl``), or None if unset."""
    root = os.environ.get("PERSUASION_GYM_DATA_DIR")
    return Path(root).expanduser() if root else None
