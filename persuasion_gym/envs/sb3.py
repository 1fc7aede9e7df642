"""Stable-Baselines3 ``VecEnv`` adapter for the native vector env, so that
``PPO("MlpPolicy", as_sb3_vec_env(venv))`` trains on N batched episodes per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from persuasion_gym.envs.vector import PersuasionVectorEnv


class SB3VecEnv(VecEnv):
    """A ``PersuasionVectorEnv`` behind SB3's VecEnv API (terminal observations in
    ``infos[i]["terminal_observation"]``, as SB3 expects of same-step resets)."""

    def __init__(self, venv: PersuasionVectorEnv):
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self):
        seed = self._seeds[0]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64)

    def step_wait(self):
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        final = info["final_obs"]
        infos = [{"terminal_observation": final[i], "TimeLimit.truncated": False,
                  "item_index": int(info["item_index"][i])} for i in range(self.num_envs)]
        return obs, rewards.astype(np.float32), terminated | truncated, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv.env, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        return [getattr(self.venv.env, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def as_sb3_vec_env(venv: PersuasionVectorEnv) -> SB3VecEnv:
    return SB3VecEnv(venv)
