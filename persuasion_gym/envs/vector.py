"""The native vector env: N persuasion episodes per step, answered as one batch.

A live Receiver gets the N prompts as one concurrent batch; a recorded table is indexed with
numpy. Every episode lasts one step, so sub-envs reset in the same step (``AutoresetMode.
SAME_STEP``): ``step`` returns the next items' observations, with the finished ones in
``info["final_obs"]``. ``autoreset_mode="next_step"`` (what RLlib's env runners expect)
instead returns the finished observations and spends the following step on the reset: no
Receiver call, actions ignored, reward 0.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from persuasion_gym.envs.actions import check_index_batch, check_text_batch
from persuasion_gym.envs.batch import batch_info
from persuasion_gym.envs.gsm8k import GSM8KEnv
from persuasion_gym.envs.humaneval import HumanEvalEnv
from persuasion_gym.envs.math import MATHEnv
from persuasion_gym.envs.mbpp import MBPPEnv
from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.table import TableEnv
from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.errors import ConfigError


class PersuasionVectorEnv(VectorEnv):
    """``num_envs`` persuasion episodes at a time over one env's items, Receiver and protocol.

    Observations stack the single env's (a `(N, d)` float32 array, or a tuple of N texts);
    actions are an `(N,)` integer array, or N signal texts (a tuple, list or array of str)
    with `action_type="text"`: one concurrent Receiver batch either way. `info` holds
    per-episode arrays: `item_index`, `action`, `signal` (the texts sent), `information_index`
    (the context the Receiver saw, -1 for none), `correct`, `sample`, and for live Receivers
    `response`, `answer`, `total_tokens` (which answers came from the cache:
    `envs.env.last_outcomes`). Under the text `posterior` protocol,
    `reset` adds what the Advisor observes (`observed_index`, `observed_item`,
    `observed_known`), `step` the same for the next items (`next_observed_...`) and the
    Receiver's `posterior` beliefs.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: PersuasionEnv, num_envs: int,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP):
        self.env, self.num_envs = env, num_envs
        if num_envs < 1:
            raise ConfigError(f"num_envs={num_envs}: must be at least 1")
        # Gymnasium spells the modes "SameStep"/"NextStep"; "same-step", "next_step" are read too.
        modes = {m.value.lower(): m for m in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)}
        name = str(getattr(autoreset_mode, "value", autoreset_mode))
        mode = modes.get(name.lower().replace("-", "").replace("_", ""))
        if mode is None:
            raise ConfigError(f"autoreset_mode={autoreset_mode!r}: use 'same-step' or 'next-step'")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self._resetting = False  # next-step mode: the coming step only resets
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, num_envs)
        self.action_space = batch_space(env.action_space, num_envs)
        self.render_mode = None
        self._items: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:  # a fresh run, as the single env's seeded reset starts one
            self.env.start_afresh()
        items = (options or {}).get("item_indices")
        if items is None:
            items = self.np_random.integers(len(self.env.dataset), size=self.num_envs)
        self._items = np.asarray(items, dtype=np.int64)
        n_items = len(self.env.dataset)
        if self._items.shape != (self.num_envs,) or not ((0 <= self._items) & (self._items < n_items)).all():
            raise ConfigError(f"options['item_indices'] must be {self.num_envs} indices in 0..{n_items - 1}")
        self._resetting = False
        info = {"item_index": self._items.copy(), **self.env.observed_items(self._items, self.np_random)}
        return self._observations(self._items), info

    def step(self, actions):
        if self._items is None:
            raise ConfigError("call reset() before step()")
        if self._resetting:  # next-step autoreset: the episodes ended last step, this one starts the next
            self._resetting = False
            info: dict[str, Any] = {"item_index": self._items.copy(),
                                    **self.env.observed_items(self._items, self.np_random)}
            zeros = np.zeros(self.num_envs, dtype=bool)
            return self._observations(self._items), np.zeros(self.num_envs), zeros, zeros, info
        actions = self._check(actions)
        items = self._items
        # Checked above as one batch, so the env's per-action checks are skipped.
        batch = self.env.play_unchecked(items, actions, self.np_random)
        finished = self._observations(items)
        self._items = self.np_random.integers(len(self.env.dataset), size=self.num_envs)
        info = {
            **batch_info(batch, items, actions, self.env.signals, self.env.protocol.name),
            "final_obs": finished, "_final_obs": np.ones(self.num_envs, dtype=bool),
            "next_item_index": self._items.copy(),
            **{f"next_{k}": v for k, v in self.env.observed_items(self._items, self.np_random).items()},
        }
        ones = np.ones(self.num_envs, dtype=bool)
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            self._resetting = True
            del info["final_obs"], info["_final_obs"]
            return finished, batch.rewards.astype(np.float64), ones, ~ones, info
        return self._observations(self._items), batch.rewards.astype(np.float64), ones, ~ones, info

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()

    def _observations(self, items: np.ndarray):
        if self.env.features is not None:
            return self.env.features[items]
        return tuple(self.env.dataset.items[i].text for i in items)

    def _check(self, actions) -> np.ndarray:  # texts in an object array, or int64 indices
        if self.env.action_type == "text":
            return check_text_batch(actions, self.num_envs, cast(SignalText, self.single_action_space))
        n = int(cast(spaces.Discrete, self.single_action_space).n)
        return check_index_batch(actions, self.num_envs, n, self.env.table is not None)


def gsm8k_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    """``gym.make_vec("Persuasion-GSM8K-v0", num_envs=N, ...)`` (the vector entry point)."""
    return PersuasionVectorEnv(GSM8KEnv(**kwargs), num_envs, autoreset_mode)


def humaneval_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    """``gym.make_vec("Persuasion-HumanEval-v0", num_envs=N, ...)``: the N programs of a step
    run in parallel in the sandbox."""
    return PersuasionVectorEnv(HumanEvalEnv(**kwargs), num_envs, autoreset_mode)


def mbpp_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    return PersuasionVectorEnv(MBPPEnv(**kwargs), num_envs, autoreset_mode)


def math_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    return PersuasionVectorEnv(MATHEnv(**kwargs), num_envs, autoreset_mode)


def task_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    """The vector entry point of envs registered with ``persuasion_gym.register_env``."""
    return PersuasionVectorEnv(PersuasionEnv(**kwargs), num_envs, autoreset_mode)


def table_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step", **kwargs: Any) -> PersuasionVectorEnv:
    """``gym.make_vec("Persuasion-Table-v0", num_envs=N, table=PATH)``."""
    return PersuasionVectorEnv(TableEnv(**kwargs), num_envs, autoreset_mode)
