"""The benchmark harness: signaling policies x envs x Receivers, on held-out items.

Each (env, Receiver, policy) run is written to ``DIR/runs/`` as soon as it finishes, with the
settings it ran under (its ``run_key``, ``saved_runs``), so an interrupted benchmark resumes
with the runs it had and a rerun under other settings recomputes the runs they change;
Receiver calls go through the cache and are never paid twice. On a table the per-item rewards
are exact (the cells' means); on a live Receiver they are one scored response per item.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from persuasion_agents.environments import TrainingEnv, make_env
from persuasion_agents.evaluation import held_out, run_record
from persuasion_agents.registry import make_policy, options_for, policy_names
from persuasion_agents.results import summarize, write_results
from persuasion_agents.saved_runs import run_key, run_path, saved_run, training_out
from persuasion_agents.spending import plan_setting
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ReceiverError
from persuasion_gym.receivers.base import spending
from persuasion_gym.receivers.budget import check_plans, limit_calls


@dataclass
class Setting:
    """Where policies are trained and where they are evaluated."""

    # The help is bench's too (persuasion_agents.commands.bench builds its flags from it).
    env_id: str = field(metadata={"help": "the env id"})
    receiver: str = field(metadata={"help": "the Receiver spec, or table:PATH"})
    split: str = field(default="test", metadata={"help": "the held-out split"})
    n_items: int | None = field(default=None, metadata={"help": "the held-out split's first N items (default: all)",
                                                        "min": 1})
    train_receiver: str | None = field(default=None, metadata={
        "help": "where trained policies learn, one per --receiver; tables need it (default: --receiver)"})
    train_split: str = field(default="train", metadata={"help": "the split trained policies learn on"})
    train_items: int | None = field(default=None, metadata={
        "help": "the training split's first N items (default: all of a table's, 200 on a live Receiver)", "min": 1})

    @property
    def key(self) -> str:
        return f"{self.env_id}|{self.receiver}|{self.split}|{self.n_items}"


def run_policy(policy_name: str, setting: Setting, eval_env: gym.Env, train_env: Callable[[], gym.Env],
               timesteps: int, seed: int, progress: bool, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit one policy (``Policy.fit``: on the training env for ``timesteps`` if it needs
    training, else on ``eval_env``), act greedily on every held-out item, score the actions
    (signal indices, or the texts a text policy writes)."""
    core = cast(PersuasionEnv, eval_env.unwrapped)
    policy = make_policy(policy_name, options)
    observations = core.features
    assert observations is not None  # make_env's envs observe features
    policy.bind(int(cast(spaces.Discrete, core.action_space).n), observations.shape[1], seed)
    # What fitting costs counts with the run: best-fixed and the oracle ask every cell of their
    # items, the learners their episodes (RLlib's env runners, in other processes, excepted).
    before = spending()
    try:  # the oracle reads the held-out answers; the other untrained policies only sizes or signals
        env, steps = (train_env(), timesteps) if policy.needs_training else (eval_env, 0)
        policy.fit(env, steps, seed=seed, progress=progress)
    finally:
        policy.close()  # frees the env runners, also when training failed; the fitted policy acts here
    fitting = spending(before, exclude=policy.side_receivers)  # its own models (reflection, Advisor) apart
    n = len(core.dataset)
    actions = np.asarray(policy.greedy(observations, {"item_index": np.arange(n), "text": core.dataset.texts}))
    if actions.dtype.kind not in "OU":
        actions = actions.astype(np.int64)
    elif core.table is not None:
        raise ValueError(f"{policy_name} writes its signals, and a recorded table only knows its own: benchmark it "
                         "on a live Receiver (--receiver openai:MODEL@URL, embedded, ...)")
    rewards, answers, oracle_value = held_out(eval_env, actions, progress)  # the accounting compare uses too
    run = run_record(policy_name, setting, rewards, actions.tolist(), answers, core.provenance(), curve=policy.curve,
                     fitting=fitting, oracle_value=oracle_value)
    side = policy.side_receivers  # now also the models it asked while acting (a prompted Advisor's)
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
    path = run_path(out, setting, name)
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
    trainings: list[TrainingEnv] = []
    for setting, eval_env in zip(settings, eval_envs, strict=True):
        train_env = TrainingEnv(setting, featurizer)
        trainings.append(train_env)
        for name in names:
            path = run_path(out, setting, name)
            options = options_for(name, setting, policy_options)
            key = run_key(name, setting, eval_env, timesteps, seed, options)
            saved = saved_run(path, key)
            if saved is not None:
                runs.append(saved)
                continue
            if name in ("lm-advisor", "gepa") and "out" in options:
                # Each setting and training trains its own Advisor (or search), resumably: a
                # finished one made under other settings is never taken for this one.
                options["out"] = training_out(options["out"], setting, key)
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
        # Every env's Receiver counts: how many requests failed in all.
        envs = [*eval_envs, *(t.env for t in trainings if t.env is not None)]
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
