"""``persuasion-gym demo``, the main job: record a train and a test table, train the Advisors
on the first and benchmark them on the second, then train the LM Advisor briefly against the
same Receiver (offline by default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from persuasion_agents.commands.bench import DEFAULT_POLICIES
from persuasion_agents.commands.options import add_featurizer_flag
from persuasion_gym.cli.arguments import add_budget_flag, add_command, add_run_flags, count, names
from persuasion_gym.cli.inputs import make_receiver
from persuasion_gym.errors import ConfigError

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv

# The main job's task, chosen by measuring the embedded SmolLM2-135M on candidates (README, "Two
# commands"): reasoning-gym's chain_sum, sums and differences of 2-3 one-digit numbers, where its
# answers move most with the hint (8% right with none, 29% with the best hint, 46% with the best per item).
DEMO_TASK: dict[str, Any] = {"dataset": "chain_sum", "size": 200, "seed": 0, "min_terms": 2, "max_terms": 3,
                             "min_digits": 1, "max_digits": 1, "allow_negation": False}


def _demo_env(args: argparse.Namespace, receiver: Any, split: str, max_items: int | None,
              **kwargs: Any) -> PersuasionEnv:
    """An env of the demo's task (``--task``): its items, signals and scorer."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)

    if args.task == "gsm8k":
        env_id, task_kwargs = "Persuasion-GSM8K-v0", {"data_path": args.data_path}
    else:
        if args.data_path:
            raise ConfigError("--data-path is for --task gsm8k: the reasoning-gym task's items are generated")
        env_id, task_kwargs = "Persuasion-ReasoningGym-v0", dict(DEMO_TASK)
    env = gym.make(env_id, receiver=receiver, split=split, max_items=max_items, **task_kwargs, **kwargs)
    return cast("PersuasionEnv", env.unwrapped)


def _signal_table(tables: dict[str, Path]) -> str:
    """Each signal's mean score on the recorded tables, and how far it moves the test score from none."""
    import numpy as np

    from persuasion_agents.evaluation import best_fixed_signal
    from persuasion_gym.tables import load_table

    loaded = {split: load_table(path) for split, path in tables.items()}
    test = loaded["test"].utilities
    none = loaded["test"].signals.index("") if "" in loaded["test"].signals else None
    lines = ["| # | signal | train | test | test vs none (points) |", "| ---: | --- | ---: | ---: | ---: |"]
    for j, signal in enumerate(loaded["test"].signals):
        shown = (signal[:70] + "...") if len(signal) > 70 else signal or "(none)"
        lift = "" if none is None else f"{100 * (test[:, j].mean() - test[:, none].mean()):+.1f}"
        lines.append(f"| {j} | {shown} | {loaded['train'].utilities[:, j].mean():.3f} | {test[:, j].mean():.3f} | "
                     f"{lift} |")
    for split, table in loaded.items():
        u = table.utilities
        best = best_fixed_signal(u)
        lines.append(f"\n{split}: best fixed signal {best} ({u.mean(0)[best]:.3f}), best signal per "
                     f"item (the oracle) {u.max(1).mean():.3f}, {int(np.sum(u.max(1) > u.min(1)))} of {len(u)} items "
                     "scored differently under different signals")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    """The main job: record train and test tables, train the Advisors on the first, benchmark
    them on the second."""
    from persuasion_agents.benchmark import Setting, run_benchmark
    from persuasion_agents.results import markdown
    from persuasion_gym.tables import record

    out = Path(args.out)
    receiver = make_receiver(args.receiver)
    print(f"Receiver: {receiver!r}", file=sys.stderr)
    tables = {}
    for split, n in (("train", args.train_items), ("test", args.test_items)):
        env = _demo_env(args, receiver, split, n, observation="text")
        what = "GSM8K questions" if args.task == "gsm8k" else f"{env.dataset.name} questions"
        print(f"recording {split}: {len(env.dataset)} {what} x {len(env.signals)} signals", file=sys.stderr)
        tables[split] = out / f"{split}.npz"
        record(env.task, receiver, env.dataset, list(env.signals), out=tables[split], env_id=env.spec.id if env.spec
               else None)
    print("\nthe signals on the recorded tables (mean score; partial credit counts):\n")
    print(_signal_table(tables) + "\n")
    setting = Setting("Persuasion-Table-v0", f"table:{tables['test']}", train_receiver=f"table:{tables['train']}")
    rows = run_benchmark([setting], names(args.policies, "--policies"), out / "bench", timesteps=args.timesteps,
                         seed=args.seed, featurizer=args.featurizer)
    print(markdown(rows))
    print(f"figure: {out / 'bench' / 'accuracy.png'}  results: {out / 'bench' / 'results.md'}")
    if args.advisor_steps > 0:
        _demo_lm_advisor(args, receiver, out)
    return 0


