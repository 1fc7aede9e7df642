"""Advisor policies and their training entry points (built on persuasion_gym's envs)."""

from persuasion_agents.evaluation import accuracies, accuracy, baseline_actions, best_fixed_signal, reward_table
from persuasion_agents.sb3_policies import greedy_actions, train_ppo

__all__ = ["accuracies", "accuracy", "baseline_actions", "best_fixed_signal", "reward_table", "greedy_actions",
           "train_ppo"]
