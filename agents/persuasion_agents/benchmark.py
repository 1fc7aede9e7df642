"""The benchmark harness: signaling policies x envs x Receivers, on held-out items.

Each (env, Receiver, policy) run is written to ``DIR/runs/`` as soon as it finishes, with the
settings it ran under (its ``run_key``), so an interrupted benchmark resumes with the runs it
had and a rerun under other settings recomputes the runs they change; Receiver calls go
through the cache and are never paid twice. On a table the per-item rewards are exact (the
cells' means); on a live Receiver they are one scored response per item.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import persuasion_gym
from persuasion_agents.bandits import UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
from persuasion_agents.baselines import BestFixed, FixedSignal, NoSignal, Oracle, UniformRandom
from persuasion_agents.deep import SB3Policy
from persuasion_agents.evaluation import spent
from persuasion_agents.policy import Policy
from persuasion_agents.rllib_ppo import RLlibPPOPolicy
from persuasion_agents.spending import plan_setting
from persuasion_agents.statistics import bootstrap_ci, paired_p_value
from persuasion_agents.training import train_online
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError, ReceiverError
from persuasion_gym.receivers.base import spending
from persuasion_gym.receivers.budget import check_plans, limit_calls
from persuasion_gym.tables import load_table

if TYPE_CHECKING:
    from persuasion_agents.gepa_search import GEPAPolicy
    from persuasion_agents.lm_advisor.policy import LMAdvisorPolicy
    from persuasion_gym.receivers import Receiver

logger = logging.getLogger(__name__)

POLICIES: dict[str, Callable[[], Policy]] = {
    "none": NoSignal,
    "random": UniformRandom,
    "best-fixed": BestFixed,
    "oracle": Oracle,
    "epsilon-greedy": EpsilonGreedy,
    "ucb": UCB1,
    "thompson": ThompsonSampling,
    "linucb": LinUCB,
    "ppo": lambda: SB3Policy("ppo"),
    "a2c": lambda: SB3Policy("a2c"),
    "dqn": lambda: SB3Policy("dqn"),
    "rllib-ppo": RLlibPPOPolicy,  # RLlib on a Ray cluster ([ray] extra)
}


def make_env(env_id: str, receiver: str, split: str, n_items: int | None, featurizer: str = "auto") -> gym.Env:
    """An env for a benchmark setting; ``receiver="table:PATH"`` replays a table."""
    if env_id == "Persuasion-Table-v0":
        return gym.make(env_id, table=receiver.removeprefix("table:"), max_items=n_items, featurizer=featurizer)
    if receiver.startswith("table:") and n_items is None:  # every item the table holds
        n_items = load_table(receiver.removeprefix("table:")).n_items
    return gym.make(env_id, receiver=receiver, split=split, max_items=n_items, featurizer=featurizer)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


@dataclass
class Setting:
    """Where policies are trained and where they are evaluated."""

    env_id: str
    receiver: str
    split: str = "test"
    n_items: int | None = None
    train_receiver: str | None = None  # default: ``receiver`` (must be given for tables)
    train_split: str = "train"
    train_items: int | None = None

    @property
    def key(self) -> str:
        return f"{self.env_id}|{self.receiver}|{self.split}|{self.n_items}"


def make_policy(name: str, options: dict[str, Any] | None = None) -> Policy:
    """A policy by name: the registry's, ``fixed-K`` for signal K, or ``lm-advisor`` (options:
    ``advisor``, a source or trained directory; ``training``, an ``AdvisorTraining``; ``out``).
    ``options`` are the policy's keyword arguments (``rllib-ppo``: ``num_env_runners``, ...)."""
    fixed = re.fullmatch(r"fixed-(\d+)", name)
    if fixed:
        return FixedSignal(int(fixed.group(1)))
    if name == "lm-advisor":
        from persuasion_agents.lm_advisor.policy import LMAdvisorPolicy

        return LMAdvisorPolicy(**(options or {}))
    if name == "gepa":
        from persuasion_agents.gepa_search import GEPAPolicy

        return GEPAPolicy(**(options or {}))
    if name == "prompted-advisor":
        from persuasion_agents.prompted_advisor import PromptedAdvisor

        return PromptedAdvisor(**(options or {}))
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}: use one of {', '.join((*POLICIES, *TEXT_POLICIES))}, or fixed-K")
    return POLICIES[name](**(options or {}))


