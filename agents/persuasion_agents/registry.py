"""The signaling policies by name, as ``bench``, ``train`` and ``compare`` take them: the
registry, ``fixed-K``, the text policies (which take options), and each one's options in a
benchmark setting."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
from gymnasium import spaces

from persuasion_agents.bandits import UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
from persuasion_agents.baselines import BestFixed, FixedSignal, NoSignal, Oracle, UniformRandom
from persuasion_agents.policy import Policy
from persuasion_agents.rllib_ppo import RLlibPPOPolicy
from persuasion_agents.sb3_policies import SB3Policy
from persuasion_gym.errors import ConfigError

if TYPE_CHECKING:
    from persuasion_agents.benchmark import Setting

POLICIES: dict[str, Callable[[], Policy]] = {
    "none": NoSignal,
    "random": UniformRandom,
    "best-fixed": BestFixed,
    "oracle": Oracle,
    "epsilon-greedy": EpsilonGreedy,
    "ucb": UCB1,
    "thompson": ThompsonSampling,
    "linucb": LinUCB,
    "ppo": lambda: SB3Policy("ppo"),
    "a2c": lambda: SB3Policy("a2c"),
    "dqn": lambda: SB3Policy("dqn"),
    "rllib-ppo": RLlibPPOPolicy,  # RLlib on a Ray cluster ([ray] extra)
}

# Policies that write their signals in words (not registry entries: they take options).
TEXT_POLICIES = ("lm-advisor", "gepa", "prompted-advisor")

# Their greedy actions never draw from the seeded rng, so the seed does not change their runs.
SEEDLESS = (NoSignal, FixedSignal, Oracle, BestFixed)


def make_policy(name: str, options: dict[str, Any] | None = None) -> Policy:
    """A policy by name: the registry's, ``fixed-K`` for signal K, or ``lm-advisor`` (options:
    ``advisor``, a source or trained directory; ``training``, an ``AdvisorTraining``; ``out``).
    ``options`` are the policy's keyword arguments (``rllib-ppo``: ``num_env_runners``, ...)."""
    fixed = re.fullmatch(r"fixed-(\d+)", name)
    if fixed:
        return FixedSignal(int(fixed.group(1)))
    if name == "lm-advisor":
        from persuasion_agents.lm_advisor.policy import LMAdvisorPolicy

        return LMAdvisorPolicy(**(options or {}))
    if name == "gepa":
        from persuasion_agents.gepa_search import GEPAPolicy

        return GEPAPolicy(**(options or {}))
    if name == "prompted-advisor":
        from persuasion_agents.prompted_advisor import PromptedAdvisor

        return PromptedAdvisor(**(options or {}))
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}: use one of {', '.join((*POLICIES, *TEXT_POLICIES))}, or fixed-K")
    return POLICIES[name](**(options or {}))


def options_for(name: str, setting: Setting, policy_options: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A policy's options in a setting: what was given, and for the text policies that ask a
    model of their own, that model (default: the setting's Receiver, a large model advising
    itself)."""
    options = dict((policy_options or {}).get(name) or {})
    if name == "gepa" and options.get("reflection_lm") is None:
        options["reflection_lm"] = setting.train_receiver or setting.receiver
    if name == "prompted-advisor" and options.get("advisor_lm") is None:
        options["advisor_lm"] = setting.receiver
    return options


def policy_names(policies: Sequence[str], settings: Sequence[Setting], eval_envs: Sequence[gym.Env]) -> list[str]:
    """The policy names, stripped and checked against every setting's env before any run
    starts, so a bad one does not fail the benchmark after the others have run."""
    names = [name.strip() for name in policies if name.strip()]
    if not names:
        raise ConfigError(f"--policies names no policy: use some of {', '.join((*POLICIES, *TEXT_POLICIES))}, fixed-K")
    for setting, env in zip(settings, eval_envs, strict=True):
        n = int(cast(spaces.Discrete, env.action_space).n)
        signals = f"fixed-0..fixed-{n - 1} (the env's {n} signals)"
        for name in names:
            fixed = re.fullmatch(r"fixed-(\d+)", name)
            if fixed and int(fixed.group(1)) >= n:
                raise ConfigError(f"--policies: {name} asks for signal {fixed.group(1)}, but {setting.env_id} with "
                                  f"{setting.receiver} has {n} signals: use {signals}")
            if not fixed and name not in TEXT_POLICIES and name not in POLICIES:
                raise ConfigError(f"--policies: unknown policy {name!r}: use one of "
                                  f"{', '.join((*POLICIES, *TEXT_POLICIES))}, or {signals}")
    return names
