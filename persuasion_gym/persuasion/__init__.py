"""The persuasion core: protocols and the scored exchange with the Receiver."""

from persuasion_gym.persuasion.exchange import Outcome, exchange
from persuasion_gym.persuasion.protocols import PROTOCOLS, Protocol, make_protocol

__all__ = ["PROTOCOLS", "Outcome", "Protocol", "exchange", "make_protocol"]
