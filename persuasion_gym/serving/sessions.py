"""Many sessions, one persuasion env: each session plays its own episodes, and the steps that
arrive together are played as one batch.

A server that hosts many remote rollouts at once (``persuasion-gym serve``, one OpenEnv
WebSocket session each) gives every session its own episode (its item, its seed) over one
shared ``PersuasionEnv``: one Receiver, one response cache, one sandbox for code tasks, one
protocol (what the posterior protocol learns online is learned from every session, as in the
native vector env). ``Session.step`` hands its (item, signal) to the ``StepBatcher``, which
plays the steps waiting at that moment as one ``env.play`` batch: one concurrent Receiver
batch (identical prompts asked once, cached ones not asked), one scoring batch.

A batch closes as soon as every live session (reset at least once, not closed) has sent its
step, or once ``window_s`` has passed with no session resetting or stepping (counted from its
first step, or from the end of the last batch, so that the sessions it just answered can join
the next one), and at the latest ``10 * window_s`` after that, whichever comes first. Steps that arrive
while a batch is with the Receiver form the next batch: a session waits at most for the batch
in flight, never for each of the others in turn.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from gymnasium.utils import seeding

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.errors import ConfigError, InvalidActionError, PersuasionGymError
from persuasion_gym.persuasion import TextPosteriorProtocol


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars made plain lists and numbers (and anything
    else that JSON has no type for made its ``str``), for a wire format."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass(frozen=True)
class Played:
    """One session's step: the reward and the single Gymnasium env's step info (JSON-safe), with
    ``cached`` (the answer came from the response cache or a table) and ``batch_size`` (the
    steps played together with it in one batch)."""

    reward: float
    info: dict[str, Any]


@dataclass
class _Pending:
    index: int
    action: int | str
    arrived: float
    future: Future[Played] = field(default_factory=Future)


class StepBatcher:
    """Plays the steps of many sessions over one env, those waiting together as one batch
    (see the module doc). One batch is in flight at a time: the env's protocol, visit counts
    and Receiver are used by one thread only."""

    def __init__(self, env: PersuasionEnv, window_s: float = 0.02, seed: int | None = 0):
        if window_s < 0:
            raise ConfigError(f"window_s={window_s}: must be 0 or more seconds")
        self.env, self.window_s = env, window_s
        self.rng = np.random.default_rng(seed)  # the server's draws: information items, table samples
        self.lock = threading.Lock()  # held while a batch plays; readers of the protocol's state take it too
        self.batches = self.steps = self.largest = 0
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._live = 0
        self._last_end = self._activity = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="persuasion-step-batcher", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """A session starts playing: batches wait (up to the window) for its steps."""
        with self._cond:
            self._live += 1
            self._cond.notify_all()
        self.touch()

    def touch(self) -> None:
        """A session began an episode: its step may follow, so the batch waits on."""
        self._activity = time.monotonic()

    def leave(self) -> None:
        """A session is gone: batches no longer wait for it."""
        with self._cond:
            self._live -= 1
            self._cond.notify_all()

    def submit(self, index: int, action: int | str) -> Future[Played]:
        """Queue one checked step; its future resolves when its batch has been played."""
        pending = _Pending(index, action, time.monotonic())
        self._activity = pending.arrived
        with self._cond:
            if self._closed:
                raise PersuasionGymError("the server is shutting down: no more steps are played")
            self._queue.append(pending)
            self._cond.notify_all()
        return pending.future

    def close(self) -> None:
        """Play what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                opened = max(self._queue[0].arrived, self._last_end)
                while not self._closed and len(self._queue) < self._live:
                    now = time.monotonic()
                    remaining = min(max(opened, self._activity) + self.window_s, opened + 10 * self.window_s) - now
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch, self._queue = self._queue, []
            self._play(batch)
            self._last_end = time.monotonic()

    def _play(self, batch: list[_Pending]) -> None:
        env = self.env
        try:
            with self.lock:
                actions: list[Any] = [p.action for p in batch]  # all texts, or all indices (the env's type)
                played = env.play([p.index for p in batch], actions, rng=self.rng)
                outcomes = env.last_outcomes
                infos = [env.episode_info(played, j, p.action) for j, p in enumerate(batch)]
        except BaseException as exc:  # a Receiver failure: every episode of the batch stays open, to retry
            for pending in batch:
                pending.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.steps += len(batch)
        self.largest = max(self.largest, len(batch))
        for j, pending in enumerate(batch):
            info = {**jsonable(infos[j]), "cached": bool(outcomes[j].cached), "batch_size": len(batch)}
            pending.future.set_result(Played(float(played.rewards[j]), info))


