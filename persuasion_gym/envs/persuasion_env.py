"""The persuasion environment, generic over tasks: one episode is one task item.

Task-specific envs (``GSM8KEnv``) subclass it to fix the task and document the details; its
arguments are ``EnvSettings`` (``persuasion_gym.envs.settings``). One batched core serves the
single env, the native vector env, the server's sessions and evaluation: a live Receiver gets
one concurrent batch, a recorded table is indexed with numpy. The verbs that play a batch:

| verb | what it plays or scores | protocol | actions |
| --- | --- | --- | --- |
| `step(action)` | the reset item's one episode | picks the context, learns | checked |
| `play(items, actions)` | one episode per (item, action), as one batch | picks, learns | checked |
| `play_unchecked(...)` | the same, under `step`, `play` and the vector env | picks, learns | the caller's |
| `evaluate(actions, items)` | one signal per item, `direct` reading, first sample | untouched | checked |
| `_score_cells(...)` | given contexts and samples: a table lookup or an `exchange` | none | none |
| `exchange(task, ...)` | (task item, context) pairs, by the Receiver alone | none | none |

``evaluate`` builds reward tables and benchmarks; ``exchange`` (``persuasion_gym.persuasion``)
is also what ``record`` and ``check`` ask; the vector env checks a whole batch at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from persuasion_gym.envs import actions as checks
from persuasion_gym.envs.batch import StepBatch, compose_context, episode_info, table_outcome
from persuasion_gym.envs.builders import (
    build_action_space,
    build_dataset,
    build_observation_space,
    build_protocol,
    build_states,
)
from persuasion_gym.envs.provenance import env_provenance, states_provenance
from persuasion_gym.envs.settings import EnvSettings
from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.errors import ConfigError, PersuasionGymError
from persuasion_gym.persuasion import Outcome, TextPosteriorProtocol, exchange
from persuasion_gym.persuasion.protocols import is_text
from persuasion_gym.receivers import Receiver, make_receiver
from persuasion_gym.signals import as_library
from persuasion_gym.tables import load_table
from persuasion_gym.tasks import Task, make_task


class PersuasionEnv(gym.Env):
    """An Advisor sends a signal about a task item; the Receiver answers; the answer is scored.

    ``PersuasionEnv(task, **options)`` takes the ``EnvSettings`` fields as keywords (as
    ``gym.make`` passes them), or ``settings=EnvSettings(...)``, which ``options`` then amend.
    See ``GSM8KEnv`` for the full description of spaces, reward and arguments.

    What the env learns online persists across episodes: under ``protocol="posterior"`` the
    Receiver's estimate of the Advisor's scheme (from past (state, signal) pairs) and the
    online state estimates, and which sample of a cell the next visit asks for. ``reset()``
    keeps it (online persuasion over the env's life); ``reset(seed=s)`` starts a fresh run and
    forgets it, so what follows depends on ``s`` alone, as Gymnasium's checker expects (the
    classic games env does the same with its Receiver's frequencies). A given ``scheme=``,
    known states (a table) and the prior stay. The native vector env's seeded reset does the same.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, task: str | Task = "gsm8k", *, settings: EnvSettings | None = None, **options: Any):
        settings = EnvSettings(**options) if settings is None else replace(settings, **options)
        settings.validate(self.metadata["render_modes"])
        self.settings = settings
        self.task = make_task(task)
        self.table = None if settings.table is None else load_table(settings.table)
        self.action_type = settings.action_type
        self.dataset = build_dataset(self.task, settings)
        signals = settings.signals
        if signals is None:
            signals = self.table.signals if self.table is not None else self.task.default_signals
        self.signals = as_library(signals)
        self.observation_mode = settings.observation
        self.samples_per_cell = settings.samples_per_cell
        self.on_receiver_error = settings.on_receiver_error
        self.table_reward = settings.table_reward
        self.render_mode = settings.render_mode

        states = build_states(self.table, settings, self.signals, self.dataset)
        self.state_source = states.source  # "table", "state_table", or None: estimated online
        self.table_rows = states.rows if self.table is not None else None  # each item's row in the replayed table
        self._empty_column = self.signals.empty_index
        if self.table is not None and settings.protocol == "none" and self._empty_column is None:
            raise ConfigError("protocol='none' on a table needs the empty signal '' among the table's signals")
        self.protocol = build_protocol(settings, self.signals, self.dataset, states)

        self.receiver: Receiver | None = None
        self._owns_receiver = False
        if self.table is None:
            assert settings.receiver is not None  # validate() refuses receiver=None without a table
            self._owns_receiver = not isinstance(settings.receiver, Receiver)
            self.receiver = make_receiver(settings.receiver, cache=settings.cache)

        self.action_space = build_action_space(settings, self.protocol, self.signals)
        self.observation_space, self.featurizer, self.features = build_observation_space(
            settings, self.task, self.dataset)

        self._visits: Counter[tuple[int, str]] = Counter()  # (item, context) -> answers asked
        self._last_batch: StepBatch | None = None
        self._item_index: int | None = None
        self._observed: dict[str, Any] = {}
        self._last: dict[str, Any] | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.start_afresh()
        options = options or {}
        if "item_index" in options:
            index = int(options["item_index"])
            if not 0 <= index < len(self.dataset):
                raise ConfigError(
                    f"options['item_index']={index}: this split holds items 0..{len(self.dataset) - 1}"
                )
        else:
            index = int(self.np_random.integers(len(self.dataset)))
        self._item_index, self._last = index, None
        self._observed = self.observed_items(np.array([index]), self.np_random, one=True)
        return self._observation(index), {**self.item_info(index), **self._observed}

    def start_afresh(self) -> None:
        """Start a fresh run, so that what follows depends on the seed alone, as a seeded reset
        does (this env's, and the native vector env's, which shares the protocol): forget what
        the env learned online (the Receiver's estimate of the scheme, the state estimates) and
        which sample of a cell the next visit draws."""
        self._visits.clear()
        self.protocol.reset()

    def step(self, action):
        if self._item_index is None:
            raise PersuasionGymError("the episode is over (or never began): call reset() before step()")
        action = self.check_action(action)
        index = self._item_index
        # A Receiver error propagates from here with the episode intact: step() can be retried.
        batch = self.play_unchecked(np.array([index]), [action] if isinstance(action, str) else np.array([action]),
                                    self.np_random)
        self._item_index = None
        info = {**self.item_info(index), **self._observed, **self.episode_info(batch, 0, action)}
        self._last = info
        return self._observation(index), float(batch.rewards[0]), True, False, info

    # Gymnasium types render() over a free TypeVar, which no concrete return type matches.
    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return "(no step yet)"
        last = self._last
        return (
            f"[{last['item_id']}] {last[self.task.text_key]}\n"
            f"signal: {last['signal'] or '(none)'}\n"
            f"response: {last['response']}\n"
            f"answer: {last['answer']} (gold {last['gold']}) reward: {last['reward']}"
        )

    def close(self) -> None:
        if self._owns_receiver and self.receiver is not None:
            self.receiver.close()

    # -- beyond the Gymnasium API: batches (see the module doc) ------------------------------
    def evaluate(
        self, actions: Sequence[int] | Sequence[str], item_indices: Sequence[int] | None = None, progress: bool = False
    ) -> list[Outcome]:
        """Score one signal per item in one concurrent batch (first sample of each cell),
        under the ``direct`` reading: ``actions[j]``'s signal (a library index, or a text on a
        live Receiver, in either action mode) goes with item ``item_indices[j]`` (default:
        every item in order). Leaves the episode and the protocol's state alone.
        ``progress=True`` shows the Receiver's progress."""
        indices = list(range(len(self.dataset))) if item_indices is None else [int(i) for i in item_indices]
        if len(actions) != len(indices):
            raise ConfigError(f"{len(actions)} actions for {len(indices)} items: pass one action per item")
        zeros = np.zeros(len(indices), np.int64)
        if is_text(actions):
            if self.table is not None:
                raise ConfigError("a recorded table only knows its own signals: evaluate signal texts on a live "
                                  "Receiver, or pass signal indices")
            texts = [self.check_text(a) for a in actions]
            batch = self._score_cells(np.asarray(indices, dtype=np.int64), zeros - 1, zeros, progress, texts)
            assert batch.outcomes is not None  # a live Receiver's batch
            return batch.outcomes
        columns = np.array([self.check_signal(a) for a in actions], dtype=np.int64)
        batch = self._score_cells(np.asarray(indices, dtype=np.int64), columns, zeros, progress)
        if batch.outcomes is not None:
            return batch.outcomes
        return [self._table_outcome(batch, j) for j in range(len(indices))]

    def play(self, item_indices: Sequence[int] | np.ndarray, actions: Sequence[int] | Sequence[str] | np.ndarray,
             rng: np.random.Generator | None = None, progress: bool = False) -> StepBatch:
        """Play one episode per (item, action) as one batch, as ``step`` plays one: the
        protocol picks each context, the Receiver answers all of them concurrently (through
        the cache), and the protocol learns from the rewards. Actions are checked as the action
        space admits them. ``rng`` (default: the env's) draws information items and samples.
        Training loops outside Gymnasium (a TRL reward function) call this."""
        indices = np.asarray(item_indices, dtype=np.int64)
        if (indices.ndim != 1 or len(indices) != len(actions)
                or not ((0 <= indices) & (indices < len(self.dataset))).all()):
            raise ConfigError(f"play() takes one action per item index, indices in 0..{len(self.dataset) - 1}")
        checked = [self.check_action(a) for a in actions]
        batch_actions = np.array(checked, dtype=object if self.action_type == "text" else np.int64)
        return self.play_unchecked(indices, batch_actions, self.np_random if rng is None else rng, progress)

    def play_unchecked(
        self, indices: np.ndarray, actions: Sequence | np.ndarray, rng: np.random.Generator, progress: bool = False
    ) -> StepBatch:
        """``play`` without its checks, for a caller that has checked the whole batch already
        (``step``, ``play``, the native vector env): item ``indices`` in range and ``actions``
        as the action space admits them (signal indices, or texts in text mode). The protocol
        picks each context, the Receiver (or the table) answers, the protocol learns."""
        choice = self.protocol.choose(actions, indices, rng)
        chosen = choice.chosen
        contexts = None
        if self.table is not None:
            if self.table_reward == "mean":
                samples = np.zeros(len(indices), dtype=np.int64)
            else:
                samples = rng.integers(self.table.n_samples, size=len(indices))
        else:
            # The k-th visit of a cell asks for sample k mod S: at most S paid calls per cell,
            # and a rerun with the same seeds is served entirely from the cache.
            contexts = self._contexts(actions, chosen)
            samples = np.array([self._visits[(int(i), c)] % self.samples_per_cell
                                for i, c in zip(indices, contexts, strict=True)], dtype=np.int64)
        batch = self._score_cells(indices, chosen, samples, progress, contexts)
        batch.beliefs, batch.log_likelihoods = choice.beliefs, choice.log_likelihoods
        self._last_batch = batch
        if contexts is not None:  # only once answered: a failed call does not use up a sample
            self._visits.update(zip(indices.tolist(), contexts, strict=True))
        self.protocol.observe(indices, actions, chosen, batch.rewards)
        return batch

    @property
    def last_outcomes(self) -> tuple[Outcome, ...]:
        """The scored answers of the last step (or ``play`` batch), one per episode,
        with what ``info`` leaves out because it differs between a Receiver call and its cache
        hit: ``cached`` (served from the cache, or a table) beside ``usage`` and ``latency_s``
        (the original call's, in both cases)."""
        batch = self._last_batch
        if batch is None:
            return ()
        if batch.outcomes is not None:
            return tuple(batch.outcomes)
        return tuple(self._table_outcome(batch, j) for j in range(len(batch.rewards)))

    def provenance(self) -> dict[str, Any]:
        """What made this env's rewards, as result files record it (``envs.provenance``)."""
        return env_provenance(self)

    def states_provenance(self) -> dict[str, Any] | None:
        """Where the protocol's states come from and how ties were broken (``envs.provenance``)."""
        return states_provenance(self)

    def observed_items(self, indices: np.ndarray, rng: np.random.Generator, one: bool = False) -> dict[str, Any]:
        """What the Advisor observes besides the task items, under the text ``posterior``
        protocol: the information item x* (the state, or a prior draw while it is unknown),
        whether it is known (``observed_known``) and whether it was a tie that the seeded
        tie-break decided (``observed_tie``). Online, it is the estimate at this call: call it
        for each batch (a training step's prompts) to follow the estimate as it learns; an item
        that occurs several times in one call observes one x*. Empty under the other protocols.
        ``one=True``: scalars for a single env's info."""
        if not isinstance(self.protocol, TextPosteriorProtocol):
            return {}
        indices = np.asarray(indices, dtype=np.int64)
        observed, known = self.protocol.observe_states(indices, rng)
        tie = self.protocol.estimate.tied_of(indices) & known
        texts = [self.signals[int(x)] for x in observed]
        if one:
            return {"observed_index": int(observed[0]), "observed_item": texts[0], "observed_known": bool(known[0]),
                    "observed_tie": bool(tie[0])}
        return {"observed_index": observed, "observed_item": np.array(texts, dtype=object), "observed_known": known,
                "observed_tie": tie}

    # -- the batched core -------------------------------------------------------------------------
    def _contexts(self, actions: Sequence | np.ndarray, chosen: np.ndarray) -> list[str]:
        """The Receiver's context per episode: the chosen information item, and under
        ``direct`` and ``posterior`` with text actions the Advisor's own text before it."""
        items = [self.signals[c] if c >= 0 else "" for c in chosen]
        if not is_text(actions) or self.protocol.name not in ("direct", "posterior"):
            return items
        return [compose_context(signal, item) for signal, item in zip(actions, items, strict=True)]

    def _score_cells(self, indices: np.ndarray, chosen: np.ndarray, samples: np.ndarray, progress: bool,
                     contexts: list[str] | None = None) -> StepBatch:
        """Rewards of items with information items ``chosen`` (-1: none), sample ``samples``;
        on a live Receiver, ``contexts`` (default: the chosen items' texts) are what it reads.
        No protocol: the callers pick the contexts."""
        if self.table is not None:
            assert self.table_rows is not None  # a table's rows, from __init__
            rows = self.table_rows[indices]
            columns = np.where(chosen >= 0, chosen, self._empty_column if self._empty_column is not None else 0)
            if self.table_reward == "mean":
                rewards = self.table.utilities[rows, columns]
            else:
                rewards = self.table.scores[rows, columns, samples].astype(np.float64)
            return StepBatch(rewards, chosen, samples, None, None, rows, columns)
        if contexts is None:
            contexts = [self.signals[c] if c >= 0 else "" for c in chosen]
        assert self.receiver is not None  # no table: __init__ made one
        items = [self.dataset.items[i] for i in indices]
        outcomes = exchange(self.task, self.receiver, items, contexts, samples.tolist(),
                            on_error="return" if self.on_receiver_error == "zero" else "raise", progress=progress)
        return StepBatch(np.array([o.reward for o in outcomes]), chosen, samples, None, outcomes)

    def _table_outcome(self, batch: StepBatch, j: int) -> Outcome:
        assert self.table is not None  # a table's batch
        return table_outcome(self.table, self.signals, batch, j)

    # -- checks and views -----------------------------------------------------------------------
    def check_action(self, action: Any) -> int | str:
        """An action as ``step`` admits it: a signal text in text mode, else an index among the
        protocol's actions; or an ``InvalidActionError`` that says the fix."""
        if self.action_type == "text":
            return self.check_text(action)
        return checks.check_index(action, int(cast(spaces.Discrete, self.action_space).n), self.table is not None)

    def check_text(self, action: Any) -> str:
        """A signal text as ``step`` admits it (in text mode: the action space's length limit and
        charset), or an error that says the fix; ``evaluate`` and ``persuasion-gym check`` apply it too."""
        space = cast(SignalText, self.action_space) if self.action_type == "text" else None
        return checks.check_text(action, space)

    def check_signal(self, action: Any) -> int:
        """An index into the signal library (what ``evaluate`` takes, in either action mode)."""
        return checks.check_index(action, len(self.signals), self.table is not None)

    def episode_info(self, batch: StepBatch, j: int, action: int | str) -> dict[str, Any]:
        """The step info of episode ``j`` of ``batch`` (what ``step`` adds to ``item_info`` and
        what the Advisor observed); the server's sessions report the same."""
        outcome = batch.outcomes[j] if batch.outcomes is not None else self._table_outcome(batch, j)
        return episode_info(batch, j, action, outcome, self.signals, self.protocol.name)

    def item_info(self, index: int) -> dict[str, Any]:
        """Item ``index``'s part of the info: its text (under the task's key), id, index and gold answer."""
        item = self.dataset.items[index]
        return {self.task.text_key: item.text, "item_id": item.item_id, "item_index": index, "gold": item.gold}

    def _observation(self, index: int):
        if self.features is not None:
            return self.features[index].copy()
        return self.dataset.items[index].text
