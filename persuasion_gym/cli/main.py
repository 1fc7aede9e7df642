"""The ``persuasion-gym`` command line.

Bad input ends in one line, ``persuasion-gym: error: ...`` naming the problem and the fix, and
exit code 2 (``-v`` adds the traceback); Ctrl-C says what is saved and exits 130.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from persuasion_gym.errors import ConfigError, PersuasionGymError, ReceiverConfigError, ReceiverError

if TYPE_CHECKING:
    from persuasion_gym.envs import PersuasionEnv
    from persuasion_gym.envs.text_space import SignalText
    from persuasion_gym.receivers import Receiver, ResponseCache


def _names(value: str, flag: str) -> list[str]:
    """A comma-separated flag's entries, spaces around them dropped ("none, ucb" is two)."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise ConfigError(f"{flag} {value!r} has an empty entry: separate the names with single commas")
    return names


def _check_env_id(env_id: str, flag: str = "--env") -> None:
    """An unregistered id fails here with the closest registered one, not in Gymnasium's traceback."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)

    module, _, name = env_id.rpartition(":")
    if module:  # "module:Env-v0": importing the module registers the env, as gym.make does
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{flag} {env_id}: cannot import {module!r}, which should register it ({exc})") from None
    if name in gym.registry:
        return
    by_lower = {known.lower(): known for known in gym.registry}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1)
    guess = f"did you mean {by_lower[close[0]]}? " if close else ""
    raise ConfigError(f"unknown env id {name!r} ({flag}): {guess}`persuasion-gym envs` lists the registered ids")


def _read_signals(path: str) -> list[str]:
    """``--signals-file``: a JSON list of signal texts; errors name the file and the flag."""
    from persuasion_gym.signals import SignalLibrary

    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--signals-file {path}: cannot read it ({exc.strerror}): pass a JSON file holding a "
                          'list of signal texts, e.g. ["", "Think step by step."]') from None
    try:
        signals = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--signals-file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}; it must hold a list of signal texts, e.g. "
                          '["", "Think step by step."]') from None
    if not isinstance(signals, list):
        raise ConfigError(f"--signals-file {path} holds a JSON {_JSON_TYPES.get(type(signals), 'value')}: it must "
                          'hold a list of signal texts ("" is the empty signal), e.g. ["", "Think step by step."]')
    try:
        SignalLibrary(signals)  # its own checks: texts only, at least one, no duplicates
    except ConfigError as exc:
        raise ConfigError(f"--signals-file {path}: {exc}") from None
    return signals


_JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _make_receiver(spec: str, **kwargs: Any) -> Receiver:
    """``make_receiver``, for the commands that make their own: a Receiver that fails while being
    set up (missing key, no server) has been asked nothing, so a rerun alone does not help."""
    from persuasion_gym.receivers import make_receiver

    try:
        return make_receiver(spec, **kwargs)
    except ReceiverConfigError:
        raise
    except ReceiverError as exc:
        raise ReceiverConfigError(f"--receiver {spec}: {exc}") from exc


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
    receiver = _make_receiver(args.receiver, cache=not args.no_cache)
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


def _record(args: argparse.Namespace) -> int:
    """Record a response table: every item x signal cell, S samples, resumable."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_gym.persuasion.exchange import plan_exchange
    from persuasion_gym.receivers.budget import Plan, check_plans
    from persuasion_gym.tables import baseline_values, record

    signals = _read_signals(args.signals_file) if args.signals_file else None
    receiver = _make_receiver(args.receiver, price_in=args.price_in, price_out=args.price_out)
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