class SharedEnv:
    """One persuasion env and its batcher, shared by every session of a server."""

    def __init__(self, env: PersuasionEnv, env_id: str, window_s: float = 0.02, seed: int | None = 0):
        if not isinstance(env, PersuasionEnv):
            raise ConfigError(f"{env_id} is not a persuasion env over task items (a {type(env).__name__}): serve a "
                              "task env such as Persuasion-GSM8K-v0, a table (Persuasion-Table-v0) or one registered "
                              "with persuasion_gym.register_env")
        self.env, self.env_id = env, env_id
        self.batcher = StepBatcher(env, window_s, seed)
        self._ids = {item.item_id: i for i, item in enumerate(env.dataset.items)}

    @classmethod
    def make(cls, env_id: str, kwargs: dict[str, Any], window_s: float = 0.02, seed: int | None = 0) -> SharedEnv:
        """``gym.make(env_id, **kwargs)``'s persuasion env, shared (text observations: the item's
        text is what a remote trainer reads; no featurizer is loaded)."""
        import gymnasium as gym

        import persuasion_gym  # noqa: F401  (registers the envs)

        try:
            env = gym.make(env_id, **{"observation": "text", **kwargs}).unwrapped
        except TypeError as exc:  # an argument the env does not take
            raise ConfigError(f"{env_id}: {exc}") from None
        return cls(cast(PersuasionEnv, env), env_id, window_s, seed)

    def session(self) -> Session:
        return Session(self)

    def item_index(self, item_id: str | None, item_index: int | None) -> int | None:
        """The item a reset names, if it names one; an error that says the fix if it names none
        of this env's."""
        n = len(self.env.dataset)
        if item_id is not None and item_index is not None:
            raise ConfigError("reset: give item_id or item_index, not both")
        if item_id is not None:
            if not isinstance(item_id, str) or item_id not in self._ids:
                first = self.env.dataset.items[0].item_id
                raise ConfigError(f"reset: item_id {item_id!r} is not one of this env's {n} items (split "
                                  f"{self.env.dataset.split!r}; ids look like {first!r}): pass one of them, an "
                                  f"item_index in 0..{n - 1}, or a seed")
            return self._ids[item_id]
        if item_index is not None:
            if isinstance(item_index, bool) or not isinstance(item_index, int) or not 0 <= item_index < n:
                raise ConfigError(f"reset: item_index={item_index!r}: this split holds items 0..{n - 1}")
            return item_index
        return None

    def describe(self) -> dict[str, Any]:
        """What a client needs to know of the env (the state's fixed part)."""
        env = self.env
        receiver = env.receiver
        return {
            "env_id": self.env_id, "task": env.task.name, "split": env.dataset.split, "n_items": len(env.dataset),
            "action_type": env.action_type, "signals": list(env.signals), "protocol": env.protocol.name,
            "receiver": receiver.identity if receiver is not None else env.provenance()["receiver"],
        }

    def counters(self) -> dict[str, int]:
        """What the server has played and paid so far."""
        batcher, receiver = self.batcher, self.env.receiver
        return {"batches_played": batcher.batches, "steps_played": batcher.steps, "largest_batch": batcher.largest,
                "receiver_calls": receiver.stats.calls if receiver is not None else 0,
                "cache_hits": receiver.stats.cache_hits if receiver is not None else 0}

    def close(self) -> None:
        self.batcher.close()


