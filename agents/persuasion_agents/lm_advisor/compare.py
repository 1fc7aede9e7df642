"""The paper's comparison on held-out items, for one Receiver, in one call (``docs/text_signals.md``).

- ``none``: the question alone (the empty signal).
- ``prior``: the question with an information item drawn from mu_0 (exact expectation over the
  draw: sum_x mu_0(x) u(q, x), from every cell of the held-out items).
- ``posterior``: the Advisor trained under ``posterior`` observes the state x* = theta(q)
  (exact: the best cell of q), *samples* g ~ pi(. | q, x*) (seeded, at the temperature its
  likelihoods are scored at: the Receiver's Bayes update assumes g ~ pi); the Receiver answers
  with g and an item drawn from mu_g (one seeded draw).
- ``direct``: the Advisor trained under ``direct`` writes its signal from q alone (greedy).
- ``best-fixed``: the library signal with the best mean on the training items.
- ``oracle``: the best library signal per held-out item (the upper bound of index policies).

Each Advisor arm uses an Advisor trained under its own protocol: an untrained ``advisor`` is
trained twice against the Receiver on the training items, under ``direct`` (``OUT/lm-advisor``)
and under ``posterior`` with the training items' exact states (``OUT/lm-advisor-posterior``),
both resumably. A trained ``advisor`` without a ``posterior_advisor`` serves both arms, and the
results say so (``trained_under`` per row, ``comparison.advisors`` in the provenance).

mu_0 is the frequency of each state on the training items. States are the best cell of each
item; ties (frequent with 0/1 rewards) are broken at random, seeded by ``seed``
(``bayes.states``); how many items tied is reported. Every Receiver answer goes through the
cache: a rerun is free. Each arm reports the Receiver calls it paid in this run, the tokens of
its answers and their cost, counted as ``bench`` counts them (``evaluation.spent``; ``prior``:
the expectation over its draw). Lift is reported in points (absolute) and in percent (relative
to ``none``, as the paper reports it).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.benchmark import Setting, run_policy
from persuasion_agents.environments import text_twin
from persuasion_agents.evaluation import best_fixed_signal, cell_outcomes, rewards_of, run_record, spent
from persuasion_agents.lm_advisor.grpo_config import AdvisorTraining
from persuasion_agents.lm_advisor.model import LMAdvisor
from persuasion_agents.lm_advisor.training import train_lm_advisor
from persuasion_agents.registry import options_for
from persuasion_agents.results import summarize, write_results
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import TextPosteriorProtocol, bayes
from persuasion_gym.receivers.base import spending


def _load(advisor: LMAdvisor | str | Path) -> LMAdvisor:
    return LMAdvisor.load(str(advisor)) if isinstance(advisor, str | Path) else advisor


def _trained(advisor: LMAdvisor) -> dict[str, Any]:
    """What a row records of the Advisor that wrote its signals."""
    record = advisor.info.trained_on or {}
    return {"advisor": advisor.identity, "trained_on": record.get("receiver"), "trained_under": record.get("protocol")}


def sampling_temperature(advisor: LMAdvisor) -> float:
    """The temperature the posterior arm samples at: the one the Advisor's likelihoods (the
    committed scheme) are scored at, so that g ~ pi as the Receiver's update assumes."""
    return float(getattr(advisor.template, "temperature", None) or 1.0)