def _train(args: argparse.Namespace) -> int:
    from persuasion_agents.spending import plan_training, train_items
    from persuasion_gym.receivers.budget import check_plans

    args.n_items = train_items(args.receiver, None, args.n_items)  # bounded on a live Receiver
    evaluations = 0 if args.algo == "lm-advisor" else -(-args.timesteps // args.eval_freq)
    plans = plan_training(args.env, args.receiver, args.algo, args.split, args.n_items, args.timesteps,
                          args.eval_items, evaluations, _advisor_training(args))
    for plan in plans:
        print(plan.describe(), file=sys.stderr)
    check_plans(plans, args.max_calls)
    if args.algo == "lm-advisor":
        return _train_lm_advisor(args)
    from persuasion_agents.train_cli import train

    meta = train(args.env, args.receiver, args.algo, args.timesteps, args.out, args.split, args.n_items,
                 args.eval_receiver, args.eval_split, args.eval_items, args.eval_freq, args.n_envs, args.resume,
                 args.seed, args.featurizer, num_env_runners=args.num_env_runners)
    print(json.dumps({k: v for k, v in meta.items() if k != "curve"}, indent=2))
    return 0


def _advisor_training(args: argparse.Namespace):
    from persuasion_agents.lm_advisor.training import AdvisorTraining

    extra = {}
    if args.trl:  # read by the installed GRPOConfig's field types; an unknown field is an error naming the closest
        from persuasion_agents.lm_advisor.training import parse_grpo_options

        extra = parse_grpo_options(args.trl)
    return AdvisorTraining(steps=args.steps, items_per_step=args.items_per_step, num_generations=args.num_generations,
                           beta=args.beta, learning_rate=args.learning_rate, save_steps=args.save_steps,
                           lora=args.lora, seed=args.seed, dtype=args.dtype, extra=extra)


def _train_lm_advisor(args: argparse.Namespace) -> int:
    """GRPO on the Receiver's rewards; shows the signals it writes before and after."""
    import dataclasses

    import gymnasium as gym
    import numpy as np

    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.training import train_lm_advisor

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
    before = advisor.write(shown, items=items)
    try:
        record = train_lm_advisor(env, advisor, args.out, _advisor_training(args), resume=args.resume)
    except ReceiverError as exc:  # what came back is cached: resuming asks the Receiver only the rest
        raise type(exc)(f"{exc}; run the same command with --resume and training continues from the last "
                        "checkpoint (or starts afresh without one), reusing the cached answers") from None
    after = LMAdvisor.load(str(Path(args.out) / "advisor")).write(shown, items=items)
    for question, old, new in zip(shown, before, after, strict=True):
        print(f"\n{question[:100]}...\n  before: {old!r}\n  after:  {new!r}")
    print(json.dumps({k: v for k, v in record.items() if k not in ("curve", "provenance")}, indent=2, default=str))
    print(f"advisor: {Path(args.out) / 'advisor'}  TensorBoard: {args.out}/runs")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """The paper's comparison for one Receiver on held-out items."""
    import persuasion_gym  # noqa: F401  (registers the envs)
    from persuasion_agents.benchmark import markdown
    from persuasion_agents.lm_advisor.compare import paper_comparison
    from persuasion_agents.spending import is_trained, plan_comparison
    from persuasion_gym.receivers.budget import check_plans

    plans = plan_comparison(args.env, args.receiver, args.split, args.n_items, "train", args.train_items,
                            None if is_trained(args.advisor) else _advisor_training(args))
    for plan in plans:
        print(plan.describe(), file=sys.stderr)
    check_plans(plans, args.max_calls)
    rows = paper_comparison(args.env, args.receiver, args.advisor, args.out, args.split, args.n_items, args.train_items,
                            args.seed, training=_advisor_training(args), arms=_names(args.arms, "--arms") if args.arms
                            else (), arm_options=_search_options(args), timesteps=args.timesteps)
    print(markdown(rows))
    print("lift (points) is absolute, lift (%) relative to none (the paper reports relative lifts)")
    print(f"results: {args.out}/results.json, results.csv, results.md; figure: {args.out}/accuracy.png")
    return 0


def _settings(args: argparse.Namespace):
    from persuasion_agents.benchmark import Setting

    receivers = _names(args.receiver, "--receiver")
    trains = _names(args.train_receiver, "--train-receiver") if args.train_receiver else [None] * len(receivers)
    if len(trains) != len(receivers):
        raise ConfigError("--train-receiver takes one spec per --receiver spec")
    from persuasion_agents.spending import train_items

    # On a live Receiver every training cell is paid for: bounded unless --train-items says otherwise.
    return [Setting(env, receiver, args.split, args.n_items, train, args.train_split,
                    train_items(receiver, train, args.train_items))
            for env in _names(args.env, "--env") for receiver, train in zip(receivers, trains, strict=True)]


def _bench(args: argparse.Namespace) -> int:
    from persuasion_agents.benchmark import run_benchmark
    from persuasion_agents.classic_bench import CLASSIC_ENVS, run_classic_benchmark

    envs, names = _names(args.env, "--env"), _names(args.policies, "--policies")
    classic = [e for e in envs if e in CLASSIC_ENVS]
    if classic:  # no Receiver model: regret against the LP optimum
        policies = [p for p in names if p not in ("none", "best-fixed", "oracle")]
        rows = run_classic_benchmark(classic, policies, args.timesteps, args.out, args.seed)
        print((Path(args.out) / "classic_results.md").read_text())
        print(f"regret curves: {args.out}/regret.png")
        envs = [e for e in envs if e not in CLASSIC_ENVS]
        if not envs:
            return 0
        args.env = ",".join(envs)

    options = {"lm-advisor": {"advisor": args.advisor, "training": _advisor_training(args),
                              "out": str(Path(args.out) / "lm-advisor")},
               **_search_options(args),
               "rllib-ppo": {"num_env_runners": args.num_env_runners, "num_envs_per_env_runner": args.n_envs}}
    from persuasion_agents.benchmark import BenchmarkIncompleteError, markdown

    try:
        rows = run_benchmark(_settings(args), names, args.out, args.timesteps, args.seed,
                             args.featurizer, policy_options=options, max_calls=args.max_calls)
    except BenchmarkIncompleteError as exc:  # show the runs that finished; main says what failed
        if exc.rows:
            print(markdown(exc.rows))
        raise
    print(markdown(rows))
    print(f"results: {args.out}/results.json, results.csv, results.md; figure: {args.out}/accuracy.png")
    return 0


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
        lines.append(f"\n{split}: best fixed signal {int(u.mean(0).argmax())} ({u.mean(0).max():.3f}), best signal per "
                     f"item (the oracle) {u.max(1).mean():.3f}, {int(np.sum(u.max(1) > u.min(1)))} of {len(u)} items "
                     "scored differently under different signals")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    """The main job: record train and test tables, train the Advisors on the first, benchmark
    them on the second."""
    from pathlib import Path

    from persuasion_agents.benchmark import Setting, markdown, run_benchmark
    from persuasion_gym.tables import record

    out = Path(args.out)
    receiver = _make_receiver(args.receiver)
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
    rows = run_benchmark([setting], _names(args.policies, "--policies"), out / "bench", args.timesteps, args.seed,
                         args.featurizer)
    print(markdown(rows))
    print(f"figure: {out / 'bench' / 'accuracy.png'}  results: {out / 'bench' / 'results.md'}")
    if args.advisor_steps > 0:
        _demo_lm_advisor(args, receiver, out)
    return 0


def _demo_lm_advisor(args: argparse.Namespace, receiver, out: Path) -> None:
    """A brief GRPO run of the LM Advisor against the same Receiver, and the signals it writes."""
    from persuasion_agents.lm_advisor import LMAdvisor
    from persuasion_agents.lm_advisor.training import AdvisorTraining, train_lm_advisor

    print(f"training the LM Advisor ({args.advisor}) for {args.advisor_steps} GRPO steps against the Receiver",
          file=sys.stderr)
    env = _demo_env(args, receiver, "train", args.train_items, featurizer="hashed", action_type="text")
    questions = _demo_env(args, receiver, "test", 3, featurizer="hashed").dataset.texts
    advisor = LMAdvisor.load(args.advisor)
    before = advisor.write(questions)
    settings = AdvisorTraining(steps=args.advisor_steps, items_per_step=2, num_generations=4,
                               save_steps=args.advisor_steps, seed=args.seed)
    record = train_lm_advisor(env, advisor, out / "lm-advisor", settings, resume=True)
    after = LMAdvisor.load(str(out / "lm-advisor" / "advisor")).write(questions)
    for question, old, new in zip(questions, before, after, strict=True):
        print(f"\n{question[:90]}...\n  signal before training: {old!r}\n  signal after training:  {new!r}")
    print(f"\nLM Advisor: {record['steps']} steps, mean reward per step {[round(r, 3) for _, r in record['curve']]}, "
          f"saved to {out / 'lm-advisor' / 'advisor'}")
    tied = record.get("tied_steps", len(record["curve"]) if not any(r for _, r in record["curve"]) else 0)
    if record["curve"] and tied == len(record["curve"]):
        # GRPO learns from differences within a group of signals: none when all are rewarded alike.
        print("Every item's signals were rewarded alike, so the group baseline left nothing to learn from: the signals "
              "change once some of them help more than others (a stronger Receiver, RECEIVER=openai:MODEL@URL, or "
              "more --advisor-steps)")


def _serve(args: argparse.Namespace) -> int:
    """Serve one env to OpenEnv trainers until interrupted: sessions over one Receiver, cache
    and sandbox, the steps that arrive together played as one batch (persuasion_gym.serving)."""
    from persuasion_gym.serving.openenv import serve  # says how to install openenv-core, if it is missing
    from persuasion_gym.serving.sessions import SharedEnv

    if args.env in ("Persuasion-Prosecutor-v0", "Persuasion-Classic-v0"):
        raise ConfigError(f"serve --env {args.env}: a classic game has no task items for a remote Advisor to read; "
                          "serve a task env (Persuasion-GSM8K-v0, Persuasion-HumanEval-v0, ...) or a table")
    kwargs: dict[str, Any] = {}
    for entry in args.env_arg:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-arg {entry!r}: write KEY=VALUE, e.g. --env-arg max_signal_length=256")
        try:
            kwargs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key.strip()] = value  # a plain string
    given = {"split": args.split, "max_items": args.n_items, "data_path": args.data_path, "sandbox": args.sandbox,
             "protocol": args.protocol, "samples_per_cell": args.samples_per_cell}
    kwargs.update({k: v for k, v in given.items() if v is not None})
    if args.sandbox and not any(code in args.env for code in ("HumanEval", "MBPP")):
        raise ConfigError(f"--sandbox is for code envs (Persuasion-HumanEval-v0, Persuasion-MBPP-v0), not {args.env}")
    if args.signals_file:
        kwargs["signals"] = _read_signals(args.signals_file)
    table = args.env == "Persuasion-Table-v0"
    if table:
        kwargs.setdefault("table", args.table)
        if kwargs["table"] is None:
            raise ConfigError("serve --env Persuasion-Table-v0 needs --table PATH: the recorded table to serve")
    elif args.table:
        raise ConfigError("--table is for --env Persuasion-Table-v0; a task env replays a table with --receiver "
                          "table:PATH")
    elif args.receiver.startswith("table:"):
        kwargs["receiver"], table = args.receiver, True
    else:
        kwargs["receiver"] = _make_receiver(args.receiver, cache=not args.no_cache)
    kwargs.setdefault("action_type", args.action_type or ("index" if table else "text"))
    shared = SharedEnv.make(args.env, kwargs, args.batch_window_ms / 1000, args.seed)
    serve(shared, args.host, args.port, args.max_sessions)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's errors as this command's other errors: one line, the fix, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"persuasion-gym: error: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default. argparse's ArgumentDefaultsHelpFormatter would
    print "(default: None)" for the flags whose unset value means something (every item, the
    env's signals): those say it in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or not action.option_strings or unset:
            return text
        return f"{text} (default: %(default)s)"


def _count(value: str) -> int:
    """A flag counting items, samples or steps: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number: pass 1 or more") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is below 1: pass 1 or more")
    return number


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("prompt search and a prompted Advisor (policies gepa, prompted-advisor)")
    search.add_argument("--reflection-lm", default=None,
                        help="gepa: the spec of the model that reflects and proposes advice (default: the Receiver)")
    search.add_argument("--budget", type=_count, default=200,
                        help="gepa: the most Receiver calls its search makes (its seed, best-fixed, is paid apart)")
    search.add_argument("--advisor-lm", default=None,
                        help="prompted-advisor: the spec of the model that writes a hint per item (default: the "
                             "Receiver)")
    search.add_argument("--advisor-prompt", default=None,
                        help="prompted-advisor: a file holding its prompt, with {item} where the item goes (default: "
                             "persuasion_agents.prompted_advisor.DEFAULT_ADVISOR_PROMPT)")


def _search_options(args: argparse.Namespace) -> dict[str, dict]:
    """The gepa and prompted-advisor options the flags give (``_search_arguments``)."""
    prompt = Path(args.advisor_prompt).read_text(encoding="utf-8") if args.advisor_prompt else None
    return {"gepa": {"reflection_lm": args.reflection_lm, "budget": args.budget, "out": str(Path(args.out) / "gepa"),
                     "seed": args.seed},
            "prompted-advisor": {"advisor_lm": args.advisor_lm, **({"prompt": prompt} if prompt else {})}}


def _cap(value: str) -> int:
    """A cap on calls: a whole number, 0 for none."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number: pass 0 (no cap) or more") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is below 0: pass 0 (no cap) or more")
    return number


