"""Classic persuasion games: LP solve time against the number of states and actions (how it
grows), and env steps per second, in one run.

    python benchmarks/classic_games.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import persuasion_gym  # noqa: F401
from persuasion_gym.games import random_game, solve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print("LP solve time (HiGHS via scipy), median of", args.repeats, "random games per size\n")
    print("| states | actions | LP variables | obedience constraints | median ms | ratio to 2x2 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for m, n in [(2, 2), (4, 4), (8, 8), (16, 16), (32, 32), (64, 16), (16, 64)]:
        times = []
        for seed in range(args.repeats):
            game = random_game(m, n, seed)
            began = time.perf_counter()
            solve(game)
            times.append(time.perf_counter() - began)
        median = float(np.median(times)) * 1000
        base = base or median
        print(f"| {m} | {n} | {m * n} | {n * (n - 1)} | {median:.2f} | {median / base:.1f} |")

    print("\nEnv steps per second (reset + step, signal mode)\n")
    print("| env | steps/s |")
    print("| --- | ---: |")
    for env_id, kwargs in [("Persuasion-Prosecutor-v0", {}), ("Persuasion-Classic-v0", {"n_states": 8, "n_actions": 8})]:
        env = gym.make(env_id, **kwargs)
        env.reset(seed=0)
        actions = np.random.default_rng(0).integers(env.action_space.n, size=20_000)
        began, steps = time.perf_counter(), 0
        while time.perf_counter() - began < 2.0:
            env.step(int(actions[steps % len(actions)]))
            env.reset()
            steps += 1
        print(f"| {env_id} {kwargs or ''} | {steps / (time.perf_counter() - began):,.0f} |")


if __name__ == "__main__":
    main()
