"""``persuasion-gym bench``: signaling policies x envs x Receivers on held-out items (classic
games: regret against the LP optimum)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from persuasion_agents.commands.options import (
    add_advisor_arguments,
    add_featurizer_flag,
    add_search_arguments,
    advisor_training,
    search_options,
)
from persuasion_gym.cli.arguments import add_budget_flag, add_command, add_fields, add_run_flags, count, names
from persuasion_gym.errors import ConfigError

if TYPE_CHECKING:
    from persuasion_agents.benchmark import Setting

DEFAULT_POLICIES = "none,random,best-fixed,oracle,epsilon-greedy,ucb,thompson,linucb,ppo"
# The Setting fields with a flag of their own besides --train-receiver (a setting is one --env x --receiver).
SPLIT_FLAGS = ("split", "n_items", "train_split", "train_items")


def _settings(args: argparse.Namespace) -> list[Setting]:
    from persuasion_agents.benchmark import Setting
    from persuasion_agents.spending import train_items

    receivers = names(args.receiver, "--receiver")
    trains = names(args.train_receiver, "--train-receiver") if args.train_receiver else [None] * len(receivers)
    if len(trains) != len(receivers):
        raise ConfigError("--train-receiver takes one spec per --receiver spec")
    # On a live Receiver every training cell is paid for: bounded unless --train-items says otherwise.
    return [Setting(env_id=env, receiver=receiver, split=args.split, n_items=args.n_items, train_receiver=train,
                    train_split=args.train_split, train_items=train_items(receiver, train, args.train_items))
            for env in names(args.env, "--env") for receiver, train in zip(receivers, trains, strict=True)]


def _bench(args: argparse.Namespace) -> int:
    from persuasion_agents.benchmark import BenchmarkIncompleteError, run_benchmark
    from persuasion_agents.classic_bench import CLASSIC_ENVS, run_classic_benchmark
    from persuasion_agents.results import markdown

    envs, policies = names(args.env, "--env"), names(args.policies, "--policies")
    classic = [e for e in envs if e in CLASSIC_ENVS]
    if classic:  # no Receiver model: regret against the LP optimum
        learners = [p for p in policies if p not in ("none", "best-fixed", "oracle")]
        run_classic_benchmark(classic, learners, args.timesteps, args.out, args.seed)
        print((Path(args.out) / "classic_results.md").read_text())
        print(f"regret curves: {args.out}/regret.png")
        envs = [e for e in envs if e not in CLASSIC_ENVS]
        if not envs:
            return 0
        args.env = ",".join(envs)

    options = {"lm-advisor": {"advisor": args.advisor, "training": advisor_training(args),
                              "out": str(Path(args.out) / "lm-advisor")},
               **search_options(args),
               "rllib-ppo": {"num_env_runners": args.num_env_runners, "num_envs_per_env_runner": args.n_envs}}
    try:
        rows = run_benchmark(_settings(args), policies, args.out, timesteps=args.timesteps, seed=args.seed,
                             featurizer=args.featurizer, policy_options=options, max_calls=args.max_calls)
    except BenchmarkIncompleteError as exc:  # show the runs that finished; main says what failed
        if exc.rows:
            print(markdown(exc.rows))
        raise
    print(markdown(rows))
    print(f"results: {args.out}/results.json, results.csv, results.md; figure: {args.out}/accuracy.png")
    return 0


def _rerun(args: argparse.Namespace, after_failure: bool) -> str:
    """What the same command again does; a failed benchmark's own summary says it."""
    if after_failure:
        return ""
    return (f"run the same command again: it reuses the runs finished in {Path(args.out) / 'runs'} and asks "
            "only the missing answers")


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persuasion_agents.benchmark import Setting

    be = add_command(commands, "bench", "benchmark signaling policies on held-out items")
    be.add_argument("--env", default="Persuasion-GSM8K-v0", help="env ids, comma-separated")
    be.add_argument("--receiver", default="auto", help="receiver specs (or table:PATH), comma-separated")
    add_fields(be, Setting, ["train_receiver"])
    be.add_argument("--policies", default=DEFAULT_POLICIES,
                    help="policy names, comma-separated (fixed-K: always signal K)")
    add_fields(be, Setting, SPLIT_FLAGS)
    be.add_argument("--timesteps", type=count, default=20_000, help="training episodes per trained policy")
    be.add_argument("--out", required=True, help="directory for the runs, results.* and figures")
    be.add_argument("--seed", type=int, default=0, help="the random seed")
    add_featurizer_flag(be)
    be.add_argument("--num-env-runners", type=int, default=2, help="rllib-ppo: RLlib env runners (Ray actors)")
    be.add_argument("--n-envs", type=count, default=16, help="rllib-ppo: envs per env runner")
    add_search_arguments(be)
    add_advisor_arguments(be)
    add_budget_flag(be)
    add_run_flags(be)
    be.set_defaults(run=_bench, resumable=True, rerun=_rerun)
    return be
