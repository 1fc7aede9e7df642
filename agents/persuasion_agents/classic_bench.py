"""Benchmarking Advisors on the classic persuasion games: regret against the LP optimum.

Each policy plays T rounds online on one env (the Receiver learning the Advisor's scheme as
it goes); the cumulative regret is plotted against T on log-log axes beside the
O(sqrt(T log T)) reference of the paper's bound.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.policy import env_sizes
from persuasion_agents.registry import POLICIES
from persuasion_agents.sb3_policies import SB3Policy
from persuasion_gym.envs import ClassicPersuasionEnv

CLASSIC_ENVS = ("Persuasion-Prosecutor-v0", "Persuasion-Classic-v0")


def regret_curve(env_id: str, policy_name: str, timesteps: int, seed: int = 0, **env_kwargs: Any) -> np.ndarray:
    """Cumulative regret after each of ``timesteps`` rounds of ``policy_name`` on a fresh env."""
    env = gym.make(env_id, **env_kwargs)
    policy = POLICIES[policy_name]()
    policy.bind(*env_sizes(env), seed)
    regret = np.zeros(timesteps)
    if isinstance(policy, SB3Policy):
        from stable_baselines3.common.callbacks import BaseCallback

        class Record(BaseCallback):
            def _on_step(self) -> bool:
                t = self.num_timesteps - 1
                if t < timesteps:
                    regret[t] = self.locals["infos"][0]["regret"]
                return True

        from stable_baselines3.common.env_util import make_vec_env

        from persuasion_agents.sb3_policies import DEFAULTS, algorithm

        venv = make_vec_env(lambda: env, n_envs=1)
        venv.seed(seed)
        options = {**DEFAULTS[policy.algo], "n_steps": 32} if policy.algo != "dqn" else DEFAULTS["dqn"]
        if policy.algo == "ppo":
            options["batch_size"] = 32
        algorithm(policy.algo)("MlpPolicy", venv, seed=seed, verbose=0, **options).learn(timesteps, callback=Record())
        return regret
    observation, info = env.reset(seed=seed)
    for t in range(timesteps):
        action = int(policy.act(observation[None], {})[0])
        next_observation, reward, _, _, step_info = env.step(action)
        policy.update(observation[None], np.array([action]), np.array([reward]), {})
        regret[t] = step_info["regret"]
        observation, info = env.reset()
    return regret


def run_classic_benchmark(env_ids: list[str], policies: list[str], timesteps: int, out: str | Path,
                          seed: int = 0) -> list[dict[str, Any]]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    curves, rows = {}, []
    for env_id in env_ids:
        env = cast(ClassicPersuasionEnv, gym.make(env_id).unwrapped)
        for name in policies:
            curve = regret_curve(env_id, name, timesteps, seed)
            curves[(env_id, name)] = curve
            rows.append({"env": env_id, "policy": name, "rounds": timesteps, "optimal_value": env.optimal_value,
                         "mean_reward": env.optimal_value - curve[-1] / timesteps, "regret": float(curve[-1]),
                         "regret_over_sqrt_T_log_T": float(curve[-1] / np.sqrt(timesteps * np.log(timesteps)))})
    (out / "classic_results.json").write_text(json.dumps(rows, indent=2))
    lines = ["| env | policy | rounds T | optimal value | mean reward | regret R_T | R_T / sqrt(T log T) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['env']} | {r['policy']} | {r['rounds']} | {r['optimal_value']:.3f} | {r['mean_reward']:.3f} | "
              f"{r['regret']:.1f} | {r['regret_over_sqrt_T_log_T']:.3f} |" for r in rows]
    (out / "classic_results.md").write_text("\n".join(lines) + "\n")
    plot_regret(curves, out / "regret.png")
    return rows


def plot_regret(curves: dict[tuple[str, str], np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = sorted({env for env, _ in curves})
    fig, axes = plt.subplots(1, len(env_ids), figsize=(6 * len(env_ids), 4.5), squeeze=False)
    for ax, env_id in zip(axes[0], env_ids, strict=True):
        t = None
        for (env, name), curve in curves.items():
            if env == env_id:
                t = np.arange(1, len(curve) + 1)
                ax.loglog(t, np.maximum(curve, 1e-3), label=name)
        assert t is not None  # every env id has a curve
        reference = np.sqrt(t * np.log(np.maximum(t, 2)))
        ax.loglog(t, reference, "k--", label="sqrt(T log T)")
        ax.set_xlabel("rounds T")
        ax.set_ylabel("cumulative regret vs the LP optimum")
        ax.set_title(env_id)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
