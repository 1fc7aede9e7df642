"""``persuasion-gym train``: an Advisor (SB3 PPO/A2C/DQN, a bandit, RLlib PPO or the LM
Advisor) on any persuasion env."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from persuasion_agents.commands.options import add_advisor_arguments, add_featurizer_flag, advisor_training
from persuasion_gym.cli.arguments import add_budget_flag, add_command, add_fields, add_run_flags, count
from persuasion_gym.errors import ReceiverError

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv

# The algorithms whose training checkpoints (--resume continues them); a bandit trains in one go.
CHECKPOINTED = ("ppo", "a2c", "dqn", "rllib-ppo", "lm-advisor")


def _train(args: argparse.Namespace) -> int:
    from persuasion_agents.spending import plan_training, train_items
    from persuasion_gym.receivers.budget import check_plans

    args.n_items = train_items(args.receiver, None, args.n_items)  # bounded on a live Receiver
    evaluations = 0 if args.algo == "lm-advisor" else -(-args.timesteps // args.eval_freq)
    plans = plan_training(args.env, args.receiver, args.algo, args.split, args.n_items, args.timesteps,
                          args.eval_items, evaluations, advisor_training(args))
    for plan in plans:
        print(plan.describe(), file=sys.stderr)
    check_plans(plans, args.max_calls)
    if args.algo == "lm-advisor":
        return _train_lm_advisor(args)
    from persuasion_agents.training_runs import train

    meta = train(env_id=args.env, receiver=args.receiver, algo=args.algo, timesteps=args.timesteps, out=args.out,
                 split=args.split, n_items=args.n_items, eval_receiver=args.eval_receiver, eval_split=args.eval_split,
                 eval_items=args.eval_items, eval_freq=args.eval_freq, n_envs=args.n_envs, resume=args.resume,
                 seed=args.seed, featurizer=args.featurizer, num_env_runners=args.num_env_runners)
    print(json.dumps({k: v for k, v in meta.items() if k != "curve"}, indent=2))
    return 0


def _train_lm_advisor(args: argparse.Namespace) -> int:
    """GRPO on the Receiver's rewards; shows the signals it writes before and after."""
    import gymnasium as gym
    import numpy as np

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_agents.commands.advisor import train_showing_signals
    from persuasion_agents.lm_advisor import LMAdvisor

    advisor = LMAdvisor.load(args.advisor)  # a trained one keeps its template (its sampling settings)
    advisor.info.template = dataclasses.replace(advisor.template, max_new_tokens=args.max_new_tokens)
    kwargs: dict = {"receiver": args.receiver, "split": args.split, "max_items": args.n_items, "featurizer": "hashed",
                    "action_type": "text", "protocol": args.protocol}
    if args.protocol == "posterior":
        kwargs.update(scheme=advisor, state_table=args.state_table)
    env = gym.make(args.env, **kwargs)
    core = cast("PersuasionEnv", env.unwrapped)
    if args.protocol == "posterior":  # the prompt holds the item x* the Advisor observes: show training items
        first = np.arange(min(3, len(core.dataset)))
        shown = [core.dataset.texts[i] for i in first]
        items = list(core.observed_items(first, np.random.default_rng(args.seed))["observed_item"])
        print("signals for three training items, each with the item x* the Advisor observes")
    else:
        shown, items = cast("PersuasionEnv", gym.make(args.env, receiver=core.receiver, split=args.eval_split,
                                                      max_items=3, featurizer="hashed").unwrapped).dataset.texts, None
    try:
        run = train_showing_signals(env, advisor, args.out, advisor_training(args), shown, items=items,
                                    resume=args.resume)
    except ReceiverError as exc:  # what came back is cached: resuming asks the Receiver only the rest
        raise type(exc)(f"{exc}; run the same command with --resume and training continues from the last "
                        "checkpoint (or starts afresh without one), reusing the cached answers") from None
    for question, old, new in zip(run.texts, run.before, run.after, strict=True):
        print(f"\n{question[:100]}...\n  before: {old!r}\n  after:  {new!r}")
    print(json.dumps({k: v for k, v in run.record.items() if k not in ("curve", "provenance")}, indent=2,
                     default=str))
    print(f"advisor: {Path(args.out) / 'advisor'}  TensorBoard: {args.out}/runs")
    return 0


def _rerun(args: argparse.Namespace, after_failure: bool) -> str:
    """What the same command again does; the LM Advisor's failed step says it itself."""
    if after_failure and args.algo == "lm-advisor":
        return ""
    if args.algo in CHECKPOINTED:
        return ("run the same command with --resume to continue from the last checkpoint, the cached answers "
                "reused")
    return "run the same command again: the cached answers are reused"


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persuasion_agents.lm_advisor import AdvisorTemplate

    tr = add_command(commands, "train", "train an Advisor (SB3 PPO/A2C/DQN, a bandit, or the LM Advisor)")
    tr.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env to train on")
    tr.add_argument("--receiver", default="auto", help="receiver spec, or table:PATH")
    tr.add_argument("--algo", default="ppo",
                    help="ppo, a2c, dqn, epsilon-greedy, ucb, thompson, linucb, lm-advisor, rllib-ppo (on Ray)")
    tr.add_argument("--timesteps", type=count, default=20_000, help="training episodes")
    tr.add_argument("--out", required=True, help="directory for the model, checkpoints, logs")
    tr.add_argument("--split", default="train", help="the training split")
    tr.add_argument("--n-items", type=count, default=None,
                    help="train on the split's first N items (default: all of a table's, 200 on a live Receiver)")
    tr.add_argument("--eval-receiver", default=None, help="receiver for held-out evaluation (default: --receiver)")
    tr.add_argument("--eval-split", default="test", help="the held-out split")
    tr.add_argument("--eval-items", type=count, default=100, help="held-out items to evaluate on")
    tr.add_argument("--eval-freq", type=count, default=5_000, help="timesteps between evaluations and checkpoints")
    tr.add_argument("--n-envs", type=count, default=16, help="envs per step (rllib-ppo: per env runner)")
    tr.add_argument("--num-env-runners", type=int, default=2, help="rllib-ppo: RLlib env runners (Ray actors)")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    tr.add_argument("--seed", type=int, default=0, help="the random seed")
    add_featurizer_flag(tr)
    add_advisor_arguments(tr)
    tr.add_argument("--protocol", default="direct", choices=["direct", "posterior"],
                    help="lm-advisor: direct (the signal alone) or posterior (signal + an item drawn from the belief)")
    tr.add_argument("--state-table", default=None,
                    help="lm-advisor under posterior: a table giving each item's state (default: estimated online)")
    add_fields(tr, AdvisorTemplate, ["max_new_tokens"], prefix="lm-advisor: ")
    add_budget_flag(tr)
    add_run_flags(tr)
    tr.set_defaults(run=_train, resumable=True, rerun=_rerun)
    return tr