def paper_comparison(env_id: str, receiver: str, advisor: LMAdvisor | str, out: str | Path, split: str = "test",
                     n_items: int | None = 50, train_items: int | None = 50, seed: int = 0,
                     progress: bool = True, training: AdvisorTraining | None = None,
                     posterior_advisor: LMAdvisor | str | None = None,
                     signals: Sequence[str] | None = None, arms: Sequence[str] = (),
                     arm_options: dict[str, dict[str, Any]] | None = None,
                     timesteps: int = 2_000) -> list[dict[str, Any]]:
    """Run the six arms on ``n_items`` held-out items of ``split`` (and ``train_items`` training
    items for mu_0, the best fixed signal and the Advisors' training); write ``results.*`` to
    ``out``; return the rows.

    ``advisor`` writes the ``direct`` arm's signals, ``posterior_advisor`` (default: ``advisor``
    when it is trained, else a copy of it trained under ``posterior``) the ``posterior`` arm's.
    An Advisor that has not been trained yet is first trained by GRPO against this Receiver on
    the training items under its arm's protocol (``training``, into ``out/lm-advisor`` and
    ``out/lm-advisor-posterior``, resumably), so that one call reproduces the paper's setup.
    ``signals``: the information items (default: the task's signal library; it must hold '').
    ``arms``: more policies to compare, by their ``bench`` names (``gepa``, ``prompted-advisor``,
    ``ucb``, ...), fitted on the training items and scored on the same held-out ones, with
    their options in ``arm_options`` (as ``bench``'s ``policy_options``), the ones that learn
    online for ``timesteps`` episodes.
    ``seed`` seeds the tie-break of the states, the posterior arm's signals and its draws."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    advisor = _load(advisor)
    setting = Setting(env_id, receiver, split, n_items)
    library: dict[str, Any] = {} if signals is None else {"signals": list(signals)}
    test_env = gym.make(env_id, receiver=receiver, split=split, max_items=n_items, featurizer="hashed", **library)
    train_env = gym.make(env_id, receiver=receiver, split="train", max_items=train_items, featurizer="hashed",
                         **library)
    core, train_core = cast(PersuasionEnv, test_env.unwrapped), cast(PersuasionEnv, train_env.unwrapped)
    if core.receiver is None:
        raise ConfigError("the comparison needs a live Receiver: a recorded table only knows its own signals, not "
                          "the texts the Advisor writes")
    live = core.receiver
    items = list(core.signals)
    empty = core.signals.empty_index
    if empty is None:
        raise ValueError("the comparison needs the empty signal '' among the env's signals (the `none` arm)")

    # The reward tables: every (item, library signal) cell, one cached, concurrent batch per split.
    train_cells, test_cells = cell_outcomes(train_env, progress), cell_outcomes(test_env, progress)
    u_train, u_test = rewards_of(train_cells), rewards_of(test_cells)
    built = spent([o for row in train_cells + test_cells for o in row], live)
    print(f"reward tables: {u_train.size} training and {u_test.size} held-out cells, {round(built.calls)} paid "
          "Receiver calls (the arms below count the cells they use)", file=sys.stderr)
    theta_train, theta = bayes.states(u_train, seed), bayes.states(u_test, seed)
    tied_train, tied = bayes.tied(u_train), bayes.tied(u_test)
    print(f"states: {int(tied_train.sum())} of {len(u_train)} training and {int(tied.sum())} of {len(u_test)} "
          f"held-out items tie (broken at random, seed {seed})", file=sys.stderr)
    prior = bayes.state_prior(theta_train, len(items))

    # The Advisors: each arm's trained under its own protocol, unless one trained Advisor serves both.
    fitting: dict[str, dict[str, Any]] = {}
    shared = posterior_advisor is None and advisor.info.trained_on is not None
    if posterior_advisor is None:
        posterior_advisor = advisor if shared else copy.deepcopy(advisor)  # a copy before training changes it
    posterior_advisor = _load(posterior_advisor)
    train_questions = train_core.dataset.texts
    for arm, model in (("direct", advisor), ("posterior", posterior_advisor)):
        if model.info.trained_on is not None:
            continue
        print(f"the {arm} arm's Advisor ({model.info.source}) is untrained: training it against this Receiver "
              f"first, under the {arm} protocol", file=sys.stderr)
        if arm == "direct":
            env: PersuasionEnv = text_twin(train_env)
        else:  # the paper's protocol, with the training items' exact states and their prior
            protocol = TextPosteriorProtocol(len(items), prior, model, items, train_questions, states=theta_train,
                                             tied=tied_train)
            env = PersuasionEnv(task=train_core.task, receiver=train_core.receiver, dataset=train_core.dataset,
                                signals=items, featurizer="hashed", action_type="text", protocol=protocol)
        before = spending()
        train_lm_advisor(env, model, out / ("lm-advisor" if arm == "direct" else "lm-advisor-posterior"),
                         training or AdvisorTraining(), resume=True, progress=progress)
        paid = spending(before)
        fitting[arm] = {"receiver_calls": paid.calls, "tokens": paid.tokens, "cost_usd": paid.cost_usd}
    if shared:
        under = (advisor.info.trained_on or {}).get("protocol")
        print(f"one Advisor serves both the direct and the posterior arm, trained under {under!r}",
              file=sys.stderr)

    temperature = sampling_temperature(posterior_advisor)
    provenance = {**core.provenance(), "comparison": {
        "prior": prior.tolist(), "train_items": len(u_train), "seed": seed,
        "states": {"training_ties": int(tied_train.sum()), "held_out_ties": int(tied.sum()),
                   "tie_break": bayes.TIE_BREAK, "tie_seed": seed},
        "advisors": {"direct": _trained(advisor), "posterior": _trained(posterior_advisor),
                     "one_advisor_for_both": shared},
        "signals": {"direct": "greedy", "posterior": f"sampled (seed {seed}, temperature {temperature:g})"},
        "training": fitting}}

    questions = core.dataset.texts
    best = best_fixed_signal(u_train)
    n = len(questions)
    runs = [
        run_record("none", setting, u_test[:, empty], [empty] * n, spent([row[empty] for row in test_cells], live),
                   provenance),
        run_record("prior", setting, u_test @ prior, [], spent([o for row in test_cells for o in row], live,
                                                               np.tile(prior, n).tolist()),
                   provenance, {"prior": prior.tolist()}),
        run_record("best-fixed", setting, u_test[:, best], [best] * n, spent([row[best] for row in test_cells], live),
                   provenance),
        run_record("oracle", setting, u_test.max(axis=1), theta.tolist(),
                   spent([row[x] for row, x in zip(test_cells, theta, strict=True)], live), provenance),
    ]
    direct = advisor.write(questions)
    outcomes = core.evaluate(direct, progress=progress)
    runs.append(run_record("direct (lm-advisor)", setting, [o.reward for o in outcomes], direct,
                           spent(outcomes, live), provenance, _trained(advisor)))
    # posterior: the Advisor observes each item's state, samples g ~ pi(. | q, x*), and the
    # Receiver acts on g and a draw from mu_g.
    protocol = TextPosteriorProtocol(len(items), prior, posterior_advisor, items, questions, states=theta, tied=tied)
    text_env = PersuasionEnv(task=core.task, receiver=core.receiver, dataset=core.dataset, signals=items,
                             featurizer="hashed", action_type="text", protocol=protocol)
    observed = [items[x] for x in theta]
    sent = posterior_advisor.write(questions, items=observed, sample=True, seed=seed, temperature=temperature)
    batch = text_env.play(np.arange(len(questions)), sent, np.random.default_rng(seed), progress=progress)
    assert batch.outcomes is not None and batch.beliefs is not None  # a live Receiver's batch, with beliefs
    on_state = float(batch.beliefs[np.arange(len(questions)), theta].mean())
    runs.append(run_record("posterior (lm-advisor)", setting, batch.rewards, sent, spent(batch.outcomes, live),
                           provenance, {**_trained(posterior_advisor), "information_index": batch.chosen.tolist(),
                                        "posterior_on_state": on_state}))
    for name in arms:  # the baselines bench knows, on the same held-out items and Receiver
        options = options_for(name, setting, arm_options)
        if name == "gepa":
            options.setdefault("out", str(out / "gepa"))
        runs.append({**run_policy(name, setting, test_env, lambda: train_env, timesteps, seed, progress, options),
                     "provenance": provenance})
    rows = summarize(runs, seed)
    for row, run in zip(rows, runs, strict=True):
        for key in ("trained_under", "posterior_on_state"):
            if key in run:
                row[key] = run[key]
    write_results(rows, runs, out)
    return rows
