"""Training runs into a directory, as ``persuasion-gym train`` makes them: any trainable policy
fitted on a persuasion env (``Policy.fit``), with what each kind keeps of its run (SB3:
checkpoints, held-out evaluations, TensorBoard logs, ``model.zip``; RLlib: its checkpoint;
bandits: their statistics), ``--resume`` where a kind can continue, and ``training.json``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.environments import make_env
from persuasion_agents.policy import env_sizes
from persuasion_agents.registry import POLICIES
from persuasion_gym.envs import PersuasionEnv

SB3_ALGOS = ("ppo", "a2c", "dqn")


def latest_checkpoint(directory: Path, algo: str) -> Path | None:
    found = [(int(m.group(1)), p) for p in directory.glob(f"{algo}_*_steps.zip")
             if (m := re.search(r"_(\d+)_steps\.zip$", p.name))]
    return max(found)[1] if found else None


def train(
    env_id: str, receiver: str, algo: str, timesteps: int, out: str | Path, split: str = "train",
    n_items: int | None = None, eval_receiver: str | None = None, eval_split: str = "test",
    eval_items: int | None = 100, eval_freq: int = 5_000, n_envs: int = 16, resume: bool = False,
    seed: int = 0, featurizer: str = "auto", progress: bool = True, num_env_runners: int = 2,
) -> dict[str, Any]:
    """Train ``algo`` and write the model, checkpoints, TensorBoard logs and evaluations to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(env_id, receiver, split, n_items, featurizer)
    if algo == "rllib-ppo":
        return train_rllib(env, timesteps, out, n_envs, num_env_runners, eval_freq, resume, seed, progress)
    if algo in SB3_ALGOS:
        def eval_env() -> gym.Env:
            return make_env(env_id, eval_receiver or receiver, eval_split, eval_items, featurizer)

        return train_sb3(env, eval_env, algo, timesteps, out, n_envs, eval_freq, resume, seed, progress)
    if algo not in POLICIES or algo in ("none", "random", "oracle", "best-fixed"):
        trainable = (*SB3_ALGOS, "rllib-ppo", "epsilon-greedy", "ucb", "thompson", "linucb")
        raise ValueError(f"cannot train {algo!r}: use one of {', '.join(trainable)}")
    if resume:
        raise ValueError("--resume continues SB3 checkpoints; bandits train in one go")
    policy = POLICIES[algo]()
    policy.bind(*env_sizes(env), seed)
    policy.n_envs = n_envs
    policy.fit(env, timesteps, seed=seed, progress=progress)
    arrays = {k: v for k, v in vars(policy).items() if isinstance(v, np.ndarray)}
    # mypy matches **arrays against savez's allow_pickle: bool as well as its **kwds.
    np.savez(out / "policy.npz", **arrays)  # type: ignore[arg-type]
    meta = {"algo": algo, "timesteps": timesteps, "curve": list(policy.curve),
            "provenance": cast(PersuasionEnv, env.unwrapped).provenance()}
    (out / "training.json").write_text(json.dumps(meta, indent=2))
    return meta


def train_sb3(env: gym.Env, eval_env: Callable[[], gym.Env], algo: str, timesteps: int, out: Path, n_envs: int,
              eval_freq: int, resume: bool, seed: int, progress: bool) -> dict[str, Any]:
    """An SB3 algorithm to ``timesteps`` steps in all, with a checkpoint and a held-out
    evaluation (on ``eval_env()``, its best model kept) every ``eval_freq`` steps; ``resume``
    continues from the last checkpoint."""
    from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

    from persuasion_agents.sb3_policies import SB3Policy, algorithm, sb3_vec_env

    policy = SB3Policy(algo, n_envs=n_envs, tensorboard_log=str(out / "tensorboard"))
    policy.bind(*env_sizes(env), seed)
    checkpoint = latest_checkpoint(out / "checkpoints", algo) if resume else None
    if checkpoint is not None:
        policy.model = algorithm(algo).load(checkpoint, env=sb3_vec_env(env, n_envs),
                                            tensorboard_log=str(out / "tensorboard"))
    else:
        if resume:
            print(f"no checkpoint in {out / 'checkpoints'}: starting afresh")
        policy.model = policy.make_model(env, seed)
    evaluation = eval_env()
    every = max(eval_freq // n_envs, 1)
    policy.callbacks = [
        CheckpointCallback(every, str(out / "checkpoints"), name_prefix=algo),
        EvalCallback(sb3_vec_env(evaluation, n_envs),
                     n_eval_episodes=len(cast(PersuasionEnv, evaluation.unwrapped).dataset), eval_freq=every,
                     log_path=str(out / "eval"), best_model_save_path=str(out / "best"), deterministic=True,
                     verbose=0),
    ]
    policy.fit(env, max(timesteps - policy.model.num_timesteps, 0), seed=seed, progress=progress)
    policy.save(out / "model.zip")
    meta = {"algo": algo, "timesteps": int(policy.model.num_timesteps),
            "resumed_from": str(checkpoint) if checkpoint else None,
            "curve": policy.curve, "provenance": cast(PersuasionEnv, env.unwrapped).provenance()}
    (out / "training.json").write_text(json.dumps(meta, indent=2))
    return meta


def train_rllib(env: gym.Env, timesteps: int, out: Path, n_envs: int, num_env_runners: int, checkpoint_every: int,
                resume: bool, seed: int, progress: bool) -> dict[str, Any]:
    """RLlib PPO on ``num_env_runners`` runners; an RLlib checkpoint in ``out/checkpoint`` every
    ``checkpoint_every`` steps and at the end (``--resume`` continues it)."""
    from persuasion_agents.rllib_ppo import RLlibPPOPolicy

    policy = RLlibPPOPolicy(num_env_runners=num_env_runners, num_envs_per_env_runner=n_envs)
    policy.bind(*env_sizes(env), seed)
    checkpoint = out / "checkpoint"
    resumed = resume and checkpoint.is_dir()
    if resumed:
        policy.restore(checkpoint)
        if (policy.num_env_runners, policy.num_envs_per_env_runner) != (num_env_runners, n_envs):
            print(f"resuming with the checkpoint's {policy.num_env_runners} env runners x "
                  f"{policy.num_envs_per_env_runner} envs (not --num-env-runners {num_env_runners} --n-envs {n_envs})")
    elif resume:
        print(f"no checkpoint in {checkpoint}: starting afresh")
    try:
        while policy.steps < timesteps:
            policy.fit(env, min(checkpoint_every, timesteps - policy.steps), seed=seed, progress=progress)
            policy.save(checkpoint)
    finally:
        policy.close()
    meta = {"algo": "rllib-ppo", "timesteps": policy.steps, "resumed_from": str(checkpoint) if resumed else None,
            "num_env_runners": policy.num_env_runners, "num_envs_per_env_runner": policy.num_envs_per_env_runner,
            "checkpoint": str(checkpoint),
            "curve": policy.curve, "provenance": cast(PersuasionEnv, env.unwrapped).provenance()}
    (out / "training.json").write_text(json.dumps(meta, indent=2))
    return meta
