"""What the flags name, checked before a command starts: env ids, signal files, Receivers. Each
failure is a ``ConfigError`` naming the flag and the fix."""

from __future__ import annotations

import difflib
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persuasion_gym.errors import ConfigError, ReceiverConfigError, ReceiverError

if TYPE_CHECKING:
    from persuasion_gym.receivers import Receiver


def check_env_id(env_id: str, flag: str = "--env") -> None:
    """An unregistered id fails here with the closest registered one, not in Gymnasium's traceback."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)

    module, _, name = env_id.rpartition(":")
    if module:  # "module:Env-v0": importing the module registers the env, as gym.make does
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{flag} {env_id}: cannot import {module!r}, which should register it ({exc})") from None
    if name in gym.registry:
        return
    by_lower = {known.lower(): known for known in gym.registry}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1)
    guess = f"did you mean {by_lower[close[0]]}? " if close else ""
    raise ConfigError(f"unknown env id {name!r} ({flag}): {guess}`persuasion-gym envs` lists the registered ids")


_JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_signals(path: str) -> list[str]:
    """``--signals-file``: a JSON list of signal texts; errors name the file and the flag."""
    from persuasion_gym.signals import SignalLibrary

    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--signals-file {path}: cannot read it ({exc.strerror}): pass a JSON file holding a "
                          'list of signal texts, e.g. ["", "Think step by step."]') from None
    try:
        signals = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--signals-file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}; it must hold a list of signal texts, e.g. "
                          '["", "Think step by step."]') from None
    if not isinstance(signals, list):
        raise ConfigError(f"--signals-file {path} holds a JSON {_JSON_TYPES.get(type(signals), 'value')}: it must "
                          'hold a list of signal texts ("" is the empty signal), e.g. ["", "Think step by step."]')
    try:
        SignalLibrary(signals)  # its own checks: texts only, at least one, no duplicates
    except ConfigError as exc:
        raise ConfigError(f"--signals-file {path}: {exc}") from None
    return signals


def make_receiver(spec: str, **kwargs: Any) -> Receiver:
    """``make_receiver``, for the commands that make their own: a Receiver that fails while being
    set up (missing key, no server) has been asked nothing, so a rerun alone does not help."""
    from persuasion_gym.receivers import make_receiver as make

    try:
        return make(spec, **kwargs)
    except ReceiverConfigError:
        raise
    except ReceiverError as exc:
        raise ReceiverConfigError(f"--receiver {spec}: {exc}") from exc
