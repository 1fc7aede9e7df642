"""Protocols: what the Receiver sees in context when the Advisor sends a signal.

- ``direct``: the signal text itself (the default).
- ``none``: nothing; the question alone (the no-signal baseline, whatever the action).

The Bayesian protocols (``posterior``, ``prior``) of ``shared/design/protocols.md`` build on
the same interface: a context chosen from the signal, the item and the env's random generator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from persuasion_gym.errors import ConfigError


class Protocol(ABC):
    name: str

    @abstractmethod
    def context(self, signal: str, item_index: int, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
        """The context text for the Receiver, and what to add to the step's ``info``."""


class DirectProtocol(Protocol):
    name = "direct"

    def context(self, signal: str, item_index: int, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
        return signal, {}


class NoContextProtocol(Protocol):
    name = "none"

    def context(self, signal: str, item_index: int, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
        return "", {}


PROTOCOLS: dict[str, type[Protocol]] = {"direct": DirectProtocol, "none": NoContextProtocol}


def make_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]()
    except (KeyError, TypeError):
        raise ConfigError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}") from None
