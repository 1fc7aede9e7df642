"""What a benchmark will ask its live Receivers, before it asks: one plan per Receiver.

Each policy's stages come from what it does: ``none`` and ``fixed-K`` ask one known prompt per
held-out item, the oracle every held-out cell, best-fixed every training cell, the learners at
most one training cell per episode (the cache answers a repeated cell), the LM Advisor
``steps x items_per_step x num_generations`` signals; each asks at most one answer per held-out
item to be scored. Tables cost nothing and have no plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym

from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.persuasion.exchange import plan_exchange
from persuasion_gym.receivers import make_receiver
from persuasion_gym.receivers.budget import Plan, Stage

# Training items a live setting uses when none are given: every training cell is a paid call.
DEFAULT_LIVE_TRAIN_ITEMS = 200
_UNTRAINED = ("none", "random", "oracle")


def train_items(receiver: str, train_receiver: str | None, train_items: int | None) -> int | None:
    """The training items a setting uses: all of a table's, else ``DEFAULT_LIVE_TRAIN_ITEMS``
    unless given (a live Receiver pays for each)."""
    if train_items is not None or (train_receiver or receiver).startswith("table:"):
        return train_items
    return DEFAULT_LIVE_TRAIN_ITEMS


def plan_setting(setting: Any, eval_env: gym.Env, pending: Sequence[tuple[str, dict[str, Any]]],
                 timesteps: int) -> list[Plan]:
    """The plans of one benchmark setting's runs still to do (``pending``: name, options)."""
    core = cast(PersuasionEnv, eval_env.unwrapped)
    plans: list[Plan] = []
    if not pending:
        return plans
    eval_plan = _plan_for(core) if core.receiver is not None else None
    train_spec = setting.train_receiver or setting.receiver
    train_plan: Plan | None = None
    if not train_spec.startswith("table:") and any(name not in _UNTRAINED for name, _ in pending):
        train_receiver = core.receiver if train_spec == setting.receiver else make_receiver(train_spec)
        assert train_receiver is not None
        train_plan = eval_plan if train_receiver is core.receiver else _plan_for_receiver(train_receiver)
        train_data = core.task.load(setting.train_split, max_items=setting.train_items)
        signals = list(core.signals)
        items = [item for item in train_data.items for _ in signals]
        grid = plan_exchange("", core.task, train_receiver, items, signals * len(train_data))
    n, k = len(core.dataset), len(core.signals)
    for name, options in pending:
        if eval_plan is not None:
            eval_plan.stages.extend(_held_out(name, core, n, k))
        if train_plan is None or name in _UNTRAINED or name.startswith("fixed-"):
            continue
        if name == "best-fixed":
            train_plan.stages.append(Stage(f"{name}: every training cell", grid.calls, grid.cached,
                                           grid.prompt_tokens))
        elif name == "gepa":  # its seed is best-fixed's choice; its search is bounded by its budget
            train_plan.stages.append(Stage(f"{name}: every training cell (the seed)", grid.calls, grid.cached,
                                           grid.prompt_tokens))
            train_plan.stages.append(Stage(f"{name}: search (budget)", int(options.get("budget", 200)), exact=False))
        elif name == "lm-advisor":
            training = options.get("training")
            if training is not None and not is_trained(options.get("advisor")):
                signals_written = training.signals_written()
                train_plan.stages.append(Stage(f"{name}: training ({training.steps} GRPO steps)", signals_written,
                                               exact=False))
        else:  # a learner: one answer per episode, a cell the cache holds answered free
            calls = min(timesteps, grid.calls)
            new = min(timesteps, grid.new)
            per_call = grid.prompt_tokens // max(grid.new, 1)
            train_plan.stages.append(Stage(f"{name}: training ({timesteps:,} episodes)", calls, calls - new,
                                           per_call * new, exact=False))
    for plan in (eval_plan, train_plan):
        if plan is not None and plan.stages and plan not in plans:
            plans.append(plan)
    return plans


