"""Table env steps per second: a single env, a SyncVectorEnv of single envs and the native
vector env, against raw numpy indexing of the same table (the limit), in one run.

The table is recorded first from the scripted loopback Receiver (300 GSM8K test questions x
the 10 default signals). Prints a markdown table.

    python benchmarks/table_env_throughput.py [--num-envs 64] [--seconds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import persuasion_gym  # noqa: F401
from persuasion_gym.receivers import OpenAIReceiver
from persuasion_gym.signals import MATH_SIGNALS
from persuasion_gym.tables import load_table, record
from persuasion_gym.tasks import GSM8KTask
from persuasion_gym.testing import ScriptedChatServer


def rate(run_once, episodes_per_call: int, seconds: float) -> float:
    """Episodes per second of ``run_once`` over about ``seconds`` of wall time."""
    run_once()  # warm-up
    calls, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        run_once()
        calls += 1
    return calls * episodes_per_call / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    n = args.num_envs

    task = GSM8KTask()
    dataset = task.load("test", max_items=args.items)
    with tempfile.TemporaryDirectory() as tmp, ScriptedChatServer(lambda m: f"The answer is {len(m[-1]['content']) % 7}.") as server:
        receiver = OpenAIReceiver(base_url=server.url, cache=Path(tmp) / "cache.sqlite", max_concurrency=32)
        path = Path(tmp) / "table.npz"
        record(task, receiver, dataset, list(MATH_SIGNALS), out=path, progress=False)
        kwargs = dict(table=str(path), featurizer="hashed")

        single = gym.make("Persuasion-Table-v0", **kwargs)
        single.reset(seed=0)
        single_actions = np.random.default_rng(0).integers(len(MATH_SIGNALS), size=1 << 16)
        counter = iter(range(1 << 62))

        def single_step():
            single.reset()
            single.step(int(single_actions[next(counter) % len(single_actions)]))

        sync = gym.make_vec("Persuasion-Table-v0", num_envs=n, vectorization_mode="sync", **kwargs)
        sync.reset(seed=0)
        native = gym.make_vec("Persuasion-Table-v0", num_envs=n, **kwargs)
        native.reset(seed=0)
        batch_actions = np.random.default_rng(1).integers(len(MATH_SIGNALS), size=n)
        scores = load_table(path).scores
        rng = np.random.default_rng(2)

        def raw():
            scores[rng.integers(scores.shape[0], size=n), rng.integers(scores.shape[1], size=n), 0]

        rows = [
            ("single env (gym.make), reset + step", rate(single_step, 1, args.seconds)),
            (f"SyncVectorEnv of {n} single envs", rate(lambda: sync.step(batch_actions), n, args.seconds)),
            (f"native vector env, {n} envs (gym.make_vec)", rate(lambda: native.step(batch_actions), n, args.seconds)),
            (f"raw numpy indexing, {n} cells at a time (the limit)", rate(raw, n, args.seconds)),
        ]
    limit = rows[-1][1]
    print(f"Table env throughput, {args.items} items x {len(MATH_SIGNALS)} signals, hashed features\n")
    print("| how | episodes/s | share of the numpy limit | vs single env |")
    print("| --- | ---: | ---: | ---: |")
    for name, value in rows:
        print(f"| {name} | {value:,.0f} | {value / limit:.4f} | {value / rows[0][1]:.1f}x |")


if __name__ == "__main__":
    main()
