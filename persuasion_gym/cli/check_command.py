"""``persuasion-gym envs`` (the registered ids) and ``persuasion-gym check`` (one item asked:
the endpoint, model and key work)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, cast

from persuasion_gym.cli.arguments import add_command, add_run_flags
from persuasion_gym.cli.inputs import make_receiver
from persuasion_gym.errors import ConfigError, PersuasionGymError

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv
    from persuasion_gym.envs.text_space import SignalText


def _envs(args: argparse.Namespace) -> int:
    import persuasion_gym

    for env_id in persuasion_gym.ENV_IDS:
        print(env_id)
    return 0


def _check(args: argparse.Namespace) -> int:
    """Ask the Receiver one item of an env's task: shows that the endpoint, model and key work."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_gym.persuasion import exchange

    if args.env in ("Persuasion-Table-v0", "Persuasion-Prosecutor-v0", "Persuasion-Classic-v0"):
        raise ConfigError(f"check --env {args.env}: that env asks no Receiver (it replays a table or plays a classic "
                          "game); check a task env, e.g. --env Persuasion-GSM8K-v0, against the Receiver")
    receiver = make_receiver(args.receiver, cache=not args.no_cache)
    # Text actions: the signal is checked as step() checks one (length limit, charset).
    kwargs: dict = {"receiver": receiver, "observation": "text", "action_type": "text", "split": args.split}
    if args.data_path:
        kwargs["data_path"] = args.data_path
    env = cast("PersuasionEnv", gym.make(args.env, **kwargs).unwrapped)
    n = len(env.dataset)
    if not 0 <= args.item < n:
        raise ConfigError(f"--item {args.item}: the {args.split} split of {args.env} has {n} items: "
                          f"use --item 0..{n - 1}")
    limit = cast("SignalText", env.action_space).max_length
    if len(args.signal) > limit:  # step()'s limit; the env's own message offers max_signal_length=, no flag here
        raise ConfigError(f"--signal has {len(args.signal)} characters, over the {limit} a step takes: shorten it")
    try:
        signal = env.check_text(args.signal)  # the charset, as step() checks it
    except PersuasionGymError as exc:
        raise ConfigError(f"--signal: {exc}") from None
    task, item = env.task, env.dataset.items[args.item]
    outcome = exchange(task, receiver, [item], [signal])[0]
    print(json.dumps({
        "receiver": receiver.identity,
        "item_id": item.item_id,
        task.text_key: item.text,
        "signal": signal,
        "response": outcome.response,
        "answer": outcome.answer,
        "gold": item.gold,
        "correct": outcome.correct,
        "usage": outcome.usage.as_dict(),
        "latency_s": round(outcome.latency_s, 3),
        "cached": outcome.cached,
        **outcome.details,
    }, indent=2, ensure_ascii=False))
    receiver.close()
    return 0


def add_envs_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    envs = add_command(commands, "envs", "list the registered environment ids")
    envs.set_defaults(run=_envs)
    return envs


def add_check_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    check = add_command(commands, "check", "ask a Receiver one item (a GSM8K question by default)")
    check.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose task to ask")
    check.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL")
    check.add_argument("--split", default="test", help="the split")
    check.add_argument("--item", type=int, default=0, help="item index in the split")
    check.add_argument("--signal", default="", help="signal text to send with the item (default: none)")
    check.add_argument("--data-path", default=None,
                       help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    check.add_argument("--no-cache", action="store_true", help="always call the Receiver")
    add_run_flags(check)
    check.set_defaults(run=_check, rerun=_no_rerun)
    return check


def _no_rerun(args: argparse.Namespace, after_failure: bool) -> str:
    """One question: a failed answer is reported as it is, with no advice on asking it again."""
    return ""