def _held_out(name: str, core: PersuasionEnv, n: int, k: int) -> list[Stage]:
    """What a policy asks to be scored on the held-out items."""
    items = list(core.dataset.items)
    if name == "oracle":  # every held-out cell: its answers are among them
        signals = list(core.signals)
        return [plan_exchange(f"{name}: every held-out cell", core.task, core.receiver,  # type: ignore[arg-type]
                              [item for item in items for _ in signals], signals * n)]
    fixed = 0 if name == "none" else int(name.split("-")[1]) if name.startswith("fixed-") else None
    if fixed is not None and fixed < k:
        return [plan_exchange(f"{name}: held-out answers", core.task, core.receiver,  # type: ignore[arg-type]
                              items, [core.signals[fixed]] * n)]
    return [Stage(f"{name}: held-out answers", n, exact=False)]


def _plan_for(core: PersuasionEnv) -> Plan:
    assert core.receiver is not None
    return _plan_for_receiver(core.receiver)


def _plan_for_receiver(receiver: Any) -> Plan:
    return Plan(repr(receiver), completion_budget=receiver.completion_budget, price_in=receiver.price_in,
                price_out=receiver.price_out)


def is_trained(advisor: Any) -> bool:
    """Whether an LM Advisor source is already trained (its directory records it)."""
    import json

    if isinstance(advisor, str) and (Path(advisor) / "advisor.json").is_file():
        return json.loads((Path(advisor) / "advisor.json").read_text()).get("trained_on") is not None
    return False


def _live_env(env_id: str, receiver: Any, split: str, n_items: int | None) -> PersuasionEnv | None:
    """A cheap env (hashed features) to read a setting's items and signals from; None for a table."""
    if isinstance(receiver, str) and receiver.startswith("table:") or env_id == "Persuasion-Table-v0":
        return None
    return cast(PersuasionEnv, gym.make(env_id, receiver=receiver, split=split, max_items=n_items,
                                        featurizer="hashed").unwrapped)


def plan_training(env_id: str, receiver: Any, algo: str, split: str, n_items: int | None, timesteps: int,
                  eval_items: int, evaluations: int, training: Any = None) -> list[Plan]:
    """The plan of ``persuasion-gym train``: its training episodes (or GRPO signals) and its
    held-out evaluations, at most."""
    core = _live_env(env_id, receiver, split, n_items)
    if core is None:
        return []
    assert core.receiver is not None
    plan = _plan_for(core)
    if algo == "lm-advisor" and training is not None:
        plan.stages.append(Stage(f"{algo}: training ({training.steps} GRPO steps)",
                                 training.signals_written(), exact=False))
    else:
        signals = list(core.signals)
        grid = plan_exchange("", core.task, core.receiver, [i for i in core.dataset.items for _ in signals],
                             signals * len(core.dataset))
        calls = min(timesteps, grid.calls)
        plan.stages.append(Stage(f"{algo}: training ({timesteps:,} episodes)", calls, calls - min(timesteps, grid.new),
                                 exact=False))
        if evaluations and eval_items:
            plan.stages.append(Stage(f"{algo}: {evaluations} held-out evaluations", evaluations * eval_items,
                                     exact=False))
    return [plan]


def plan_comparison(env_id: str, receiver: Any, split: str, n_items: int, train_split: str, train_items: int,
                    training: Any = None) -> list[Plan]:
    """The plan of ``persuasion-gym compare``: every held-out and training cell (the prior,
    best-fixed and the oracle read them), the LM Advisor's training, its posterior and direct answers."""
    core = _live_env(env_id, receiver, split, n_items)
    if core is None:
        return []
    assert core.receiver is not None
    plan = _plan_for(core)
    signals = list(core.signals)
    for name, data in (("held-out cells", core.dataset), ("training cells", core.task.load(train_split,
                                                                                           max_items=train_items))):
        plan.stages.append(plan_exchange(name, core.task, core.receiver, [i for i in data.items for _ in signals],
                                         signals * len(data)))
    if training is not None:  # an untrained Advisor is trained twice: once per protocol
        for protocol in ("direct", "posterior"):
            plan.stages.append(Stage(f"lm-advisor ({protocol}): training ({training.steps} GRPO steps)",
                                     training.signals_written(), exact=False))
    plan.stages.append(Stage("posterior and direct answers", 2 * len(core.dataset), exact=False))
    return [plan]