# Policies that write their signals in words (not registry entries: they take options).
TEXT_POLICIES = ("lm-advisor", "gepa", "prompted-advisor")


def options_for(name: str, setting: Setting, policy_options: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A policy's options in a setting: what was given, and for the text policies that ask a
    model of their own, that model (default: the setting's Receiver, a large model advising
    itself)."""
    options = dict((policy_options or {}).get(name) or {})
    if name == "gepa" and options.get("reflection_lm") is None:
        options["reflection_lm"] = setting.train_receiver or setting.receiver
    if name == "prompted-advisor" and options.get("advisor_lm") is None:
        options["advisor_lm"] = setting.receiver
    return options


def policy_names(policies: Sequence[str], settings: Sequence[Setting], eval_envs: Sequence[gym.Env]) -> list[str]:
    """The policy names, stripped and checked against every setting's env before any run
    starts, so a bad one does not fail the benchmark after the others have run."""
    names = [name.strip() for name in policies if name.strip()]
    if not names:
        raise ConfigError(f"--policies names no policy: use some of {', '.join((*POLICIES, *TEXT_POLICIES))}, fixed-K")
    for setting, env in zip(settings, eval_envs, strict=True):
        n = int(cast(spaces.Discrete, env.action_space).n)
        signals = f"fixed-0..fixed-{n - 1} (the env's {n} signals)"
        for name in names:
            fixed = re.fullmatch(r"fixed-(\d+)", name)
            if fixed and int(fixed.group(1)) >= n:
                raise ConfigError(f"--policies: {name} asks for signal {fixed.group(1)}, but {setting.env_id} with "
                                  f"{setting.receiver} has {n} signals: use {signals}")
            if not fixed and name not in TEXT_POLICIES and name not in POLICIES:
                raise ConfigError(f"--policies: unknown policy {name!r}: use one of "
                                  f"{', '.join((*POLICIES, *TEXT_POLICIES))}, or {signals}")
    return names


# Their greedy actions never draw from the seeded rng, so the seed does not change their runs.
SEEDLESS = (NoSignal, FixedSignal, Oracle, BestFixed)


def _jsonable(value: Any) -> Any:
    """A policy option as a run key records it: a dataclass (``AdvisorTraining``) as its fields,
    an object with an ``identity`` (an ``LMAdvisor``) as that."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    identity = getattr(value, "identity", None)
    if isinstance(identity, dict):
        return identity
    raise ConfigError(f"policy option {value!r}: a benchmark run records its settings, and this one has no JSON "
                      "form (pass a str, number, dataclass or an object with an `identity` dict)")


def _advisor_key(advisor: Any) -> tuple[Any, bool]:
    """What an ``lm-advisor`` run's ``advisor`` option is (a trained directory: its
    ``advisor.json`` too, so retraining into the same directory counts), and whether the
    policy trains it first (untrained: ``embedded``, a hub id, a source directory)."""
    if isinstance(advisor, str | Path):
        from persuasion_agents.lm_advisor.model import ADVISOR_FILE

        file = Path(advisor) / ADVISOR_FILE
        if not file.is_file():
            return str(advisor), True
        info = json.loads(file.read_text())
        return {"source": str(advisor), ADVISOR_FILE: info}, info.get("trained_on") is None
    return _jsonable(advisor), advisor.info.trained_on is None


def run_key(name: str, setting: Setting, eval_env: gym.Env, timesteps: int, seed: int,
            options: dict[str, Any]) -> dict[str, Any]:
    """Every setting a run's result depends on, as JSON: the held-out items and what the eval
    env says made their rewards (Receiver identity, dataset hash, signal texts, ...), the seed
    where the policy draws from it, and for a policy that trains, where and how (training
    items, featurizer, timesteps where it takes them, its options). A saved run is reused
    only under an equal key."""
    provenance = cast(PersuasionEnv, eval_env.unwrapped).provenance()
    # The package version alone changes no result; the featurizer matters only to training; the
    # backend fingerprints are what the answers said afterwards, not a setting.
    eval_source = {k: v for k, v in provenance.items()
                   if k not in ("package_version", "featurizer", "system_fingerprints")}
    key: dict[str, Any] = {"policy": name, "env": setting.env_id, "receiver": setting.receiver,
                           "split": setting.split, "n_items": setting.n_items, "eval_env": eval_source}
    options = dict(options)
    if name == "gepa":
        options.pop("out", None)  # where it searches, not how: run_benchmark derives it from this key
    if name == "lm-advisor":
        options.pop("out", None)  # where it trains, not how: run_benchmark derives it from this key
        options["advisor"], trains = _advisor_key(options.get("advisor", "embedded"))
        if not trains:
            options.pop("training", None)
        # It trains for ``training.steps``, seeded by ``training.seed``, and writes greedily.
        uses_timesteps = False
    else:
        policy = make_policy(name, options)
        trains = policy.needs_training and name != "oracle"  # the oracle reads the held-out answers
        uses_timesteps = not isinstance(policy, BestFixed)  # it reads the training rewards whole
        if not isinstance(policy, SEEDLESS):
            key["seed"] = seed
    if options:
        key["options"] = _jsonable(options)
    if trains:
        key.update(train_receiver=setting.train_receiver or setting.receiver, train_split=setting.train_split,
                   train_items=setting.train_items, featurizer=provenance["featurizer"])
        if uses_timesteps:
            key["timesteps"] = timesteps
    return cast(dict[str, Any], json.loads(json.dumps(key, sort_keys=True)))  # as a saved run holds it


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.removesuffix("."): value}


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def saved_run(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The run saved at ``path`` if it ran under ``key``; else None, saying why it is recomputed."""
    if not path.is_file():
        return None
    run = cast(dict[str, Any], json.loads(path.read_text()))
    saved = run.get("run_key")
    if saved == key:
        return run
    if saved is None:
        logger.warning("%s: saved by an older version, which did not record the run's settings: recomputing", path)
        return None
    before, now = _flat(saved), _flat(key)
    changed = sorted(k for k in before.keys() | now.keys() if k not in before or k not in now or before[k] != now[k])

    def settings(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={_shown(values[k])}" if k in values else f"no {k}" for k in changed)

    logger.warning("%s: saved under %s; now %s: recomputing", path, settings(before), settings(now))
    return None


def run_policy(policy_name: str, setting: Setting, eval_env: gym.Env, train_env: Callable[[], gym.Env],
               timesteps: int, seed: int, progress: bool, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit one policy as it needs, act greedily on every held-out item, score the actions
    (signal indices, or the texts an LM Advisor writes)."""
    core = cast(PersuasionEnv, eval_env.unwrapped)
    policy = make_policy(policy_name, options)
    observations = core.features
    assert observations is not None  # make_env's envs observe features
    policy.bind(int(cast(spaces.Discrete, core.action_space).n), observations.shape[1], seed)
    curve: list[tuple[int, float]] = []
    # What fitting costs counts with the run: best-fixed and the oracle ask every cell of their
    # items, the learners their episodes (RLlib's env runners, in other processes, excepted).
    before = spending()
    if policy_name == "oracle" or not policy.needs_training:
        policy.fit(eval_env)  # the oracle reads the held-out answers; the others only sizes
    elif isinstance(policy, SB3Policy):
        policy.fit(train_env(), timesteps, progress=progress, seed=seed)
        curve = policy.curve
    elif isinstance(policy, RLlibPPOPolicy):
        try:
            policy.fit(train_env(), timesteps, progress=progress, seed=seed)
        finally:
            policy.stop()  # frees the env runners, also when training failed; the trained module acts here
        curve = policy.curve
    elif policy_name == "lm-advisor":
        advisor_policy = cast("LMAdvisorPolicy", policy)
        advisor_policy.fit(train_env(), progress=progress)
        curve = advisor_policy.curve
    elif policy_name == "gepa":
        cast("GEPAPolicy", policy).fit(train_env(), progress=progress)
    elif type(policy).update is not Policy.update:  # an online learner
        curve = train_online(policy, train_env(), timesteps, seed=seed, progress=progress)
    else:
        policy.fit(train_env(), timesteps)
    side: tuple[Receiver, ...] = getattr(policy, "side_receivers", ())  # its own models (reflection, Advisor)
    fitting = spending(before, exclude=side)
    n = len(core.dataset)
    info = {"item_index": np.arange(n), "text": core.dataset.texts}
    actions = np.asarray(policy.greedy(observations, info))
    side = getattr(policy, "side_receivers", ())
    texts = actions.dtype.kind in "OU"
    if not texts:
        actions = actions.astype(np.int64)
    elif core.table is not None:
        raise ValueError(f"{policy_name} writes its signals, and a recorded table only knows its own: benchmark it "
                         "on a live Receiver (--receiver openai:MODEL@URL, embedded, ...)")
    oracle_value = None
    if core.table is not None:
        oracle_value = float(core.table.utilities[core._rows].max(axis=1).mean())
        rewards = core.table.utilities[core._rows, actions]
        used = (core.table.prompt_tokens + core.table.completion_tokens)[core._rows, actions]
        tokens, calls, cost = int(used.sum()), 0, 0.0
        reasoning = int(core.table.reasoning_tokens[core._rows, actions].sum())
        truncated = float(core.table.truncated[core._rows, actions].mean(axis=-1).sum())
    else:
        outcomes = core.evaluate(actions.tolist(), progress=progress)
        rewards = np.array([o.reward for o in outcomes])
        assert core.receiver is not None  # no table: a live Receiver
        answers = spent(outcomes, core.receiver)  # the accounting compare uses too
        tokens, reasoning, calls = int(answers.tokens), int(answers.reasoning_tokens), int(answers.calls)
        truncated, cost = answers.truncated, answers.cost_usd
    run = {"policy": policy_name, "env": setting.env_id, "receiver": setting.receiver, "split": setting.split,
           "actions": actions.tolist(), "rewards": rewards.tolist(), "curve": curve,
           "receiver_calls": calls + fitting.calls, "tokens": tokens + fitting.tokens,
           "reasoning_tokens": reasoning + fitting.reasoning_tokens, "cost_usd": cost + fitting.cost_usd,
           "fit_receiver_calls": fitting.calls, "truncated": truncated, "oracle_value": oracle_value,
           "provenance": core.provenance()}
    if side:  # the policy's own model calls, apart from the Receiver's
        own = spending(exclude=(), only=side)
        run.update(advisor_calls=own.calls, advisor_tokens=own.tokens, advisor_cost_usd=own.cost_usd,
                   advisor_lm=[r.identity for r in side])
    if getattr(policy, "record", None):  # what a search found and how (gepa: the text, its trace)
        run[policy_name] = policy.record  # type: ignore[attr-defined]
    advisor = getattr(policy, "advisor", None)
    if advisor is not None:  # trained against one Receiver, evaluated against this one: say both
        run["advisor"] = advisor.identity
        run["trained_on"] = (advisor.info.trained_on or {}).get("receiver")
    return run


def run_benchmark(
    settings: Sequence[Setting], policies: Sequence[str], out: str | Path, timesteps: int = 20_000,
    seed: int = 0, featurizer: str = "auto", progress: bool = True,
    policy_options: dict[str, dict[str, Any]] | None = None, max_calls: int | None = None,
) -> list[dict[str, Any]]:
    """Run every policy on every setting (resuming finished runs from ``out/runs`` that ran
    under the same settings, see ``run_key``; the others are recomputed), then write
    ``results.json``, ``results.csv``, ``results.md`` and the figures. Returns the summary rows.
    ``policies`` are stripped of whitespace and checked before any run starts.

    A run whose Receiver requests fail after their retries does not stop the others: every
    run that can finish does and is saved, the results hold the finished ones, and then
    ``BenchmarkIncompleteError`` says which runs failed and why (its ``rows``: the finished
    runs'). Every answer that came back is cached, so the same call again runs only the
    missing runs and asks the Receiver only what it has not answered.

    Before any call, the plan of each live Receiver (its runs' stages, what the cache holds) is
    printed, and a plan of more than ``max_calls`` new calls (None: no cap) is refused with a
    ``CallBudgetError``; while running, the cap holds too (the LM Advisor's calls are estimated)."""
    out = Path(out)
    eval_envs = [make_env(s.env_id, s.receiver, s.split, s.n_items, featurizer) for s in settings]
    names = policy_names(policies, settings, eval_envs)
    pending: list[list[tuple[str, dict[str, Any]]]] = []  # per setting: the runs no saved run answers
    for setting, eval_env in zip(settings, eval_envs, strict=True):
        pending.append([(name, options_for(name, setting, policy_options)) for name in names
                        if not _reusable(out, name, setting, eval_env, timesteps, seed, policy_options)])
    plans = [plan for setting, eval_env, todo in zip(settings, eval_envs, pending, strict=True)
             for plan in plan_setting(setting, eval_env, todo, timesteps)]
    for plan in plans:
        print(plan.describe(), file=sys.stderr)
    check_plans(plans, max_calls)  # before any call: a plan past the cap asks nothing
    with limit_calls(max_calls):
        return _run_all(settings, eval_envs, names, out, timesteps, seed, featurizer, progress, policy_options)


def _reusable(out: Path, name: str, setting: Setting, eval_env: gym.Env, timesteps: int, seed: int,
              policy_options: dict[str, dict[str, Any]] | None) -> bool:
    """Whether a run saved under these settings answers this one (quietly: the run says why not)."""
    path = out / "runs" / f"{slug(setting.key)}__{name}.json"
    if not path.is_file():
        return False
    key = run_key(name, setting, eval_env, timesteps, seed, options_for(name, setting, policy_options))
    return bool(json.loads(path.read_text()).get("run_key") == key)


def _run_all(settings: Sequence[Setting], eval_envs: list[gym.Env], names: list[str], out: Path, timesteps: int,
             seed: int, featurizer: str, progress: bool,
             policy_options: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    (out / "runs").mkdir(parents=True, exist_ok=True)
    runs = []
    failed: list[tuple[str, Setting, ReceiverError]] = []
    envs: list[gym.Env] = list(eval_envs)  # their Receivers' counts say how many requests failed in all
    for setting, eval_env in zip(settings, eval_envs, strict=True):
        cached_train: list[gym.Env] = []

        def train_env(setting: Setting = setting, cached_train: list[gym.Env] = cached_train) -> gym.Env:
            if not cached_train:
                receiver = setting.train_receiver or setting.receiver
                if receiver.startswith("table:") and setting.train_receiver is None:
                    raise ValueError("a table setting needs --train-receiver table:TRAIN.npz: policies are "
                                     "trained on other items than they are evaluated on")
                cached_train.append(make_env(setting.env_id, receiver, setting.train_split, setting.train_items,
                                             featurizer))
                envs.append(cached_train[0])
            return cached_train[0]

        for name in names:
            path = out / "runs" / f"{slug(setting.key)}__{name}.json"
            options = options_for(name, setting, policy_options)
            key = run_key(name, setting, eval_env, timesteps, seed, options)
            saved = saved_run(path, key)
            if saved is not None:
                runs.append(saved)
                continue
            if name in ("lm-advisor", "gepa") and "out" in options:
                # Each setting and training trains its own Advisor (or search), resumably: a
                # finished one made under other settings is never taken for this one.
                training = {k: key.get(k) for k in ("env", "options", "train_receiver", "train_split", "train_items")}
                options["out"] = str(Path(options["out"]) / f"{slug(setting.key)}__{_digest(training)}")
            try:
                run = run_policy(name, setting, eval_env, train_env, timesteps, seed, progress, options)
            except ReceiverError as exc:  # a flaky endpoint: the other runs still can finish
                failed.append((name, setting, exc))
                continue
            run["setting"] = setting.__dict__
            run["run_key"] = key
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(run))
            tmp.replace(path)
            runs.append(run)
    rows = summarize(runs, seed)
    if runs:  # nothing to tabulate or plot without a finished run
        write_results(rows, runs, out)
    if failed:
        raise BenchmarkIncompleteError(_incomplete(failed, runs, envs, len(settings) > 1, out), rows)
    return rows


class BenchmarkIncompleteError(ReceiverError):
    """Some benchmark runs failed on Receiver requests that failed after their retries; the
    others finished and are saved. ``rows``: the finished runs' summary rows."""

    def __init__(self, message: str, rows: list[dict[str, Any]]):
        super().__init__(message)
        self.rows = rows


def _incomplete(failed: list[tuple[str, Setting, ReceiverError]], runs: list[dict[str, Any]], envs: list[gym.Env],
                several_settings: bool, out: Path) -> str:
    """What a benchmark with failed runs says: which runs failed and why, what is saved, and
    what the same command again does."""
    def label(name: str, env_id: str, receiver: str) -> str:
        return f"{name} on {env_id} with {receiver}" if several_settings else name

    receivers = {id(r): r for env in envs if (r := cast(PersuasionEnv, env.unwrapped).receiver) is not None}
    requests = sum(r.stats.calls for r in receivers.values())
    failures = sum(r.stats.failures for r in receivers.values())
    why = "; ".join(f"{label(name, setting.env_id, setting.receiver)} ({exc})" for name, setting, exc in failed)
    # Receivers in other processes (RLlib's env runners) are not counted here.
    sent = f", as {failures} of the {requests} Receiver requests sent failed after their retries" if failures else ""
    message = f"{len(failed)} of {len(failed) + len(runs)} benchmark runs failed{sent}: {why}. "
    if runs:
        finished = ", ".join(label(run["policy"], run["env"], run["receiver"]) for run in runs)
        message += (f"The {'run' if len(runs) == 1 else f'{len(runs)} runs'} that finished ({finished}) "
                    f"{'is' if len(runs) == 1 else 'are'} saved in {out / 'runs'} and in {out}/results.json, "
                    f"results.csv and results.md, which lack the failed ones; ")
    else:
        message += "No run finished, so no results were written; "
    resumes = " (an LM Advisor's training continues from its last checkpoint)" if any(
        name == "lm-advisor" for name, _, _ in failed) else ""
    missing = "missing run is" if len(failed) == 1 else f"{len(failed)} missing runs are"
    return message + (f"every answer that came back is in the response cache: run the same command again and only "
                      f"the {missing} run{resumes}, asking the Receiver only what it has not answered yet")


def summarize(runs: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Per run: accuracy with a 95% bootstrap CI, lift over no signal (points and %) with a
    paired test, regret against the oracle where the rewards are exact (a table)."""
    rows = []
    for run in runs:
        group = [r for r in runs if r["env"] == run["env"] and r["receiver"] == run["receiver"]]
        rewards = np.asarray(run["rewards"])
        accuracy = float(rewards.mean())
        low, high = bootstrap_ci(rewards, seed=seed)
        row: dict[str, Any] = {
            "env": run["env"], "receiver": run["receiver"], "policy": run["policy"], "n_items": len(rewards),
            "accuracy": accuracy, "ci_low": low, "ci_high": high,
            "receiver_calls": run["receiver_calls"], "tokens": run["tokens"], "cost_usd": run["cost_usd"],
            "reasoning_tokens": run.get("reasoning_tokens", 0), "truncated": run.get("truncated", 0),
        }
        if "trained_on" in run:
            row["trained_on"] = json.dumps(run["trained_on"], sort_keys=True)
        if "advisor_calls" in run:  # the policy's own model (a prompted Advisor, GEPA's reflection)
            row.update({k: run[k] for k in ("advisor_calls", "advisor_tokens", "advisor_cost_usd")})
        baseline = next((r for r in group if r["policy"] == "none"), None)
        if baseline is not None:
            base = np.asarray(baseline["rewards"])
            row["lift_points"] = 100 * (accuracy - base.mean())
            row["lift_percent"] = 100 * (accuracy - base.mean()) / base.mean() if base.mean() > 0 else None
            row["p_vs_none"] = paired_p_value(rewards, base)
        if run.get("oracle_value") is not None:  # exact on a table
            row["regret"] = run["oracle_value"] - accuracy
        rows.append(row)
    return rows


COLUMNS = ["env", "receiver", "policy", "n_items", "accuracy", "ci_low", "ci_high", "lift_points", "lift_percent",
           "p_vs_none", "regret", "truncated", "receiver_calls", "tokens", "reasoning_tokens", "cost_usd", "trained_on",
           "advisor_calls", "advisor_tokens", "advisor_cost_usd"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| env | receiver | policy | accuracy [95% CI] | lift (points, absolute) | lift (%, relative) | p vs none "
             "| regret | cut off | calls | tokens | cost ($) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        thinking = f" ({r['reasoning_tokens']} reasoning)" if r.get("reasoning_tokens") else ""
        lines.append(
            f"| {r['env']} | {r['receiver']} | {r['policy']} | "
            f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
            f"{_fmt(r.get('lift_points'))} | {_fmt(r.get('lift_percent'))} | {_fmt(r.get('p_vs_none'))} | "
            f"{_fmt(r.get('regret'))} | {_fmt(r.get('truncated'))} | {r['receiver_calls']} | {r['tokens']}{thinking} | "
            f"{r['cost_usd']:.4f} |")
    for r in rows:
        if r.get("trained_on"):
            lines.append(f"\n{r['policy']} on {r['receiver']}: trained against {r['trained_on']}")
        if r.get("advisor_calls") is not None:
            lines.append(f"\n{r['policy']} on {r['receiver']}: its own model made {r['advisor_calls']} calls, "
                         f"{r['advisor_tokens']} tokens, ${r['advisor_cost_usd']:.4f} (not in the columns above)")
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict[str, Any]], runs: list[dict[str, Any]], out: Path) -> None:
    provenance = {f"{r['env']}|{r['receiver']}": r["provenance"] for r in runs}
    (out / "results.json").write_text(json.dumps(
        {"package_version": persuasion_gym.__version__, "rows": rows, "provenance": provenance}, indent=2))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "provenance"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**{c: row.get(c) for c in COLUMNS},
                             "provenance": json.dumps(provenance[f"{row['env']}|{row['receiver']}"])})
    (out / "results.md").write_text(markdown(rows))
    plot(rows, runs, out)


def plot(rows: list[dict[str, Any]], runs: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["env"], r["receiver"]) for r in rows})
    width = max(6, 1.1 * len(rows) / len(groups)) * len(groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(width, 4), squeeze=False)
    for ax, (env, receiver) in zip(axes[0], groups, strict=True):
        group = [r for r in rows if (r["env"], r["receiver"]) == (env, receiver)]
        acc = np.array([r["accuracy"] for r in group])
        err = np.array([[r["accuracy"] - r["ci_low"] for r in group], [r["ci_high"] - r["accuracy"] for r in group]])
        ax.bar(range(len(group)), acc, yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(group)), [r["policy"] for r in group], rotation=30, ha="right")
        ax.set_ylabel("accuracy (95% bootstrap CI)")
        ax.set_title(f"{env}\n{receiver[:60]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)
    curves = [r for r in runs if r.get("curve")]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4))
        for run in curves:
            steps, values = zip(*run["curve"], strict=True)
            ax.plot(steps, values, label=f"{run['policy']} ({run['receiver'][:30]})")
        ax.set_xlabel("training episodes")
        ax.set_ylabel("mean reward (moving window)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "learning_curves.png", dpi=120)
        plt.close(fig)
