"""Action checks of the persuasion envs: an action the action space does not admit is an
``InvalidActionError`` that says the fix, for the single env, its vector env and the server alike."""

from __future__ import annotations

from typing import Any

import numpy as np

from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.errors import InvalidActionError


def text_action_fix(on_table: bool) -> str:
    """How to send texts instead of indices, ending an index error: a table cannot answer
    texts it never recorded, so it must not be told to take text actions."""
    if on_table:
        return ("; a recorded table only has its recorded signals, so for text signals use a live Receiver "
                "(receiver='openai:MODEL@URL', 'embedded', ...) with action_type='text'")
    return ", or make the env with action_type='text' to send texts"


def check_index(action: Any, n: int, on_table: bool) -> int:
    """A signal index in ``0..n-1``, or an error that says the fix."""
    if isinstance(action, str):
        raise InvalidActionError(
            f"action {action!r} is text: actions are signal indices; pass an integer in 0..{n - 1} "
            f"(the text's position in env.unwrapped.signals){text_action_fix(on_table)}"
        )
    array = np.asarray(action) if action is not None else np.asarray(None, dtype=object)
    if array.size != 1 or array.dtype.kind not in "iu" or not 0 <= int(array.item()) < n:
        raise InvalidActionError(
            f"action {action!r} is not a signal index: pass an integer in 0..{n - 1} (this env's {n} signals)"
        )
    return int(array.item())


def check_text(action: Any, space: SignalText | None) -> str:
    """A signal text within ``space``'s length limit and charset (``None``: an index env, whose
    ``evaluate`` takes any text), or an error that says the fix."""
    if not isinstance(action, str):
        raise InvalidActionError(
            f"action {action!r} is not text: this env takes the signal's text (action_type='text'); pass a str, "
            "or make the env with action_type='index' to send signal indices"
        )
    if space is None:
        return str(action)
    if len(action) > space.max_length:
        raise InvalidActionError(
            f"signal of {len(action)} characters is over this env's limit of {space.max_length}: shorten it, "
            f"or make the env with max_signal_length={len(action)}"
        )
    outside = sorted(set(action) - space.character_set)
    if outside:
        raise InvalidActionError(
            f"signal holds characters outside the action space's charset: {''.join(outside)!r}; remove them, "
            "or make the env with signal_charset= a string holding every character the Advisor may write"
        )
    return str(action)


def check_text_batch(actions: Any, num_envs: int, space: SignalText) -> np.ndarray:
    """``num_envs`` signal texts (a tuple, list or array of str) as an object array."""
    if isinstance(actions, str) or len(actions) != num_envs:
        raise InvalidActionError(f"actions {actions!r} are not {num_envs} signal texts: pass a tuple or "
                                 f"list of {num_envs} strings")
    return np.array([check_text(a, space) for a in actions], dtype=object)


def check_index_batch(actions: Any, num_envs: int, n: int, on_table: bool) -> np.ndarray:
    """``num_envs`` signal indices in ``0..n-1`` as an int64 array."""
    array = np.asarray(actions)
    if array.dtype.kind in "USO" and any(isinstance(a, str) for a in np.ravel(array)):
        raise InvalidActionError(
            f"actions {actions!r} are texts: this vector env takes signal indices; pass an integer array of "
            f"shape ({num_envs},) with values in 0..{n - 1}{text_action_fix(on_table)}"
        )
    if array.shape != (num_envs,) or array.dtype.kind not in "iu" or not ((0 <= array) & (array < n)).all():
        raise InvalidActionError(
            f"actions {actions!r} are not {num_envs} signal indices: pass an integer array of "
            f"shape ({num_envs},) with values in 0..{n - 1}"
        )
    return array.astype(np.int64)
