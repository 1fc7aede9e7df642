"""The persuasion core: Bayesian-persuasion math, protocols, and the scored exchange."""

from persuasion_gym.persuasion import bayes
from persuasion_gym.persuasion.exchange import Outcome, exchange
from persuasion_gym.persuasion.protocols import (
    PROTOCOLS,
    Choice,
    PosteriorProtocol,
    Protocol,
    TextPosteriorProtocol,
    make_protocol,
)
from persuasion_gym.persuasion.scheme import TextScheme

__all__ = ["PROTOCOLS", "Choice", "Outcome", "PosteriorProtocol", "Protocol", "TextPosteriorProtocol", "TextScheme",
           "bayes", "exchange", "make_protocol"]