class Session:
    """One client's episodes over the shared env, as a Gymnasium env would play them: an
    episode is one item and one step. ``reset(seed=s)`` draws the item the single env's
    ``reset(seed=s)`` draws (an unseeded reset goes on from the session's generator);
    ``item_id``/``item_index`` name it."""

    def __init__(self, shared: SharedEnv):
        self.shared = shared
        self.rng: np.random.Generator | None = None
        self.index: int | None = None  # the open episode's item
        self.last: int | None = None  # the open or last episode's item
        self.observed: dict[str, Any] = {}  # what the Advisor observes besides the item (text posterior)
        self.episode_id: str | None = None
        self.step_count = 0
        self.done = False
        self._joined = False

    def reset(self, seed: int | None = None, item_id: str | None = None, item_index: int | None = None,
              episode_id: str | None = None) -> dict[str, Any]:
        """Begin an episode; returns the item (``item_text``, ``item_id``, ``item_index``) and
        ``info``: what the Advisor observes besides it (under the text posterior protocol)."""
        env = self.shared.env
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"reset: seed={seed!r} must be a whole number, 0 or more")
        chosen = self.shared.item_index(item_id, item_index)
        if seed is not None or self.rng is None:
            self.rng, _ = seeding.np_random(seed)
        index = chosen if chosen is not None else int(self.rng.integers(len(env.dataset)))
        observed: dict[str, Any] = {}
        if isinstance(env.protocol, TextPosteriorProtocol):  # reads the online estimate: not while a batch learns
            with self.shared.batcher.lock:
                observed = env.observed_items(np.array([index]), self.rng, one=True)
        if not self._joined:
            self.shared.batcher.join()
            self._joined = True
        else:
            self.shared.batcher.touch()
        self.index = self.last = index
        self.done, self.step_count, self.observed = False, 0, jsonable(observed)
        self.episode_id = episode_id or uuid.uuid4().hex
        item = env.dataset.items[index]
        return {"item_text": item.text, "item_id": item.item_id, "item_index": index, "info": dict(self.observed)}

    def check(self, signal: str | None = None, index: int | None = None) -> int | str:
        """The action a step sends, checked as the Gymnasium env checks it (its messages): a
        text, or a signal library index (in a text-action env, the library's text)."""
        env = self.shared.env
        if (signal is None) == (index is None):
            kind = "texts" if env.action_type == "text" else "indices"
            raise InvalidActionError(
                f"send exactly one of signal (the signal's text) or index (its position in the state's signals, "
                f"0..{len(env.signals) - 1}); this env takes {kind}")
        if index is not None and env.action_type == "text":
            return env.signals[env.check_signal(index)]
        return env.check_action(signal if signal is not None else index)

    def step(self, signal: str | None = None, index: int | None = None) -> Played:
        """Send the signal for the open episode's item; blocks until its batch is played. A bad
        action or a Receiver failure raises with the episode still open (step again)."""
        return self.finish(self.submit(signal, index).result())

    def submit(self, signal: str | None = None, index: int | None = None) -> Future[Played]:
        """``step``'s first half, for a caller that waits its own way (an event loop): the
        checked step queued for its batch. ``finish`` the result to close the episode."""
        if self.index is None:
            raise PersuasionGymError("the episode is over (or never began): call reset() before step()")
        return self.shared.batcher.submit(self.index, self.check(signal, index))

    def finish(self, played: Played) -> Played:
        """``step``'s second half: close the episode; the step's info is the single env's (the
        item's, what the Advisor observed, the episode's)."""
        assert self.index is not None  # submit() had an open episode
        item = jsonable(self.shared.env.item_info(self.index))
        self.index, self.done = None, True
        self.step_count += 1
        return Played(played.reward, {**item, **self.observed, **played.info})

    def close(self) -> None:
        if self._joined:
            self._joined = False
            self.shared.batcher.leave()
