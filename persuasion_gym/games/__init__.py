"""Classic finite Bayesian persuasion games and their exact optimum (no language model)."""

from persuasion_gym.games.game import Game, prosecutor, random_game
from persuasion_gym.games.solver import Solution, full_disclosure_value, no_disclosure_value, solve

__all__ = ["Game", "Solution", "full_disclosure_value", "no_disclosure_value", "prosecutor", "random_game", "solve"]
