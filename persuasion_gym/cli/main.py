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
