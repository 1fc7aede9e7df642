"""Advisor policies and their training entry points (built on persuasion_gym's envs)."""

from agents.evaluation import accuracy, baseline_actions
from agents.ppo import greedy_actions, train_ppo

__all__ = ["accuracy", "baseline_actions", "greedy_actions", "train_ppo"]
