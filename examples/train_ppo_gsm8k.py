"""Train a PPO Advisor on Persuasion-GSM8K-v0 and compare it with the no-signal and
random-signal baselines on held-out test questions.

    python examples/train_ppo_gsm8k.py --receiver openai:MODEL@http://127.0.0.1:8000/v1

Without --receiver, the Receiver comes from PERSUASION_GYM_RECEIVER or OPENAI_BASE_URL /
OPENAI_API_KEY (see the README). Every Receiver response is cached, so a rerun is free.
"""

from __future__ import annotations

import argparse
import sys

import gymnasium as gym

import persuasion_gym  # noqa: F401  (registers the envs)
from agents import accuracy, baseline_actions, greedy_actions, train_ppo
from persuasion_gym.errors import PersuasionGymError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: auto)")
    parser.add_argument("--train-items", type=int, default=200, help="GSM8K train questions to train on")
    parser.add_argument("--test-items", type=int, default=100, help="GSM8K test questions to evaluate on")
    parser.add_argument("--timesteps", type=int, default=4000, help="PPO training steps (Receiver episodes)")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"])
    parser.add_argument("--data-path", default=None, help="GSM8K directory or .jsonl (default: PERSUASION_GYM_DATA_DIR or the hub)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    kwargs = dict(receiver=args.receiver, featurizer=args.featurizer, data_path=args.data_path)
    try:
        test_env = gym.make("Persuasion-GSM8K-v0", split="test", max_items=args.test_items, **kwargs)
        receiver = test_env.unwrapped.receiver
        print(f"Receiver: {receiver!r}")
        # One Receiver per process: the train envs share the test env's.
        kwargs["receiver"] = receiver
        model = train_ppo(
            lambda: gym.make("Persuasion-GSM8K-v0", split="train", max_items=args.train_items, **kwargs),
            total_timesteps=args.timesteps, n_envs=args.n_envs, seed=args.seed, progress_bar=True,
        )
        results = {name: accuracy(test_env, actions) for name, actions in baseline_actions(test_env, args.seed).items()}
        results["PPO Advisor"] = accuracy(test_env, greedy_actions(model, test_env.unwrapped.features))
    except PersuasionGymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"\nAccuracy on {args.test_items} held-out GSM8K test questions:")
    for name, value in results.items():
        print(f"  {name:<14} {value:6.3f}")
    stats = receiver.stats
    print(f"Receiver calls: {stats.calls} (cache hits: {stats.cache_hits}), "
          f"tokens: {stats.prompt_tokens + stats.completion_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