def _advisor_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LM Advisor (--algo lm-advisor, policy lm-advisor)")
    group.add_argument("--advisor", default="embedded", help="embedded, a hub id (gpt2), a local or trained directory")
    group.add_argument("--steps", type=_count, default=20, help="GRPO steps")
    group.add_argument("--items-per-step", type=_count, default=2, help="task items per GRPO step")
    group.add_argument("--num-generations", type=_count, default=4,
                       help="signals sampled per item (the group baseline)")
    group.add_argument("--beta", type=float, default=0.04, help="KL weight to the starting model")
    group.add_argument("--learning-rate", type=float, default=1e-5, help="the optimizer's learning rate")
    group.add_argument("--save-steps", type=_count, default=10, help="steps between checkpoints")
    group.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of every weight")
    group.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                       help="training precision (mixed, float32 weights): auto is bfloat16 on a CUDA GPU that has it, "
                            "float32 on the CPU")
    group.add_argument("--trl", action="append", default=[], metavar="KEY=VALUE",
                       help="any GRPOConfig field, repeatable, over the flags above: "
                            "--trl gradient_accumulation_steps=4 --trl use_vllm=true --trl vllm_mode=colocate "
                            "--trl loss_type=grpo (default: none)")


def build_parser() -> argparse.ArgumentParser:
    from persuasion_gym import __version__

    parser = _Parser(prog="persuasion-gym", description="Bayesian-persuasion alignment environments.")
    parser.add_argument("--version", action="version", version=f"persuasion-gym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary, formatter_class=_HelpFormatter)

    command("envs", "list the registered environment ids").set_defaults(run=_envs)
    check = command("check", "ask a Receiver one item (a GSM8K question by default)")
    check.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose task to ask")
    check.add_argument("--receiver", default="auto", help="receiver spec, e.g. openai:MODEL@URL")
    check.add_argument("--split", default="test", help="the split")
    check.add_argument("--item", type=int, default=0, help="item index in the split")
    check.add_argument("--signal", default="", help="signal text to send with the item (default: none)")
    check.add_argument("--data-path", default=None,
                       help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    check.add_argument("--no-cache", action="store_true", help="always call the Receiver")
    check.set_defaults(run=_check)
    rec = command("record", "record a response table (resumable)")
    rec.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose items and signals to record")
    rec.add_argument("--receiver", default="auto", help="receiver spec")
    rec.add_argument("--split", default="test",
                     help="the split (train, test; HumanEval also all; MBPP validation, prompt)")
    rec.add_argument("--n-items", type=_count, default=None, help="the first N items (default: all)")
    rec.add_argument("--samples", type=_count, default=1, help="responses per cell")
    rec.add_argument("--out", required=True, help="the table file to write (.npz)")
    rec.add_argument("--signals-file", default=None,
                     help='a JSON list of signal texts, e.g. ["", "Think step by step."] (default: the env\'s)')
    rec.add_argument("--data-path", default=None,
                     help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    rec.add_argument("--price-in", type=float, default=0.0, help="USD per million prompt tokens (for the cost shown)")
    rec.add_argument("--price-out", type=float, default=0.0, help="USD per million completion tokens")
    rec.add_argument("--sandbox", default=None, choices=["local", "ray"],
                     help="code envs: run the programs here or as tasks on the Ray cluster's CPUs (default: local)")
    rec.set_defaults(run=_record)

    rs = command("rescore", "re-score a table's stored responses with the current scorer (no Receiver call)")
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
    rs.set_defaults(run=_rescore)

    tr = command("train", "train an Advisor (SB3 PPO/A2C/DQN, a bandit, or the LM Advisor)")
    tr.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env to train on")
    tr.add_argument("--receiver", default="auto", help="receiver spec, or table:PATH")
    tr.add_argument("--algo", default="ppo",
                    help="ppo, a2c, dqn, epsilon-greedy, ucb, thompson, linucb, lm-advisor, rllib-ppo (on Ray)")
    tr.add_argument("--timesteps", type=_count, default=20_000, help="training episodes")
    tr.add_argument("--out", required=True, help="directory for the model, checkpoints, logs")
    tr.add_argument("--split", default="train", help="the training split")
    tr.add_argument("--n-items", type=_count, default=None,
                    help="train on the split's first N items (default: all of a table's, 200 on a live Receiver)")
    tr.add_argument("--eval-receiver", default=None, help="receiver for held-out evaluation (default: --receiver)")
    tr.add_argument("--eval-split", default="test", help="the held-out split")
    tr.add_argument("--eval-items", type=_count, default=100, help="held-out items to evaluate on")
    tr.add_argument("--eval-freq", type=_count, default=5_000, help="timesteps between evaluations and checkpoints")
    tr.add_argument("--n-envs", type=_count, default=16, help="envs per step (rllib-ppo: per env runner)")
    tr.add_argument("--num-env-runners", type=int, default=2, help="rllib-ppo: RLlib env runners (Ray actors)")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    tr.add_argument("--seed", type=int, default=0, help="the random seed")
    tr.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"],
                    help="observations: MiniLM sentence embeddings or hashed n-grams (auto: MiniLM when installed)")
    _advisor_arguments(tr)
    tr.add_argument("--protocol", default="direct", choices=["direct", "posterior"],
                    help="lm-advisor: direct (the signal alone) or posterior (signal + an item drawn from the belief)")
    tr.add_argument("--state-table", default=None,
                    help="lm-advisor under posterior: a table giving each item's state (default: estimated online)")
    tr.add_argument("--max-new-tokens", type=_count, default=24, help="lm-advisor: the signal's token budget")
    tr.set_defaults(run=_train)

    default_policies = "none,random,best-fixed,oracle,epsilon-greedy,ucb,thompson,linucb,ppo"
    be = command("bench", "benchmark signaling policies on held-out items")
    be.add_argument("--env", default="Persuasion-GSM8K-v0", help="env ids, comma-separated")
    be.add_argument("--receiver", default="auto", help="receiver specs (or table:PATH), comma-separated")
    be.add_argument("--train-receiver", default=None,
                    help="where trained policies learn, one per --receiver; tables need it (default: --receiver)")
    be.add_argument("--policies", default=default_policies,
                    help="policy names, comma-separated (fixed-K: always signal K)")
    be.add_argument("--split", default="test", help="the held-out split")
    be.add_argument("--n-items", type=_count, default=None, help="the held-out split's first N items (default: all)")
    be.add_argument("--train-split", default="train", help="the split trained policies learn on")
    be.add_argument("--train-items", type=_count, default=None,
                    help="the training split's first N items (default: all of a table's, 200 on a live Receiver)")
    be.add_argument("--timesteps", type=_count, default=20_000, help="training episodes per trained policy")
    be.add_argument("--out", required=True, help="directory for the runs, results.* and figures")
    be.add_argument("--seed", type=int, default=0, help="the random seed")
    be.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"],
                    help="observations: MiniLM sentence embeddings or hashed n-grams (auto: MiniLM when installed)")
    be.add_argument("--num-env-runners", type=int, default=2, help="rllib-ppo: RLlib env runners (Ray actors)")
    be.add_argument("--n-envs", type=_count, default=16, help="rllib-ppo: envs per env runner")
    _search_arguments(be)
    _advisor_arguments(be)
    be.set_defaults(run=_bench)

    co = command("compare", "the paper's comparison: none, prior, posterior and direct with a trained LM Advisor, "
                            "best fixed, oracle (an untrained --advisor is trained first)")
    _advisor_arguments(co)
    co.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env whose task to compare on")
    co.add_argument("--receiver", default="auto", help="the Receiver to evaluate against (may differ from training's)")
    co.add_argument("--split", default="test", help="the held-out split")
    co.add_argument("--n-items", type=_count, default=50, help="held-out items")
    co.add_argument("--train-items", type=_count, default=50,
                    help="training items for the prior and the best fixed signal")
    co.add_argument("--out", required=True, help="directory for results.* and the figure")
    co.add_argument("--seed", type=int, default=0, help="the random seed")
    co.add_argument("--arms", default=None,
                    help="more arms, by their bench policy names, comma-separated: gepa, prompted-advisor, ucb, ... "
                         "(default: none)")
    co.add_argument("--timesteps", type=_count, default=2_000, help="training episodes of the arms that learn online")
    _search_arguments(co)
    co.set_defaults(run=_compare)

    de = command("demo", "the main job: record, train, benchmark (offline by default)")
    de.add_argument("--receiver", default="auto", help="receiver spec")
    de.add_argument("--task", default="reasoning-gym", choices=["reasoning-gym", "gsm8k"],
                    help="reasoning-gym: chain_sum, 2-3 one-digit terms (DEMO_TASK), at the embedded model's level; "
                         "gsm8k: GSM8K's questions")
    de.add_argument("--train-items", type=_count, default=24, help="training questions to record")
    de.add_argument("--test-items", type=_count, default=24, help="test questions to record")
    de.add_argument("--policies", default=default_policies, help="policy names, comma-separated")
    de.add_argument("--timesteps", type=_count, default=10_000, help="training episodes per trained policy")
    de.add_argument("--advisor", default="embedded", help="the LM Advisor trained briefly at the end")
    de.add_argument("--advisor-steps", type=int, default=2, help="its GRPO steps (0: skip)")
    de.add_argument("--out", default="runs/demo", help="directory for the tables, the benchmark, the LM Advisor")
    de.add_argument("--data-path", default=None,
                    help="--task gsm8k: GSM8K's directory or .jsonl (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    de.add_argument("--seed", type=int, default=0, help="the random seed")
    de.add_argument("--featurizer", default="auto", choices=["auto", "minilm", "hashed"],
                    help="observations: MiniLM sentence embeddings or hashed n-grams (auto: MiniLM when installed)")
    de.set_defaults(run=_demo)
    sv = command("serve", "serve an env to OpenEnv trainers (TRL, SkyRL): many sessions over one Receiver, cache and "
                          "sandbox, their steps batched (extra [openenv])")
    sv.add_argument("--env", default="Persuasion-GSM8K-v0", help="the env to serve: any registered persuasion env")
    sv.add_argument("--receiver", default="auto",
                    help="receiver spec, or table:PATH; give an endpoint ?max_concurrency= of at least --max-sessions")
    sv.add_argument("--split", default=None, help="the split (default: the env's)")
    sv.add_argument("--n-items", type=_count, default=None, help="the split's first N items (default: all)")
    sv.add_argument("--data-path", default=None,
                    help="the data set's file or directory (default: $PERSUASION_GYM_DATA_DIR, else the hub)")
    sv.add_argument("--signals-file", default=None,
                    help='a JSON list of signal texts, e.g. ["", "Think step by step."] (default: the env\'s)')
    sv.add_argument("--table", default=None,
                    help="--env Persuasion-Table-v0: the recorded table to serve (default: none; it needs one)")
    sv.add_argument("--action-type", default=None, choices=["text", "index"],
                    help="text: a signal's text or its library index; index: indices only (default: text, index on a "
                         "table)")
    sv.add_argument("--protocol", default=None, choices=["direct", "posterior", "prior", "none"],
                    help="what the Receiver reads (default: the env's, direct: the signal)")
    sv.add_argument("--samples-per-cell", type=_count, default=None,
                    help="Receiver samples per (item, signal); visits cycle through them (default: 1)")
    sv.add_argument("--sandbox", default=None, choices=["local", "ray"],
                    help="code envs: run the programs here or as tasks on the Ray cluster's CPUs (default: local)")
    sv.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="any other argument of the env, repeatable; VALUE is read as JSON if it parses: --env-arg "
                         "max_signal_length=256 (default: none)")
    sv.add_argument("--no-cache", action="store_true", help="always call the Receiver")
    sv.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000, help="the port to listen on (0: a free one, printed)")
    sv.add_argument("--max-sessions", type=_count, default=64, help="OpenEnv sessions at once")
    sv.add_argument("--batch-window-ms", type=float, default=20.0,
                    help="how long a batch waits after its first step for the other sessions' steps")
    sv.add_argument("--seed", type=int, default=0, help="the server's own draws (information items, table samples)")
    sv.add_argument("--max-calls", type=_cap, default=0,
                    help="the most new Receiver calls the server may make; past it steps fail (0: no cap)")
    sv.set_defaults(run=_serve)
    from persuasion_gym.cli.cache_command import add_cache_parser

    add_cache_parser(commands)
    from persuasion_gym.receivers.budget import DEFAULT_MAX_CALLS

    for sub in (rec, tr, be, co, de):
        sub.add_argument("--max-calls", type=_cap, default=DEFAULT_MAX_CALLS,
                         help="the most new Receiver calls the command may make: its plan, printed first, is refused "
                              "past it before any call, and it stops there while running (0: no cap)")
    for sub in (check, rec, rs, tr, be, co, de, sv):
        sub.add_argument("-v", "--verbose", action="store_true",
                         help="also log every HTTP request and retry (httpx, openai), and print an error's traceback")
        sub.add_argument("--ray-address", default=None,
                         help="join this Ray cluster for ray: specs and --algo rllib-ppo (default: $RAY_ADDRESS, "
                              "else Ray starts on this machine)")
    return parser


