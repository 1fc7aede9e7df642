"""The index Advisor trained by RLlib's PPO, for when one machine is not enough.

Any persuasion env trains on many RLlib env runners across a Ray cluster. The env is rebuilt
on each runner from its id and ``gym.make`` arguments through RLlib's env registry (the
Gymnasium registry of this process does not reach Ray's workers). Each runner steps the
native vector env, so on a live Receiver its N envs make one concurrent Receiver batch per
step; on a recorded table a step is numpy indexing. The trained RLModule acts greedily
behind the ``Policy`` protocol, so ``bench`` compares it with the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from persuasion_agents.policy import Policy

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv

ENV_NAME = "persuasion_gym"
PROGRESS_FILE = "persuasion_gym.json"  # steps trained and the learning curve, beside RLlib's files
MODULE_PATH = ("learner_group", "learner", "rl_module", "default_policy")
# One-step episodes: nothing to bootstrap (gamma = 0, lambda = 1), a small network, some entropy.
PPO_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "gamma": 0.0, "lambda_": 1.0, "entropy_coeff": 0.01,
                                "num_epochs": 10, "minibatch_size": 256, "use_kl_loss": False}


def persuasion_env(config: dict[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """RLlib's env creator: ``gym.make(config["env_id"], **rest)``, or, when RLlib asks for
    ``num_envs``, the native vector env in next-step autoreset (RLlib's convention)."""
    import persuasion_gym  # noqa: F401  (registers the envs in this worker)

    kwargs = dict(config)
    env_id, num_envs = kwargs.pop("env_id"), kwargs.pop("num_envs", None)
    if num_envs is None:
        return gym.make(env_id, **kwargs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="next-step", **kwargs)


def env_config(env: gym.Env) -> dict[str, Any]:
    """The recipe of a ``gym.make``-built env: its id and arguments (Receivers travel pickled)."""
    if env.spec is None:
        raise ValueError("RLlib rebuilds the env on its workers: make it with gym.make(ID, ...)")
    return {"env_id": env.spec.id, **env.spec.kwargs}


class RLlibPPOPolicy(Policy):
    """RLlib PPO on ``num_env_runners`` runners of ``num_envs_per_env_runner`` envs each.

    ``address``: the Ray cluster (default ``$RAY_ADDRESS``, else Ray starts here).
    ``sample_timeout_s``: how long the algorithm waits for a runner's samples. On a live
    Receiver it waits as long as the Receiver takes (None): RLlib would otherwise discard
    samples it has paid Receiver calls for. Other keyword arguments go to PPO's ``training``.
    """

    name = "rllib-ppo"
    needs_training = True

    def __init__(self, num_env_runners: int = 2, num_envs_per_env_runner: int = 16, address: str | None = None,
                 sample_timeout_s: float | None = None, hidden: tuple[int, ...] = (64, 64), **training: Any):
        self.num_env_runners, self.num_envs_per_env_runner = num_env_runners, num_envs_per_env_runner
        self.address, self.sample_timeout_s, self.hidden = address, sample_timeout_s, hidden
        self.training = {**PPO_DEFAULTS, **training}
        self.algo: Any = None
        self.module: Any = None
        self.steps = 0  # env steps trained, over every ``fit`` and across a restore
        self.curve: list[tuple[int, float]] = []

    def build(self, env: gym.Env, seed: int = 0) -> Any:
        """The RLlib ``Algorithm`` for ``env`` (registered under RLlib's env registry)."""
        from ray.tune.registry import register_env

        from persuasion_gym.cluster import connect

        connect(self.address)
        register_env(ENV_NAME, persuasion_env)
        return self.algorithm_config(env, seed).build_algo()

    def algorithm_config(self, env: gym.Env, seed: int = 0) -> Any:
        """The ``PPOConfig`` ``build`` builds (no Ray, no runners: cheap to inspect)."""
        from ray.rllib.algorithms.ppo import PPOConfig
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

        live = cast("PersuasionEnv", env.unwrapped).table is None
        timeout = self.sample_timeout_s if self.sample_timeout_s is not None else (None if live else 300.0)
        per_step = max(self.num_env_runners, 1) * self.num_envs_per_env_runner
        return (
            PPOConfig()
            .environment(ENV_NAME, env_config=env_config(env))
            .env_runners(num_env_runners=self.num_env_runners, num_envs_per_env_runner=self.num_envs_per_env_runner,
                         gym_env_vectorize_mode="vector_entry_point", sample_timeout_s=timeout,
                         rollout_fragment_length="auto")
            .training(train_batch_size_per_learner=max(8 * per_step, 1024), **self.training)
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(self.hidden), vf_share_layers=False))
            .debugging(seed=int(seed), log_level="ERROR")
        )

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """Train for ``timesteps`` more env steps, at least (a step is one scored episode; RLlib
        trains in whole iterations)."""
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN, NUM_ENV_STEPS_SAMPLED_LIFETIME

        if self.algo is None:
            self.algo = self.build(env, int(self.rng.integers(2**31)) if seed is None else seed)
        target = self.steps + timesteps
        with tqdm(total=target, initial=self.steps, desc="training rllib-ppo", unit="step",
                  disable=not progress) as bar:
            while self.steps < target:
                runners = self.algo.train().get(ENV_RUNNER_RESULTS, {})
                sampled = int(runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, self.steps))
                if sampled <= self.steps:
                    raise RuntimeError("RLlib sampled no new steps in a training iteration: "
                                       "check the env runners' logs")
                reward = float(runners.get(EPISODE_RETURN_MEAN, np.nan))
                self.steps = sampled
                self.curve.append((sampled, reward))
                bar.set_postfix(reward=f"{reward:.3f}", refresh=False)
                bar.update(min(sampled, target) - bar.n)
        self.module = self.algo.get_module()

    def _logits(self, observations: np.ndarray) -> np.ndarray:
        import torch
        from ray.rllib.core.columns import Columns

        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: torch.as_tensor(np.asarray(observations, np.float32))})
        return out[Columns.ACTION_DIST_INPUTS].numpy()

    def greedy(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return self._logits(observations).argmax(axis=1).astype(np.int64)

    def act(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        logits = self._logits(observations)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return np.array([self.rng.choice(len(p), p=p) for p in probabilities], dtype=np.int64)

    def save(self, path: str | Path) -> Path:
        """An RLlib checkpoint (``restore`` resumes training from it; ``load`` acts from it)."""
        path = Path(self.algo.save_to_path(str(Path(path).resolve())))
        (path / PROGRESS_FILE).write_text(json.dumps({"steps": self.steps, "curve": self.curve}))
        return path

    def restore(self, path: str | Path) -> None:
        """Continue training from a checkpoint of ``save`` (its env and settings included)."""
        from ray.rllib.algorithms.algorithm import Algorithm
        from ray.tune.registry import register_env

        from persuasion_gym.cluster import connect

        connect(self.address)
        register_env(ENV_NAME, persuasion_env)
        path = Path(path).resolve()
        self.algo = Algorithm.from_checkpoint(str(path))
        self.module = self.algo.get_module()
        # The checkpoint's config runs: its runners and envs, not the ones this policy was made with.
        self.num_env_runners = int(self.algo.config.num_env_runners)
        self.num_envs_per_env_runner = int(self.algo.config.num_envs_per_env_runner)
        progress = json.loads((path / PROGRESS_FILE).read_text())
        self.steps, self.curve = progress["steps"], [tuple(point) for point in progress["curve"]]

    @classmethod
    def load(cls, path: str | Path) -> RLlibPPOPolicy:
        """The policy of a checkpoint, for acting (no Ray needed)."""
        from ray.rllib.core.rl_module.rl_module import RLModule

        policy = cls()
        policy.module = RLModule.from_checkpoint(str(Path(path).resolve().joinpath(*MODULE_PATH)))
        policy.rng = np.random.default_rng(0)
        return policy

    def close(self) -> None:
        """Stop the env runners (the trained module stays usable)."""
        if self.algo is not None:
            self.algo.stop()
            self.algo = None
