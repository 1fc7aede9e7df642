"""Prompt search: GEPA optimises the advice text itself against the Receiver, with no Advisor.

GEPA (the ``gepa`` package, extra ``[search]``) evolves one text component, ``advice``,
seeded by the library's best fixed signal on the training items. Each candidate is scored
through the env's batched, cached exchange; its reflection model (any Receiver spec) reads,
per training item, the Receiver's answer, its score and the gold answer, and proposes a new
text. The search stops before its Receiver calls could pass ``budget``: an iteration asks at
most two minibatches and the validation items, so it stops while that still fits. GEPA saves
its state in ``out`` and resumes from it; the cache makes a rerun's answers free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from persuasion_agents.evaluation import best_fixed_signal, reward_table
from persuasion_agents.policy import Policy
from persuasion_agents.prompted_advisor import text_space
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError, ReceiverError
from persuasion_gym.receivers import Receiver, make_receiver

COMPONENT = "advice"


class _Adapter:
    """GEPA's view of the env: a candidate's advice sent with each training item."""

    propose_new_texts = None  # GEPA's own reflective proposal, through the reflection model

    def __init__(self, core: PersuasionEnv, check: Any):
        self.core, self.check = core, check

    def evaluate(self, batch: list[int], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        advice = self.check(candidate[COMPONENT])
        outcomes = self.core.evaluate([advice] * len(batch), batch)
        traces = [{"item": self.core.dataset.texts[i], "gold": self.core.dataset.items[i].gold,
                   "response": o.response, "answer": o.answer, "score": o.reward} for i, o in zip(batch, outcomes,
                                                                                                  strict=True)]
        return EvaluationBatch(outputs=[o.response for o in outcomes], scores=[o.reward for o in outcomes],
                               trajectories=traces if capture_traces else None)

    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> dict[str, list[dict[str, Any]]]:
        records = [{"Inputs": t["item"], "Generated Outputs": t["response"],
                    "Feedback": f"score {t['score']:g}: the answer read was {t['answer']!r}, the correct one "
                                f"{t['gold']!r}"} for t in eval_batch.trajectories or []]
        return {name: records for name in components_to_update}


class GEPAPolicy(Policy):
    """One advice text, found by GEPA on the training items and sent with every held-out item.

    Args:
        reflection_lm: the spec (or Receiver) of the model that reflects and proposes texts.
        budget: the most Receiver calls the search may make (the seed's, best-fixed on the
            training items, are paid apart, as best-fixed pays them, and shared with it).
        out: GEPA's run directory (its saved state: an interrupted search resumes from it).
        minibatch: training items per reflective step.
        seed: GEPA's seed.
    """

    name = "gepa"
    needs_training = True

    def __init__(self, reflection_lm: str | Receiver = "auto", budget: int = 200, out: str | Path = "runs/gepa",
                 minibatch: int = 3, seed: int = 0):
        if budget < 1 or minibatch < 1:
            raise ConfigError(f"budget={budget}, minibatch={minibatch}: both must be at least 1")
        self.reflection_lm, self.budget, self.out = reflection_lm, budget, Path(out)
        self.minibatch, self.seed = minibatch, seed
        self._reflection: Receiver | None = None
        self.text = ""
        self.record: dict[str, Any] = {}

    @property
    def side_receivers(self) -> tuple[Receiver, ...]:
        """The reflection model: its calls are reported apart from the Receiver's."""
        return () if self._reflection is None else (self._reflection,)

    def fit(self, env: gym.Env, timesteps: int = 0, *, seed: int | None = None, progress: bool = False) -> None:
        """Search on ``env``'s items (the training env) against its Receiver, within ``budget``
        (GEPA is seeded by the policy's own ``seed``)."""
        try:
            import gepa
        except ImportError:
            raise ConfigError("the gepa policy needs the gepa package: pip install 'persuasion-gym[search]'") from None
        space = text_space(env, self.name)  # a table cannot answer free text: say so first
        core = cast(PersuasionEnv, env.unwrapped)
        receiver = core.receiver
        assert receiver is not None  # not a table
        seed_index = best_fixed_signal(reward_table(env))
        seed_text = core.signals[seed_index]
        items = list(range(len(core.dataset)))
        # GEPA scores the seed on the validation items first; past that, each iteration asks at
        # most two minibatches and the validation items again.
        per_iteration = 2 * self.minibatch + 1
        validation = items[: max(1, min(len(items), (self.budget - per_iteration) // 2))]
        if len(validation) + per_iteration > self.budget:
            least = len(validation) + per_iteration
            raise ConfigError(f"gepa --budget {self.budget}: one search step asks up to {least} Receiver calls: raise "
                              f"--budget to at least {least}")
        calls_before = receiver.stats.calls
        self._reflection = make_receiver(self.reflection_lm)
        reflection = self._reflection

        def reflect(prompt: str | list[dict[str, Any]]) -> str:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            try:
                return reflection.respond([messages])[0].text
            except ReceiverError as exc:
                raise type(exc)(f"gepa's reflection model ({reflection!r}): {exc}") from None

        def over_budget(state: Any) -> bool:
            # Receiver calls, exactly: the next iteration must fit. Metric calls (cached ones
            # too) end a search whose proposals the cache already answers.
            spent = receiver.stats.calls - calls_before
            return spent + len(validation) + per_iteration > self.budget or state.total_num_evals >= self.budget

        optimize: Any = gepa.optimize  # the adapter and stopper are duck-typed, as GEPA takes them
        result = optimize(
            seed_candidate={COMPONENT: seed_text}, trainset=items, valset=validation,
            adapter=_Adapter(core, lambda text: _fit_space(text, space)), reflection_lm=reflect,
            reflection_minibatch_size=self.minibatch, stop_callbacks=[over_budget], run_dir=str(self.out),
            logger=_RunLog(self.out / "run_log.txt"),
            seed=self.seed, display_progress_bar=progress, skip_perfect_score=False,
        )
        self.text = _fit_space(result.candidates[result.best_idx][COMPONENT], space)
        self.record = {
            "text": self.text, "seed_text": seed_text, "search_calls": receiver.stats.calls - calls_before,
            "budget": self.budget, "validation_items": len(validation),
            "trace": [{"advice": c[COMPONENT], "validation_score": s}
                      for c, s in zip(result.candidates, result.val_aggregate_scores, strict=True)],
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "result.json").write_text(json.dumps(self.record, indent=2))

    def act(self, observations: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return np.array([self.text] * len(observations), dtype=object)


class _RunLog:
    """GEPA's log, into its run directory rather than onto the benchmark's terminal."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def log(self, message: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{message}\n")


def _fit_space(text: str, space: Any) -> str:
    """A proposed text as the env's text action space admits it (charset, length limit)."""
    allowed = set(space.character_set)
    return "".join(c for c in " ".join(text.split()) if c in allowed)[: space.max_length].strip()
