"""``persuasion-gym compare``: the paper's comparison for one Receiver on held-out items."""

from __future__ import annotations

import argparse
import sys

from persuasion_agents.commands.options import (
    add_advisor_arguments,
    add_search_arguments,
    advisor_training,
    search_options,
)
from persuasion_gym.cli.arguments import add_budget_flag, add_command, add_run_flags, count, names


def _compare(args: argparse.Namespace) -> int:
    """The paper's comparison for one Receiver on held-out items."""
    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_agents.lm_advisor.compare import paper_comparison
    from persuasion_agents.results import markdown
    from persuasion_agents.spending import is_trained, plan_comparison
    from persuasion_gym.receivers.budget import check_plans

    plans = plan_comparison(args.env, args.receiver, split=args.split, n_items=args.n_items, train_split="train",
                            train_items=args.train_items,
                            training=None if is_trained(args.advisor) else advisor_training(args))
    for plan in plans:
        print(plan.describe(), file=sys.stderr)
    check_plans(plans, args.max_calls)
    rows = paper_comparison(args.env, args.receiver, args.advisor, args.out, split=args.split, n_items=args.n_items,
                            train_items=args.train_items, seed=args.seed, training=advisor_training(args),
                            arms=names(args.arms, "--arms") if args.arms else (), arm_options=search_options(args),
                            timesteps=args.timesteps)
    print(markdown(rows))
    print("lift (points) is absolute, lift (%) relative to none (the paper reports relative lifts)")
    print(f"results: {args.out}/results.json, results.csv, results.md; figure: {args.out}/accuracy.png")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    co = add_command(commands, "compare", "the paper's comparison: none, prior, posterior and direct with a trained "
                                          "LM Advisor, best fixed, oracle (an untrained --advisor is trained first)")
    add_advisor_arguments(co)
    co.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose task to compare on")
    co.add_argument("--receiver", default="auto", help="the Receiver to evaluate against (may differ from training's)")
    co.add_argument("--split", default="test", help="the held-out split")
    co.add_argument("--n-items", type=count, default=50, help="held-out items")
    co.add_argument("--train-items", type=count, default=50,
                    help="training items for the prior and the best fixed signal")
    co.add_argument("--out", required=True, help="directory for results.* and the figure")
    co.add_argument("--seed", type=int, default=0, help="the random seed")
    co.add_argument("--arms", default=None,
                    help="more arms, by their bench policy names, comma-separated: gepa, prompted-advisor, ucb, ... "
                         "(default: none)")
    co.add_argument("--timesteps", type=count, default=2_000, help="training episodes of the arms that learn online")
    add_search_arguments(co)
    add_budget_flag(co)
    add_run_flags(co)
    co.set_defaults(run=_compare, resumable=True)
    return co
