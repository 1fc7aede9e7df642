"""The persuasion core: Bayesian-persuasion math, protocols, and the scored exchange."""

from persuasion_gym.persuasion import bayes
from persuasion_gym.persuasion.exchange import Outcome, exchange
from persuasion_gym.persuasion.protocols import PROTOCOLS, PosteriorProtocol, Protocol, make_protocol

__all__ = ["PROTOCOLS", "Outcome", "PosteriorProtocol", "Protocol", "bayes", "exchange", "make_protocol"]
