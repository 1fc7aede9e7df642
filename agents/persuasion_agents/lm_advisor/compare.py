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
the cache: a rerun is free. Each arm reports the Receiver calls it paid in this run, the tokens
of its answers and their cost, as ``bench`` does (``prior``: the expectation over its draw).
Lift is reported in points (absolute) and in percent (relative to ``none``, as the paper
reports it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.benchmark import Setting, summarize, write_results
from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_agents.lm_advisor.policy import text_twin
from persuasion_agents.lm_advisor.training import AdvisorTraining, train_lm_advisor
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import TextPosteriorProtocol, bayes
from persuasion_gym.persuasion.exchange import Outcome
from persuasion_gym.receivers import Receiver


@dataclass
class Spent:
    """What an arm's answers took: Receiver calls paid in this run, tokens, cost (USD)."""

    calls: float = 0.0
    tokens: float = 0.0
    cost_usd: float = 0.0
    reasoning_tokens: float = 0.0
    truncated: float = 0.0  # answers cut off by the token limit


def _spent(outcomes: Sequence[Outcome], receiver: Receiver, weights: Sequence[float] | None = None) -> Spent:
    """Calls and cost count the answers paid now (a cache hit is free), tokens every answer,
    as ``bench`` counts them; ``weights`` makes it an expectation over a draw (the prior arm)."""
    spent = Spent()
    for outcome, weight in zip(outcomes, [1.0] * len(outcomes) if weights is None else weights, strict=True):
        spent.tokens += weight * outcome.usage.total_tokens
        spent.reasoning_tokens += weight * outcome.usage.reasoning_tokens
        spent.truncated += weight * outcome.truncated
        if not outcome.cached:
            spent.calls += weight
            spent.cost_usd += weight * receiver.cost_of(outcome.usage)
    return spent


def _run(name: str, setting: Setting, rewards: np.ndarray | Sequence[float], core: PersuasionEnv, actions: list,
         spent: Spent, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"policy": name, "env": setting.env_id, "receiver": setting.receiver, "split": setting.split,
            "actions": actions, "rewards": np.asarray(rewards, dtype=np.float64).tolist(), "curve": [],
            "receiver_calls": round(spent.calls), "tokens": round(spent.tokens), "cost_usd": spent.cost_usd,
            "reasoning_tokens": round(spent.reasoning_tokens), "truncated": spent.truncated, "oracle_value": None,
            "provenance": core.provenance(), **(extra or {})}


def _cells(core: PersuasionEnv, progress: bool) -> list[list[Outcome]]:
    """Every (item, library signal) cell's outcome, as one cached, concurrent batch."""
    n, k = len(core.dataset), len(core.signals)
    outcomes = core.evaluate([s for _ in range(n) for s in range(k)], [i for i in range(n) for _ in range(k)],
                             progress=progress)
    return [outcomes[i * k:(i + 1) * k] for i in range(n)]


def paper_comparison(env_id: str, receiver: str, advisor: LMAdvisor | str, out: str | Path, split: str = "test",
                     n_items: int | None = 50, train_items: int | None = 50, seed: int = 0,
                     progress: bool = True, training: AdvisorTraining | None = None) -> list[dict[str, Any]]:
    """Run the six arms on ``n_items`` held-out items of ``split`` (and ``train_items`` training
    items for mu_0 and the best fixed signal); write ``results.*`` to ``out``; return the rows.
    An Advisor that has not been trained yet is first trained by GRPO against this Receiver on
    the training items (``training``, into ``out/lm-advisor``, resumably), so that one call
    reproduces the paper's setup."""
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
    live = core.receiver
    items = list(core.signals)
    empty = core.signals.empty_index
    if empty is None:
        raise ValueError("the comparison needs the empty signal '' among the env's signals (the `none` arm)")
    if advisor.info.trained_on is None:
        print(f"the Advisor ({advisor.info.source}) is untrained: training it against this Receiver first",
              file=sys.stderr)
        train_lm_advisor(text_twin(train_env), advisor, out / "lm-advisor", training or AdvisorTraining(),
                         resume=True, progress=progress)

    train_cells = _cells(cast(PersuasionEnv, train_env.unwrapped), progress)
    test_cells = _cells(core, progress)
    u_train = np.array([[o.reward for o in row] for row in train_cells])
    u_test = np.array([[o.reward for o in row] for row in test_cells])
    built = _spent([o for row in train_cells + test_cells for o in row], live)
    print(f"reward tables: {u_train.size} training and {u_test.size} held-out cells, {round(built.calls)} paid "
          "Receiver calls (the arms below count the cells they use)", file=sys.stderr)
    prior = bayes.state_prior(bayes.states(u_train), len(items))
    theta = bayes.states(u_test)
    questions = core.dataset.texts
    best = int(np.argmax(u_train.mean(axis=0)))
    column = [row[empty] for row in test_cells]
    runs = [
        _run("none", setting, u_test[:, empty], core, [empty] * len(questions), _spent(column, live)),
        _run("prior", setting, u_test @ prior, core, [], _spent([o for row in test_cells for o in row], live,
                                                                np.tile(prior, len(questions)).tolist()),
             {"prior": prior.tolist()}),
        _run("best-fixed", setting, u_test[:, best], core, [best] * len(questions),
             _spent([row[best] for row in test_cells], live)),
        _run("oracle", setting, u_test.max(axis=1), core, theta.tolist(),
             _spent([row[x] for row, x in zip(test_cells, theta, strict=True)], live)),
    ]
    trained = {"advisor": advisor.identity, "trained_on": (advisor.info.trained_on or {}).get("receiver")}
    direct = advisor.write(questions)
    outcomes = core.evaluate(direct, progress=progress)
    runs.append(_run("direct (lm-advisor)", setting, [o.reward for o in outcomes], core, direct,
                     _spent(outcomes, live), trained))
    # posterior: the Advisor observes each item's state and the Receiver acts on a draw from mu_g.
    protocol = TextPosteriorProtocol(len(items), prior, advisor, items, questions, states=theta)
    text_env = PersuasionEnv(task=core.task, receiver=core.receiver, dataset=core.dataset, signals=items,
                             featurizer="hashed", action_type="text", protocol=protocol)
    observed = [items[x] for x in theta]
    signals = advisor.write(questions, items=observed)
    batch = text_env.play(np.arange(len(questions)), signals, np.random.default_rng(seed), progress=progress)
    assert batch.outcomes is not None  # a live Receiver's batch
    runs.append(_run("posterior (lm-advisor)", setting, batch.rewards, core, signals, _spent(batch.outcomes, live),
                     {**trained, "information_index": batch.chosen.tolist()}))
    rows = summarize(runs, seed)
    write_results(rows, runs, out)
    return rows
