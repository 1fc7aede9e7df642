"""The paper's comparison on held-out items, for one Receiver, in one call (``text_signals.md``).

- ``none``: the question alone (the empty signal).
- ``prior``: the question with an information item drawn from mu_0 (exact expectation over the
  draw: sum_x mu_0(x) u(q, x), from every cell of the held-out items).
- ``posterior``: the trained Advisor observes the state x* = theta(q) (exact: the best cell of
  q), writes g; the Receiver answers with g and an item drawn from mu_g (one seeded draw).
- ``direct``: the trained Advisor's signal alone (greedy).
- ``best-fixed``: the library signal with the best mean on the training items.
- ``oracle``: the best library signal per held-out item (the upper bound of index policies).

mu_0 is the frequency of each state on the training items. Every Receiver answer goes through
the cache: a rerun is free. Lift is reported in points (absolute) and in percent (relative to
``none``, as the paper reports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.benchmark import Setting, summarize, write_results
from persuasion_agents.evaluation import reward_table
from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import TextPosteriorProtocol, bayes


def _run(name: str, setting: Setting, rewards: np.ndarray | Sequence[float], core: PersuasionEnv, actions: list,
         calls: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"policy": name, "env": setting.env_id, "receiver": setting.receiver, "split": setting.split,
            "actions": actions, "rewards": np.asarray(rewards, dtype=np.float64).tolist(), "curve": [],
            "receiver_calls": calls, "tokens": 0, "cost_usd": 0.0, "oracle_value": None,
            "provenance": core.provenance(), **(extra or {})}


def paper_comparison(env_id: str, receiver: str, advisor: LMAdvisor | str, out: str | Path, split: str = "test",
                     n_items: int | None = 50, train_items: int | None = 50, seed: int = 0,
                     progress: bool = True) -> list[dict[str, Any]]:
    """Run the six arms on ``n_items`` held-out items of ``split`` (and ``train_items`` training
    items for mu_0 and the best fixed signal); write ``results.*`` to ``out``; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    advisor = advisor if isinstance(advisor, LMAdvisor) else LMAdvisor.load(advisor)
    setting = Setting(env_id, receiver, split, n_items)
    test_env = gym.make(env_id, receiver=receiver, split=split, max_items=n_items, featurizer="hashed")
    train_env = gym.make(env_id, receiver=receiver, split="train", max_items=train_items, featurizer="hashed")
    core = cast(PersuasionEnv, test_env.unwrapped)
    if core.receiver is None:
        raise ConfigError("the comparison needs a live Receiver: a recorded table only knows its own signals, not "
                          "the texts the Advisor writes")
    stats = core.receiver.stats
    items = list(core.signals)
    empty = core.signals.empty_index
    if empty is None:
        raise ValueError("the comparison needs the empty signal '' among the env's signals (the `none` arm)")

    def calls_since(before: int) -> int:
        return stats.calls - before

    before = stats.calls
    u_train = reward_table(train_env, progress=progress)
    u_test = reward_table(test_env, progress=progress)
    table_calls = calls_since(before)
    prior = bayes.state_prior(bayes.states(u_train), len(items))
    theta = bayes.states(u_test)
    questions = core.dataset.texts
    best = int(np.argmax(u_train.mean(axis=0)))
    runs = [
        _run("none", setting, u_test[:, empty], core, [empty] * len(questions), table_calls),
        _run("prior", setting, u_test @ prior, core, [], 0, {"prior": prior.tolist()}),
        _run("best-fixed", setting, u_test[:, best], core, [best] * len(questions), 0),
        _run("oracle", setting, u_test.max(axis=1), core, theta.tolist(), 0),
    ]
    trained = {"advisor": advisor.identity, "trained_on": (advisor.info.trained_on or {}).get("receiver")}
    before = stats.calls
    direct = advisor.write(questions)
    outcomes = core.evaluate(direct, progress=progress)
    runs.append(_run("direct (lm-advisor)", setting, [o.reward for o in outcomes], core, direct, calls_since(before),
                     trained))
    # posterior: the Advisor observes each item's state and the Receiver acts on a draw from mu_g.
    protocol = TextPosteriorProtocol(len(items), prior, advisor, items, questions, states=theta)
    text_env = PersuasionEnv(task=core.task, receiver=core.receiver, dataset=core.dataset, signals=items,
                             featurizer="hashed", action_type="text", protocol=protocol)
    observed = [items[x] for x in theta]
    signals = advisor.write(questions, items=observed)
    before = stats.calls
    batch = text_env.play(np.arange(len(questions)), signals, np.random.default_rng(seed), progress=progress)
    runs.append(_run("posterior (lm-advisor)", setting, batch.rewards, core, signals, calls_since(before),
                     {**trained, "information_index": batch.chosen.tolist()}))
    rows = summarize(runs, seed)
    write_results(rows, runs, out)
    return rows
