"""The persuasion environment, generic over tasks: one episode is one task item.

Task-specific envs (``GSM8KEnv``) subclass it to fix the task and document the details. The
batched core (``_step_batch``) serves the single env, the native vector env and evaluation:
a live Receiver gets one concurrent batch, a recorded table is indexed with numpy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import persuasion_gym
from persuasion_gym.envs.text_space import ItemText, SignalText
from persuasion_gym.errors import ConfigError, InvalidActionError, PersuasionGymError
from persuasion_gym.featurizers import Featurizer, cached_features, make_featurizer
from persuasion_gym.persuasion import (
    Outcome,
    Protocol,
    TextPosteriorProtocol,
    TextScheme,
    bayes,
    exchange,
    make_protocol,
)
from persuasion_gym.persuasion.protocols import is_text
from persuasion_gym.receivers import Receiver, ResponseCache, make_receiver
from persuasion_gym.signals import SIGNAL_CHARSET, SignalLibrary, as_library
from persuasion_gym.tables import ResponseTable, load_table
from persuasion_gym.tasks import Dataset, Task, make_task

Observation = Literal["features", "text"]
ActionType = Literal["index", "text"]


def compose_context(signal: str, item: str) -> str:
    """What the Receiver reads when both the Advisor's text signal and an information item
    go into its context (the text ``posterior`` protocol): the signal, then the item."""
    return "\n".join(part for part in (signal, item) if part)


@dataclass
class StepBatch:
    """What a batch of episodes produced. ``chosen`` is the information item each Receiver
    saw (-1: none); ``outcomes`` are the live Receiver's scored responses (None on a table)."""

    rewards: np.ndarray
    chosen: np.ndarray
    samples: np.ndarray
    beliefs: np.ndarray | None
    outcomes: list[Outcome] | None
    rows: np.ndarray | None = None  # table rows, on a table
    columns: np.ndarray | None = None
    log_likelihoods: np.ndarray | None = None  # the Advisor's, of its text signals (text posterior)


