"""Train a PPO Advisor on Persuasion-GSM8K-v0 and compare it, on held-out test questions, with
the no-signal, random-signal and best-fixed-signal baselines.

    python examples/train_ppo_gsm8k.py                        # the Receiver 'auto' finds
    python examples/train_ppo_gsm8k.py --receiver openai:MODEL@http://127.0.0.1:8000/v1

With nothing configured, 'auto' runs the embedded SmolLM2-135M offline on the CPU. The job
first asks the Receiver every signal on the training questions (one batched pass, which also
picks the best fixed signal), so PPO then trains on cached responses. Every response is cached:
a rerun costs no Receiver calls.
"""

from __future__ import annotations

import argparse
import logging
import sys

import gymnasium as gym

import persuasion_gym  # noqa: F401  (registers the envs)
from persuasion_agents import accuracies, baseline_actions, best_fixed_signal, greedy_actions, reward_table, train_ppo
from persuasion_gym.errors import PersuasionGymError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receiver", default="auto",
                        help="receiver spec, e.g. openai:MODEL@URL (default: %(default)s)")
    parser.add_argument("--train-items", type=int, default=24,
                        help="GSM8K train questions to train on (default: %(default)s)")
    parser.add_argument("--test-items", type=int, default=24,
                        help="GSM8K test questions to evaluate on (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, default=2048,
                        help="PPO training steps (episodes) (default: %(default)s)")
    parser.add_argument("--n-envs", type=int, default=4, help="envs per PPO step (default: %(default)s)")
    parser.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"],
                        help="observations: MiniLM or hashed n-grams (default: %(default)s, MiniLM when installed)")
    parser.add_argument("--data-path", default=None,
                        help="GSM8K directory or .jsonl (default: PERSUASION_GYM_DATA_DIR or the hub)")
    parser.add_argument("--seed", type=int, default=0, help="the random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    kwargs = dict(receiver=args.receiver, featurizer=args.featurizer, data_path=args.data_path)
    try:
        train_env = gym.make("Persuasion-GSM8K-v0", split="train", max_items=args.train_items, **kwargs)
        receiver = train_env.unwrapped.receiver
        print(f"Receiver: {receiver!r}")
        kwargs["receiver"] = receiver  # every env of this process shares the one Receiver
        test_env = gym.make("Persuasion-GSM8K-v0", split="test", max_items=args.test_items, **kwargs)

        print(f"Asking the Receiver every signal on {args.train_items} training questions...")
        best = best_fixed_signal(reward_table(train_env, progress=True))
        model = train_ppo(
            lambda: gym.make("Persuasion-GSM8K-v0", split="train", max_items=args.train_items, **kwargs),
            total_timesteps=args.timesteps, n_envs=args.n_envs, seed=args.seed, progress_bar=True,
        )
        policies = baseline_actions(test_env, args.seed)
        policies[f"best fixed ({best})"] = [best] * args.test_items
        policies["PPO Advisor"] = greedy_actions(model, test_env.unwrapped.features)
        print(f"Evaluating {len(policies)} policies on {args.test_items} test questions...")
        results = accuracies(test_env, policies, progress=True)
    except PersuasionGymError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"\nAccuracy on {args.test_items} held-out GSM8K test questions ({receiver!r}):")
    for name, value in results.items():
        print(f"  {name:<16} {value:6.3f}")
    stats = receiver.stats
    print(f"Receiver calls: {stats.calls} (cache hits: {stats.cache_hits}), "
          f"tokens: {stats.prompt_tokens + stats.completion_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