def _rerun(args: argparse.Namespace) -> str:
    """What the same command again does: every answer that came back is cached."""
    if args.command == "train" and args.algo in ("ppo", "a2c", "dqn", "rllib-ppo", "lm-advisor"):
        return ("run the same command with --resume to continue from the last checkpoint, the cached answers "
                "reused")
    if args.command == "train":  # a bandit trains in one go
        return "run the same command again: the cached answers are reused"
    if args.command == "bench":
        return (f"run the same command again: it reuses the runs finished in {Path(args.out) / 'runs'} and asks "
                "only the missing answers")
    return "run the same command again and only the missing ones are asked"


def _rerun_hint(args: argparse.Namespace, exc: ReceiverError) -> str:
    """What running the command again does after a Receiver failure: nothing where a rerun
    fails alike (a ConfigError: missing key, bad spec), or where the command says it in its own
    summary (bench, the LM Advisor's training)."""
    if isinstance(exc, ConfigError) or args.command in ("check", "bench"):
        return ""
    if args.command == "train" and args.algo == "lm-advisor":
        return ""
    return "; " + _rerun(args)


# The commands that ask a Receiver many times, and may be interrupted: the same command again resumes.
_RESUMABLE = ("record", "train", "bench", "compare", "demo")


def _interrupted(args: argparse.Namespace, cache: ResponseCache | None, before: int) -> str:
    """What Ctrl-C leaves: the answers saved since the command began, and how to go on."""
    if cache is None:
        return "persuasion-gym: interrupted"
    saved = len(cache) - before
    return (f"persuasion-gym: interrupted: {saved} new answer{'s are' if saved != 1 else ' is'} saved in the response "
            f"cache ({cache.path}); {_rerun(args)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    if getattr(args, "ray_address", None):
        os.environ["RAY_ADDRESS"] = args.ray_address  # read by every Ray join (persuasion_gym.cluster)
    # This package's own notes (which Receiver 'auto' chose, where replicas run) always; the SDK's
    # line per HTTP request and retry only with -v: they drown the progress bars and the summary.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    for package in ("persuasion_gym", "persuasion_agents"):
        logging.getLogger(package).setLevel(logging.INFO)
    cache, before = None, 0
    try:
        if hasattr(args, "env"):
            for env_id in _names(args.env, "--env"):
                _check_env_id(env_id)
            args.env = ",".join(_names(args.env, "--env"))
        if args.command in _RESUMABLE:  # the one store every Receiver of the command writes to
            from persuasion_gym.receivers import ResponseCache
            from persuasion_gym.receivers.cache import default_cache_path

            cache = ResponseCache(default_cache_path())
            before = len(cache)
        from persuasion_gym.receivers.budget import limit_calls

        with limit_calls(getattr(args, "max_calls", None)):  # --max-calls holds for every Receiver made
            return args.run(args)
    except (PersuasionGymError, ValueError) as exc:
        if verbose:
            traceback.print_exc()
        message = str(exc)
        if isinstance(exc, ReceiverError):  # every answer that came back is cached: say what a rerun does
            message += _rerun_hint(args, exc)
        print(f"persuasion-gym: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print(_interrupted(args, cache, before), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
