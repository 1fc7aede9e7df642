"""The ``persuasion-gym`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from persuasion_gym.errors import PersuasionGymError


def _envs(args: argparse.Namespace) -> int:
    import persuasion_gym

    for env_id in persuasion_gym.ENV_IDS:
        print(env_id)
    return 0


def _check(args: argparse.Namespace) -> int:
    """Ask the Receiver one GSM8K question: shows that the endpoint, model and key work."""
    from persuasion_gym.persuasion import exchange
    from persuasion_gym.receivers import make_receiver
    from persuasion_gym.tasks import GSM8KTask

    task = GSM8KTask()
    item = task.load(args.split, args.data_path, max_items=args.item + 1).items[args.item]
    receiver = make_receiver(args.receiver, cache=not args.no_cache)
    outcome = exchange(task, receiver, [item], [args.signal])[0]
    print(json.dumps({
        "receiver": receiver.identity,
        "item_id": item.item_id,
        "question": item.text,
        "signal": args.signal,
        "response": outcome.response,
        "answer": outcome.answer,
        "gold": item.gold,
        "correct": outcome.correct,
        "usage": outcome.usage.as_dict(),
        "latency_s": round(outcome.latency_s, 3),
        "cached": outcome.cached,
    }, indent=2, ensure_ascii=False))
    receiver.close()
    return 0


def _record(args: argparse.Namespace) -> int:
    """Record a response table: every item x signal cell, S samples, resumable."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_gym.receivers import make_receiver
    from persuasion_gym.tables import baseline_values, record

    receiver = make_receiver(args.receiver, price_in=args.price_in, price_out=args.price_out)
    kwargs: dict = {"split": args.split, "max_items": args.n_items, "observation": "text", "receiver": receiver}
    if args.data_path:
        kwargs["data_path"] = args.data_path
    if args.signals_file:
        kwargs["signals"] = json.loads(open(args.signals_file, encoding="utf-8").read())
    env = gym.make(args.env, **kwargs).unwrapped
    cells = len(env.dataset) * len(env.signals) * args.samples
    print(f"recording {cells} cells ({len(env.dataset)} items x {len(env.signals)} signals x {args.samples} "
          f"samples) from {receiver!r} into {args.out}", file=sys.stderr)
    table = record(env.task, receiver, env.dataset, list(env.signals), args.samples, args.out, env_id=args.env)
    stats = receiver.stats
    summary = {"out": str(args.out), "cells": cells, "receiver_calls": stats.calls, "cache_hits": stats.cache_hits,
               "tokens": stats.prompt_tokens + stats.completion_tokens, "cost_usd": round(stats.cost_usd, 6),
               "values": baseline_values(table)}
    print(json.dumps(summary, indent=2))
    receiver.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from persuasion_gym import __version__

    parser = argparse.ArgumentParser(prog="persuasion-gym", description="Bayesian-persuasion alignment environments.")
    parser.add_argument("--version", action="version", version=f"persuasion-gym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("envs", help="list the registered environment ids").set_defaults(run=_envs)
    check = commands.add_parser("check", help="ask a Receiver one GSM8K question")
    check.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL (default: auto)")
    check.add_argument("--split", default="test", choices=["train", "test"])
    check.add_argument("--item", type=int, default=0, help="question index in the split")
    check.add_argument("--signal", default="", help="signal text to send with the question")
    check.add_argument("--data-path", default=None, help="GSM8K directory or .jsonl")
    check.add_argument("--no-cache", action="store_true", help="always call the Receiver")
    check.set_defaults(run=_check)
    rec = commands.add_parser("record", help="record a response table (resumable)")
    rec.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose items and signals to record")
    rec.add_argument("--receiver", default="auto", help="receiver spec (default: auto)")
    rec.add_argument("--split", default="test", choices=["train", "test"])
    rec.add_argument("--n-items", type=int, default=None, help="the first N items (default: all)")
    rec.add_argument("--samples", type=int, default=1, help="responses per cell")
    rec.add_argument("--out", required=True, help="the table file to write (.npz)")
    rec.add_argument("--signals-file", default=None, help="a JSON list of signal texts (default: the env's)")
    rec.add_argument("--data-path", default=None, help="the data set's file or directory")
    rec.add_argument("--price-in", type=float, default=0.0, help="USD per million prompt tokens (for the cost shown)")
    rec.add_argument("--price-out", type=float, default=0.0, help="USD per million completion tokens")
    rec.set_defaults(run=_record)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PersuasionGymError as exc:
        print(f"persuasion-gym: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
