"""Training loops: online learners (bandits) on the native vector env, and learning curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from persuasion_gym.envs import PersuasionEnv, PersuasionVectorEnv

if TYPE_CHECKING:
    from persuasion_agents.policy import Policy


def vectorize(env, n_envs: int) -> PersuasionVectorEnv:
    """The native vector env over a single env's items, Receiver (or table) and protocol."""
    core: PersuasionEnv = env.unwrapped
    return PersuasionVectorEnv(core, n_envs)


def train_online(
    policy: Policy, env, timesteps: int, n_envs: int = 16, seed: int = 0, progress: bool = False,
    log_every: int = 256,
) -> list[tuple[int, float]]:
    """Run ``policy`` on ``timesteps`` episodes, updating it after each batch; returns the
    learning curve: (episodes so far, mean reward of the last ``log_every`` episodes)."""
    venv = vectorize(env, n_envs)
    observations, info = venv.reset(seed=seed)
    curve, recent, done = [], [], 0
    with tqdm(total=timesteps, desc=f"training {policy.name}", unit="ep", disable=not progress) as bar:
        while done < timesteps:
            actions = np.asarray(policy.act(observations, info), dtype=np.int64)
            next_observations, rewards, _, _, step_info = venv.step(actions)
            policy.update(observations, actions, rewards, step_info)
            recent.extend(rewards.tolist())
            done += n_envs
            if len(recent) >= log_every:
                curve.append((done, float(np.mean(recent))))
                recent = []
            observations, info = next_observations, {"item_index": step_info["next_item_index"]}
            bar.update(n_envs)
    return curve
