"""The persuasion environment, generic over tasks: one episode is one task item.

Task-specific envs (``GSM8KEnv``) subclass it to fix the task and document the details.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import persuasion_gym
from persuasion_gym.envs.text_space import ItemText
from persuasion_gym.errors import ConfigError, InvalidActionError, PersuasionGymError
from persuasion_gym.featurizers import Featurizer, cached_features, make_featurizer
from persuasion_gym.persuasion import Outcome, Protocol, exchange, make_protocol
from persuasion_gym.receivers import Receiver, ResponseCache, make_receiver
from persuasion_gym.signals import SignalLibrary, as_library
from persuasion_gym.tasks import Task, make_task

Observation = Literal["features", "text"]


class PersuasionEnv(gym.Env):
    """An Advisor sends a signal about a task item; the Receiver answers; the answer is scored.

    See ``GSM8KEnv`` for the full description of spaces, reward and arguments.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        task: str | Task = "gsm8k",
        receiver: str | Receiver = "auto",
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
    ):
        if observation not in ("features", "text"):
            raise ConfigError(f"observation={observation!r}: use 'features' (a Box vector) or 'text'")
        if on_receiver_error not in ("raise", "zero"):
            raise ConfigError(f"on_receiver_error={on_receiver_error!r}: use 'raise' or 'zero'")
        if samples_per_cell < 1:
            raise ConfigError(f"samples_per_cell={samples_per_cell}: must be at least 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}: use one of {self.metadata['render_modes']} or None")
        self.task = make_task(task)
        self.dataset = self.task.load(split, None if data_path is None else str(data_path), max_items)
        self.signals = as_library(self.task.default_signals if signals is None else signals)
        self.protocol = make_protocol(protocol)
        self.observation_mode = observation
        self.samples_per_cell = samples_per_cell
        self.on_receiver_error = on_receiver_error
        self.render_mode = render_mode
        self._owns_receiver = not isinstance(receiver, Receiver)
        self.receiver = make_receiver(receiver, cache=cache)

        self.action_space = spaces.Discrete(len(self.signals))
        texts = self.dataset.texts
        if observation == "features":
            self.featurizer: Featurizer | None = make_featurizer(featurizer)
            self.features = cached_features(self.featurizer, texts)
            self.observation_space = spaces.Box(-1.0, 1.0, (self.featurizer.dim,), np.float32)
        else:
            self.featurizer, self.features = None, None
            # The task's charset admits all its official items; custom data adds its own characters.
            charset = "".join(sorted(set(self.task.charset) | set("".join(texts))))
            length = max(self.task.max_text_length, *map(len, texts))
            self.observation_space = ItemText(max_length=length, min_length=0, charset=charset)

        self._visits: Counter[tuple[int, int]] = Counter()
        self._item_index: int | None = None
        self._last: dict[str, Any] | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # Which sample of a cell a visit draws is part of the seeded random process.
            self._visits.clear()
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
        return self._observation(index), self._item_info(index)

    def step(self, action):
        if self._item_index is None:
            raise PersuasionGymError("the episode is over (or never began): call reset() before step()")
        signal_index = self._check_action(action)
        index = self._item_index
        # A Receiver error propagates from here with the episode intact: step() can be retried.
        outcome, extra = self._play([index], [signal_index])[0]
        self._item_index = None
        info = {**self._item_info(index), "action": signal_index, "signal": self.signals[signal_index],
                **extra, **outcome.info()}
        self._last = info
        return self._observation(index), outcome.reward, True, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return "(no step yet)"
        last = self._last
        return (
            f"[{last['item_id']}] {last[self.task.text_key]}\n"
            f"signal: {last['signal'] or '(none)'}\n"
            f"response: {last['response']}\n"
            f"answer: {last['answer']} (gold {last['gold']}) reward: {float(last['correct'])}"
        )

    def close(self) -> None:
        if self._owns_receiver:
            self.receiver.close()

    # -- beyond the Gymnasium API --------------------------------------------------------------
    def evaluate(
        self, actions: Sequence[int], item_indices: Sequence[int] | None = None, progress: bool = False
    ) -> list[Outcome]:
        """Score one signal per item in one concurrent batch (first sample of each cell).

        ``actions[j]`` is the signal for item ``item_indices[j]`` (default: every item in order).
        Does not touch the episode in progress. ``progress=True`` shows the Receiver's progress.
        """
        indices = list(range(len(self.dataset))) if item_indices is None else [int(i) for i in item_indices]
        if len(actions) != len(indices):
            raise ConfigError(f"{len(actions)} actions for {len(indices)} items: pass one action per item")
        played = self._play(indices, [self._check_action(a) for a in actions], count_visits=False, progress=progress)
        return [outcome for outcome, _ in played]

    def provenance(self) -> dict[str, Any]:
        """What made this env's rewards, as result files record it."""
        return {
            "package_version": persuasion_gym.__version__,
            "task": self.task.name,
            "dataset": {"name": self.dataset.name, "split": self.dataset.split, "source": self.dataset.source,
                        "sha256": self.dataset.sha256, "n_items": len(self.dataset)},
            "receiver": self.receiver.identity,
            "signals": list(self.signals),
            "signals_sha256": self.signals.fingerprint,
            "protocol": self.protocol.name,
            "featurizer": None if self.featurizer is None else self.featurizer.fingerprint,
            "samples_per_cell": self.samples_per_cell,
        }

    # -- internals -------------------------------------------------------------------------------
    def _check_action(self, action: Any) -> int:
        n = self.action_space.n
        if isinstance(action, str):
            raise InvalidActionError(
                f"action {action!r} is text: actions are signal indices; pass an integer in 0..{n - 1} "
                "(the text's position in env.unwrapped.signals)"
            )
        array = np.asarray(action) if action is not None else np.asarray(None, dtype=object)
        if array.size != 1 or array.dtype.kind not in "iu" or not 0 <= int(array.item()) < n:
            raise InvalidActionError(
                f"action {action!r} is not a signal index: pass an integer in 0..{n - 1} "
                f"(this env's {n} signals)"
            )
        return int(array.item())

    def _observation(self, index: int):
        if self.features is not None:
            return self.features[index].copy()
        return self.dataset.items[index].text

    def _item_info(self, index: int) -> dict[str, Any]:
        item = self.dataset.items[index]
        return {self.task.text_key: item.text, "item_id": item.item_id, "item_index": index, "gold": item.gold}

    def _play(
        self, indices: list[int], signal_indices: list[int], count_visits: bool = True, progress: bool = False
    ) -> list[tuple[Outcome, dict[str, Any]]]:
        contexts, extras, samples = [], [], []
        for index, signal_index in zip(indices, signal_indices):
            context, extra = self.protocol.context(self.signals[signal_index], index, self.np_random)
            contexts.append(context)
            # The k-th visit of a cell asks for sample k mod S: at most S paid calls per cell,
            # and a rerun with the same seeds is served entirely from the cache.
            sample = self._visits[(index, signal_index)] % self.samples_per_cell if count_visits else 0
            samples.append(sample)
            extras.append({**extra, "sample": sample})
        on_error = "return" if self.on_receiver_error == "zero" else "raise"
        items = [self.dataset.items[i] for i in indices]
        outcomes = exchange(self.task, self.receiver, items, contexts, samples, on_error=on_error, progress=progress)
        if count_visits:  # only once answered: a failed call does not use up a sample
            self._visits.update(zip(indices, signal_indices))
        return list(zip(outcomes, extras))