class PersuasionEnv(gym.Env):
    """An Advisor sends a signal about a task item; the Receiver answers; the answer is scored.

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

    def __init__(
        self,
        task: str | Task = "gsm8k",
        receiver: str | Receiver | None = "auto",
        split: str = "train",
        data_path: str | Path | None = None,
        signals: Sequence[str] | SignalLibrary | None = None,
        protocol: str | Protocol = "direct",
        featurizer: str | Featurizer = "auto",
        max_items: int | None = None,
        observation: Observation = "features",
        samples_per_cell: int = 1,
        on_receiver_error: Literal["raise", "zero"] = "raise",
        cache: ResponseCache | str | Path | bool | None = True,
        render_mode: str | None = None,
        table: str | Path | ResponseTable | None = None,
        table_reward: Literal["sample", "mean"] = "sample",
        prior: Sequence[float] | np.ndarray | Literal["uniform"] | None = None,
        scheme: np.ndarray | TextScheme | None = None,
        n_signals: int | None = None,
        alpha: float = 1.0,
        dataset: Dataset | None = None,
        action_type: ActionType = "index",
        max_signal_length: int = 512,
        signal_charset: str | None = None,
        state_table: str | Path | ResponseTable | None = None,
    ):
        if observation not in ("features", "text"):
            raise ConfigError(f"observation={observation!r}: use 'features' (a Box vector) or 'text'")
        if on_receiver_error not in ("raise", "zero"):
            raise ConfigError(f"on_receiver_error={on_receiver_error!r}: use 'raise' or 'zero'")
        if table_reward not in ("sample", "mean"):
            raise ConfigError(f"table_reward={table_reward!r}: use 'sample' (one recorded sample) or 'mean'")
        if samples_per_cell < 1:
            raise ConfigError(f"samples_per_cell={samples_per_cell}: must be at least 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}: use one of {self.metadata['render_modes']} or None")
        if action_type not in ("index", "text"):
            raise ConfigError(f"action_type={action_type!r}: use 'index' (a signal library index) or 'text' "
                              "(the signal's text itself)")
        if max_signal_length < 1:
            raise ConfigError(f"max_signal_length={max_signal_length}: must be at least 1 character")
        if isinstance(receiver, str) and receiver.startswith("table:"):
            table, receiver = receiver.removeprefix("table:"), None
        if action_type == "text" and table is not None:
            raise ConfigError("text actions on a recorded table: a table only knows its own signals, so it cannot "
                              "answer new texts; use a live Receiver (receiver='openai:MODEL@URL', 'embedded', ...), "
                              "or action_type='index'")
        self.task = make_task(task)
        self.table = None if table is None else load_table(table)
        self.action_type = action_type
        if dataset is None:
            dataset = self.task.load(split, None if data_path is None else str(data_path), max_items)
        elif max_items is not None:
            dataset = Dataset(dataset.name, dataset.split, dataset.items[:max_items], dataset.source, dataset.sha256)
        self.dataset = dataset
        if signals is None:
            signals = self.table.signals if self.table is not None else self.task.default_signals
        self.signals = as_library(signals)
        self.observation_mode = observation
        self.samples_per_cell = samples_per_cell
        self.on_receiver_error = on_receiver_error
        self.table_reward = table_reward
        self.render_mode = render_mode

        # The information items are the signal library's texts. Their states come from the
        # replayed table, or from a table recorded for that purpose (``state_table``); ties
        # (frequent with 0/1 scores) are broken at random, seeded (``bayes.states``).
        m = len(self.signals)
        states = tied = None
        state_source = self.table if self.table is not None else (
            None if state_table is None else load_table(state_table))
        self._state_source = None if state_source is None else "table" if self.table is not None else "state_table"
        if state_source is not None:
            state_source.check_signals(list(self.signals))
            rows = state_source.rows_for(self.dataset)
            states = bayes.states(state_source.utilities[rows])
            tied = bayes.tied(state_source.utilities[rows])
        if self.table is not None:
            self._rows = rows
            self._empty_column = self.signals.empty_index
            if protocol == "none" and self._empty_column is None:
                raise ConfigError("protocol='none' on a table needs the empty signal '' among the table's signals")
        if isinstance(prior, str):
            if prior != "uniform":
                raise ConfigError(f"prior={prior!r}: use 'uniform', an array over the {m} information items, or None")
            prior = None
        elif prior is None and states is not None:
            prior = bayes.state_prior(states, m)  # the frequency of each state among the table's items
        text = action_type == "text"
        self.protocol = make_protocol(protocol, m, prior, n_signals, scheme, alpha, states, len(self.dataset),
                                      text=text, item_texts=list(self.signals), questions=self.dataset.texts,
                                      tied=tied)

        self.receiver: Receiver | None = None
        self._owns_receiver = False
        if self.table is None:
            if receiver is None:
                raise ConfigError("receiver=None needs a table: pass receiver='table:PATH' or a Receiver spec")
            self._owns_receiver = not isinstance(receiver, Receiver)
            self.receiver = make_receiver(receiver, cache=cache)

        if text:
            # The charset admits what a language model writes, and the library's own texts.
            charset = "".join(sorted(set(signal_charset or SIGNAL_CHARSET) | set("".join(self.signals))))
            self.action_space = SignalText(max_length=max_signal_length, min_length=0, charset=charset)
        else:
            self.action_space = spaces.Discrete(self.protocol.n_actions)
        texts = self.dataset.texts
        if observation == "features":
            self.featurizer: Featurizer | None = make_featurizer(featurizer)
            self.features: np.ndarray | None = cached_features(self.featurizer, texts)
            self.observation_space = spaces.Box(-1.0, 1.0, (self.featurizer.dim,), np.float32)
        else:
            self.featurizer, self.features = None, None
            # The task's charset admits all its official items; custom data adds its own characters.
            charset = "".join(sorted(set(self.task.charset) | set("".join(texts))))
            length = max(self.task.max_text_length, *map(len, texts))
            self.observation_space = ItemText(max_length=length, min_length=0, charset=charset)

        self._visits: Counter[tuple[int, str]] = Counter()  # (item, context) -> answers asked
        self._last_batch: StepBatch | None = None
        self._item_index: int | None = None
        self._observed: dict[str, Any] = {}
        self._last: dict[str, Any] | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._start_afresh()
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
        return self._observation(index), {**self._item_info(index), **self._observed}

    def _start_afresh(self) -> None:
        """A seeded reset starts a fresh run, so that what follows depends on the seed alone:
        forget what the env learned online (the Receiver's estimate of the scheme, the state
        estimates) and which sample of a cell the next visit draws. The native vector env's
        seeded reset calls it too: it shares the protocol."""
        self._visits.clear()
        self.protocol.reset()

    def step(self, action):
        if self._item_index is None:
            raise PersuasionGymError("the episode is over (or never began): call reset() before step()")
        action = self._check_action(action)
        index = self._item_index
        # A Receiver error propagates from here with the episode intact: step() can be retried.
        batch = self._step_batch(np.array([index]), [action] if isinstance(action, str) else np.array([action]),
                                 self.np_random)
        self._item_index = None
        info = {**self._item_info(index), **self._observed, **self._episode_info(batch, 0, action)}
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

    # -- beyond the Gymnasium API --------------------------------------------------------------
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
            batch = self._ask(np.asarray(indices, dtype=np.int64), zeros - 1, zeros, progress, texts)
            assert batch.outcomes is not None  # a live Receiver's batch
            return batch.outcomes
        columns = np.array([self._check_signal(a) for a in actions], dtype=np.int64)
        batch = self._ask(np.asarray(indices, dtype=np.int64), columns, zeros, progress)
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
        checked = [self._check_action(a) for a in actions]
        batch_actions = np.array(checked, dtype=object if self.action_type == "text" else np.int64)
        return self._step_batch(indices, batch_actions, self.np_random if rng is None else rng, progress)

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
        """What made this env's rewards, as result files record it."""
        source: dict[str, Any]
        if self.table is not None:
            source = {"receiver": self.table.meta["receiver"], "table": {
                k: self.table.meta[k] for k in ("created", "package_version") if k in self.table.meta}}
            source["table"]["reward"] = self.table_reward
            source["system_fingerprints"] = self.table.meta.get("system_fingerprints", [])
        else:
            assert self.receiver is not None  # no table: __init__ made one
            source = {"receiver": self.receiver.identity,
                      "system_fingerprints": sorted(self.receiver.stats.fingerprints)}
        extra: dict[str, Any] = {"action_type": self.action_type}
        if self.action_type == "text":
            extra["max_signal_length"] = cast(SignalText, self.action_space).max_length
        if isinstance(self.protocol, TextPosteriorProtocol):
            scheme = self.protocol.scheme
            extra["scheme"] = getattr(scheme, "identity", None) or type(scheme).__name__
        states = self.states_provenance()
        if states is not None:
            extra["states"] = states
        return {
            "package_version": persuasion_gym.__version__,
            "task": self.task.name,
            "task_settings": self.task.settings(),
            "dataset": {"name": self.dataset.name, "split": self.dataset.split, "source": self.dataset.source,
                        "sha256": self.dataset.sha256, "n_items": len(self.dataset)},
            **source,
            "signals": list(self.signals),
            "signals_sha256": self.signals.fingerprint,
            "protocol": self.protocol.name,
            "featurizer": None if self.featurizer is None else self.featurizer.fingerprint,
            "samples_per_cell": self.samples_per_cell,
            **extra,
        }

    def states_provenance(self) -> dict[str, Any] | None:
        """Where the protocol's states come from and how ties were broken, as result files
        record it (under the posterior protocols): ``given`` (a table's or ``state_table``'s
        best cells; ``ties``: how many of this split's items tied) or ``online`` (the
        running estimate, whose ties change as it learns: each episode's ``observed_tie``)."""
        estimate = getattr(self.protocol, "estimate", None)
        if estimate is None:
            return None
        if not estimate.given:
            return {"source": "online", "tie_break": bayes.TIE_BREAK, "tie_seed": bayes.TIE_SEED}
        ties = int(estimate.tied_of(np.arange(len(self.dataset))).sum())
        return {"source": self._state_source or "given", "ties": ties, "tie_break": bayes.TIE_BREAK,
                "tie_seed": bayes.TIE_SEED}

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
    def _step_batch(
        self, indices: np.ndarray, actions: Sequence | np.ndarray, rng: np.random.Generator, progress: bool = False
    ) -> StepBatch:
        """Play one episode per (item, action): the protocol picks each context, the Receiver
        (or the table) answers, the protocol learns from the rewards. ``actions`` are signal
        indices, or texts in text mode."""
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
        batch = self._ask(indices, chosen, samples, progress, contexts)
        batch.beliefs, batch.log_likelihoods = choice.beliefs, choice.log_likelihoods
        self._last_batch = batch
        if contexts is not None:  # only once answered: a failed call does not use up a sample
            self._visits.update(zip(indices.tolist(), contexts, strict=True))
        self.protocol.observe(indices, actions, chosen, batch.rewards)
        return batch

    def _contexts(self, actions: Sequence | np.ndarray, chosen: np.ndarray) -> list[str]:
        """The Receiver's context per episode: the chosen information item, and under
        ``direct`` and ``posterior`` with text actions the Advisor's own text before it."""
        items = [self.signals[c] if c >= 0 else "" for c in chosen]
        if not is_text(actions) or self.protocol.name not in ("direct", "posterior"):
            return items
        return [compose_context(signal, item) for signal, item in zip(actions, items, strict=True)]

    def _ask(self, indices: np.ndarray, chosen: np.ndarray, samples: np.ndarray, progress: bool,
             contexts: list[str] | None = None) -> StepBatch:
        """Rewards of items with information items ``chosen`` (-1: none), sample ``samples``;
        on a live Receiver, ``contexts`` (default: the chosen items' texts) are what it reads."""
        if self.table is not None:
            rows = self._rows[indices]
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
        from persuasion_gym.receivers import Usage

        table = self.table
        assert table is not None and batch.rows is not None and batch.columns is not None  # a table's batch
        r, c, s = int(batch.rows[j]), int(batch.columns[j]), int(batch.samples[j])
        return Outcome(
            context=self.signals[int(batch.chosen[j])] if batch.chosen[j] >= 0 else "",
            response=table.responses[r][c][s], answer=table.answers[r][c][s],
            correct=bool(table.scores[r, c, s] >= 1.0), reward=float(batch.rewards[j]),
            usage=Usage(int(table.prompt_tokens[r, c, s]), int(table.completion_tokens[r, c, s]),
                        int(table.reasoning_tokens[r, c, s])),
            latency_s=float(table.latency_s[r, c, s]), cached=True, truncated=bool(table.truncated[r, c, s]),
            finish_reason=table.finish_reasons[r][c][s], reasoning=table.reasonings[r][c][s],
        )

    def _episode_info(self, batch: StepBatch, j: int, action: int | str) -> dict[str, Any]:
        outcome = batch.outcomes[j] if batch.outcomes is not None else self._table_outcome(batch, j)
        signal = action if isinstance(action, str) else self._signal_text(action)
        info: dict[str, Any] = {"action": action, "signal": signal,
                                "sample": int(batch.samples[j]), "reward": float(batch.rewards[j]), **outcome.info()}
        if batch.beliefs is not None:
            chosen = int(batch.chosen[j])
            info["posterior" if self.protocol.name == "posterior" else "prior"] = batch.beliefs[j].copy()
            info["information_index"] = chosen
            info["information_item"] = self.signals[chosen]
        if batch.log_likelihoods is not None:
            info["log_likelihoods"] = batch.log_likelihoods[j].copy()
        return info

    def _signal_text(self, action: int) -> str:
        return self.signals[action] if action < len(self.signals) else f"<signal {action}>"

    # -- checks and views -----------------------------------------------------------------------
    def _check_action(self, action: Any) -> int | str:
        if self.action_type == "text":
            return self.check_text(action)
        return self._check_index(action, int(cast(spaces.Discrete, self.action_space).n), "signal index")

    def check_text(self, action: Any) -> str:
        """A signal text as ``step`` admits it (in text mode: the action space's length limit and
        charset), or an error that says the fix; ``evaluate`` and ``persuasion-gym check`` apply it too."""
        if not isinstance(action, str):
            raise InvalidActionError(
                f"action {action!r} is not text: this env takes the signal's text (action_type='text'); pass a str, "
                "or make the env with action_type='index' to send signal indices"
            )
        if self.action_type != "text":
            return str(action)
        space = cast(SignalText, self.action_space)
        if len(action) > space.max_length:
            raise InvalidActionError(
                f"signal of {len(action)} characters is over this env's limit of {space.max_length}: shorten it, "
                f"or make the env with max_signal_length={len(action)}"
            )
        outside = sorted(set(action) - space.character_set)
        if outside:
            raise InvalidActionError(
                f"signal holds characters outside the action space's charset: {''.join(outside)!r}; remove them, "
                "or make the env with signal_charset= a string holding every character the Advisor may write"
            )
        return str(action)

    def _check_signal(self, action: Any) -> int:
        return self._check_index(action, len(self.signals), "signal index")

    def _text_action_fix(self) -> str:
        """How to send texts instead of indices, ending an index error: a table cannot answer
        texts it never recorded, so it must not be told to take text actions."""
        if self.table is not None:
            return ("; a recorded table only has its recorded signals, so for text signals use a live Receiver "
                    "(receiver='openai:MODEL@URL', 'embedded', ...) with action_type='text'")
        return ", or make the env with action_type='text' to send texts"

    def _check_index(self, action: Any, n: int, what: str) -> int:
        if isinstance(action, str):
            raise InvalidActionError(
                f"action {action!r} is text: actions are signal indices; pass an integer in 0..{n - 1} "
                f"(the text's position in env.unwrapped.signals){self._text_action_fix()}"
            )
        array = np.asarray(action) if action is not None else np.asarray(None, dtype=object)
        if array.size != 1 or array.dtype.kind not in "iu" or not 0 <= int(array.item()) < n:
            raise InvalidActionError(
                f"action {action!r} is not a {what}: pass an integer in 0..{n - 1} (this env's {n} signals)"
            )
        return int(array.item())

    def _observation(self, index: int):
        if self.features is not None:
            return self.features[index].copy()
        return self.dataset.items[index].text

    def _item_info(self, index: int) -> dict[str, Any]:
        item = self.dataset.items[index]
        return {self.task.text_key: item.text, "item_id": item.item_id, "item_index": index, "gold": item.gold}
