"""``persuasion-gym record`` (a response table: every item x signal cell, resumable) and
``persuasion-gym rescore`` (a table's stored responses under the current scorer)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, cast

from persuasion_gym.cli.arguments import add_budget_flag, add_command, add_run_flags, count
from persuasion_gym.cli.inputs import make_receiver, read_signals
from persuasion_gym.errors import ConfigError

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv


def _record(args: argparse.Namespace) -> int:
    """Record a response table: every item x signal cell, S samples, resumable."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_gym.persuasion.exchange import plan_exchange
    from persuasion_gym.receivers.budget import Plan, check_plans
    from persuasion_gym.tables import baseline_values, record

    signals = read_signals(args.signals_file) if args.signals_file else None
    receiver = make_receiver(args.receiver, price_in=args.price_in, price_out=args.price_out)
    kwargs: dict = {"split": args.split, "max_items": args.n_items, "observation": "text", "receiver": receiver}
    if args.data_path:
        kwargs["data_path"] = args.data_path
    if signals is not None:
        kwargs["signals"] = signals
    if args.sandbox:
        if not any(code in args.env for code in ("HumanEval", "MBPP")):
            raise ConfigError(
                f"--sandbox is for code envs (Persuasion-HumanEval-v0, Persuasion-MBPP-v0), not {args.env}")
        kwargs["sandbox"] = args.sandbox
    env = cast("PersuasionEnv", gym.make(args.env, **kwargs).unwrapped)
    cells = len(env.dataset) * len(env.signals) * args.samples
    print(f"recording {cells} cells ({len(env.dataset)} items x {len(env.signals)} signals x {args.samples} "
          f"samples) from {receiver!r} into {args.out}", file=sys.stderr)
    signals = list(env.signals)
    grid = [(item, signal, sample) for item in env.dataset.items for signal in signals
            for sample in range(args.samples)]
    plan = Plan(repr(receiver), [plan_exchange("every cell", env.task, receiver, [g[0] for g in grid],
                                               [g[1] for g in grid], [g[2] for g in grid])],
                receiver.completion_budget, receiver.price_in, receiver.price_out)
    print(plan.describe(), file=sys.stderr)
    check_plans([plan], args.max_calls)  # before the first call
    table = record(env.task, receiver, env.dataset, signals, args.samples, args.out, env_id=args.env)
    stats = receiver.stats
    summary = {"out": str(args.out), "cells": cells, "receiver_calls": stats.calls, "cache_hits": stats.cache_hits,
               "tokens": stats.prompt_tokens + stats.completion_tokens, "reasoning_tokens": stats.reasoning_tokens,
               "cost_usd": round(stats.cost_usd, 6), "truncated": int(table.truncated.sum()),
               "values": baseline_values(table)}
    print(json.dumps(summary, indent=2))
    receiver.close()
    return 0


def _rescore(args: argparse.Namespace) -> int:
    """Re-score a table's stored responses with the current scorer: no Receiver call."""
    from persuasion_gym.tables import rescore

    result = rescore(args.table, task=args.task, data_path=args.data_path, sandbox=args.sandbox)
    result.table.save(args.out)
    cells = result.table.scores.size
    print(json.dumps({
        "out": str(args.out), "cells": cells, "receiver_calls": 0,
        "changed_scores": result.changed_scores, "changed_answers": result.changed_answers,
        "values_before": result.values_before, "values_after": result.values_after,
        "rescored": result.table.meta["rescored"]["scorer"],
    }, indent=2))
    print(f"{result.changed_scores} of {cells} cells changed score ({result.changed_answers} changed answer); "
          f"written to {args.out}", file=sys.stderr)
    return 0


def add_record_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    rec = add_command(commands, "record", "record a response table (resumable)")
    rec.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose items and signals to record")
    rec.add_argument("--receiver", default="auto", help="receiver spec")
    rec.add_argument("--split", default="test",
                     help="the split (train, test; HumanEval also all; MBPP validation, prompt)")
    rec.add_argument("--n-items", type=count, default=None, help="the first N items (default: all)")
    rec.add_argument("--samples", type=count, default=1, help="responses per cell")
    rec.add_argument("--out", required=True, help="the table file to write (.npz)")
    rec.add_argument("--signals-file", default=None,
                     help='a JSON list of signal texts, e.g. ["", "Think step by step."] (default: the env\'s)')
    rec.add_argument("--data-path", default=None,
                     help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    rec.add_argument("--price-in", type=float, default=0.0, help="USD per million prompt tokens (for the cost shown)")
    rec.add_argument("--price-out", type=float, default=0.0, help="USD per million completion tokens")
    rec.add_argument("--sandbox", default=None, choices=["local", "ray"],
                     help="code envs: run the programs here or as tasks on the Ray cluster's CPUs (default: local)")
    add_budget_flag(rec)
    add_run_flags(rec)
    rec.set_defaults(run=_record, resumable=True)
    return rec


def add_rescore_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    rs = add_command(commands, "rescore", "re-score a table's stored responses with the current scorer (no Receiver "
                                          "call)")
    rs.add_argument("table", help="the recorded table (.npz)")
    rs.add_argument("--out", required=True, help="the re-scored table to write")
    rs.add_argument("--data-path", default=None,
                    help="code tasks: the data set the table was recorded on, for its tests (default: the installed "
                         "one)")
    rs.add_argument("--task", default=None,
                    help="the table's task (gsm8k, math, humaneval, mbpp, ...), for a table that does not record it "
                         "(default: the table's)")
    rs.add_argument("--sandbox", default=None, choices=["local", "ray"],
                    help="code tasks: run the programs here or as tasks on the Ray cluster's CPUs ($RAY_ADDRESS, "
                         "else Ray starts here), with the sandbox limits the table was recorded with (default: local)")
    add_run_flags(rs)
    rs.set_defaults(run=_rescore)
    return rs
