"""Text spaces: item texts as observations, signal texts as actions.

``ItemText`` is ``spaces.Text`` that refuses Gymnasium's shared memory: an async vector env
passes observations through shared memory by default, and Gymnasium's shared-memory path for
``Text`` loses the text (the main process reads back padding). This subclass turns that silent
corruption into an error that says the fix.
"""

from __future__ import annotations

from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory

from persuasion_gym.errors import ConfigError


class ItemText(spaces.Text):
    """A task item's text as the observation."""


@create_shared_memory.register(ItemText)
def _refuse_shared_memory(space: ItemText, n: int = 1, ctx=None):
    raise ConfigError(
        "text observations cannot go through shared memory: make the async vector env with "
        "vector_kwargs={'shared_memory': False} (gym.make_vec) or shared_memory=False (AsyncVectorEnv)"
    )


class SignalText(spaces.Text):
    """A signal written in words: the action space of ``action_type="text"``. Actions are not
    observations, so they never travel through shared memory."""