def _demo_lm_advisor(args: argparse.Namespace, receiver: Any, out: Path) -> None:
    """A brief GRPO run of the LM Advisor against the same Receiver, and the signals it writes."""
    from persuasion_agents.commands.advisor import train_showing_signals
    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining

    print(f"training the LM Advisor ({args.advisor}) for {args.advisor_steps} GRPO steps against the Receiver",
          file=sys.stderr)
    env = _demo_env(args, receiver, "train", args.train_items, featurizer="hashed", action_type="text")
    questions = _demo_env(args, receiver, "test", 3, featurizer="hashed").dataset.texts
    # The rest of AdvisorTraining's defaults: 2 items a step, 4 signals each.
    settings = AdvisorTraining(steps=args.advisor_steps, save_steps=args.advisor_steps, seed=args.seed)
    run = train_showing_signals(env, LMAdvisor.load(args.advisor), out / "lm-advisor", settings, questions,
                                resume=True)
    for question, old, new in zip(run.texts, run.before, run.after, strict=True):
        print(f"\n{question[:90]}...\n  signal before training: {old!r}\n  signal after training:  {new!r}")
    record = run.record
    print(f"\nLM Advisor: {record['steps']} steps, mean reward per step {[round(r, 3) for _, r in record['curve']]}, "
          f"saved to {out / 'lm-advisor' / 'advisor'}")
    tied = record.get("tied_steps", len(record["curve"]) if not any(r for _, r in record["curve"]) else 0)
    if record["curve"] and tied == len(record["curve"]):
        # GRPO learns from differences within a group of signals: none when all are rewarded alike.
        print("Every item's signals were rewarded alike, so the group baseline left nothing to learn from: the signals "
              "change once some of them help more than others (a stronger Receiver, RECEIVER=openai:MODEL@URL, or "
              "more --advisor-steps)")


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    de = add_command(commands, "demo", "the main job: record, train, benchmark (offline by default)")
    de.add_argument("--receiver", default="auto", help="receiver spec")
    de.add_argument("--task", default="reasoning-gym", choices=["reasoning-gym", "gsm8k"],
                    help="reasoning-gym: chain_sum, 2-3 one-digit terms (DEMO_TASK), at the embedded model's level; "
                         "gsm8k: GSM8K's questions")
    de.add_argument("--train-items", type=count, default=24, help="training questions to record")
    de.add_argument("--test-items", type=count, default=24, help="test questions to record")
    de.add_argument("--policies", default=DEFAULT_POLICIES, help="policy names, comma-separated")
    de.add_argument("--timesteps", type=count, default=10_000, help="training episodes per trained policy")
    de.add_argument("--advisor", default="embedded", help="the LM Advisor trained briefly at the end")
    de.add_argument("--advisor-steps", type=int, default=2, help="its GRPO steps (0: skip)")
    de.add_argument("--out", default="runs/demo", help="directory for the tables, the benchmark, the LM Advisor")
    de.add_argument("--data-path", default=None,
                    help="--task gsm8k: GSM8K's directory or .jsonl (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    de.add_argument("--seed", type=int, default=0, help="the random seed")
    add_featurizer_flag(de)
    add_budget_flag(de)
    add_run_flags(de)
    de.set_defaults(run=_demo, resumable=True)
    return de
