"""Classic Bayesian persuasion games as environments, measured against the LP optimum."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from persuasion_gym.errors import ConfigError, InvalidActionError
from persuasion_gym.games import Game, prosecutor, random_game, solve
from persuasion_gym.persuasion import bayes


class ClassicPersuasionEnv(gym.Env):
    """
    ## Description
    A finite Bayesian persuasion game (Kamenica and Gentzkow, 2011) with no language model. A
    state is drawn from the prior; the Advisor (the Sender) observes it and sends a signal; the
    Receiver, who knows the Advisor's committed scheme as the Dirichlet(alpha)-smoothed
    frequencies of its past (state, signal) pairs, forms its posterior and best-responds (ties
    in the Sender's favour). The reward is the Sender's utility. The optimal value comes from
    the linear program of ``persuasion_gym.games.solve``, so regret is exact.

    ## Action Space
    `action_mode="signal"` (default): `Discrete(K)`, K = `n_signals` (default: the number of
    Receiver actions). `action_mode="scheme"`: `Box(0, 1, (states, K))`, a whole scheme (rows
    are normalised; an all-zero row is uniform), for one-shot scheme design.

    ## Observation Space
    `Box(0, 1, (states,), float32)`: the one-hot state (signal mode), or the prior (scheme mode).

    ## Rewards
    Signal mode: u_S(state, Receiver's action). Scheme mode: the scheme's exact expected u_S.

    ## Episode End
    `horizon=1` (default): one round per episode, and the Receiver's knowledge of the scheme
    persists across episodes (online persuasion over the env's life). `horizon=T > 1`: the
    repeated game, T rounds per episode; `reset()` starts the Receiver afresh.

    ## Info
    `posterior`, `receiver_action`, `state`, `optimal_value` (the LP optimum per round),
    `regret` (cumulative optimal value minus reward: over the env's life, or the episode when
    `horizon > 1`), and `game` (`prior`, `sender_utility`, `receiver_utility`, states x actions).

    ## Arguments
    `game` (a `Game`), or `n_states`, `n_actions`, `game_seed` for a random game; `n_signals`,
    `action_mode`, `horizon`, `alpha`, `render_mode` ("ansi").
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self, game: Game | None = None, n_states: int = 3, n_actions: int = 3, game_seed: int = 0,
        n_signals: int | None = None, action_mode: Literal["signal", "scheme"] = "signal", horizon: int = 1,
        alpha: float = 1.0, render_mode: str | None = None,
    ):
        if action_mode not in ("signal", "scheme"):
            raise ConfigError(f"action_mode={action_mode!r}: use 'signal' or 'scheme'")
        if horizon < 1:
            raise ConfigError(f"horizon={horizon}: at least 1 round per episode")
        self.game = game if game is not None else random_game(n_states, n_actions, game_seed)
        self.solution = solve(self.game)
        self.k = n_signals or self.game.n_actions
        self.action_mode, self.horizon, self.alpha, self.render_mode = action_mode, horizon, alpha, render_mode
        m = self.game.n_states
        self.observation_space = spaces.Box(0.0, 1.0, (m,), np.float32)
        if action_mode == "signal":
            self.action_space = spaces.Discrete(self.k)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (m, self.k), np.float32)
        self.counts = np.zeros((m, self.k))
        self.regret, self.rounds = 0.0, 0
        self._state: int | None = None
        self._last: dict[str, Any] | None = None

    @property
    def optimal_value(self) -> float:
        """The LP optimum (with K >= actions signals it is attainable; fewer may lose value)."""
        return self.solution.value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.horizon > 1 or seed is not None:  # a new repeated game, or a seeded restart
            self.counts[:] = 0
            self.regret, self.rounds = 0.0, 0
        self._t = 0
        return self._draw(), {"state": self._state}

    def _draw(self) -> np.ndarray:
        if self.action_mode == "scheme":
            self._state = None
            return self.game.prior.astype(np.float32)
        self._state = int(self.np_random.choice(self.game.n_states, p=self.game.prior))
        return np.eye(self.game.n_states, dtype=np.float32)[self._state]

    def step(self, action):
        if self.action_mode == "scheme":
            scheme = np.asarray(action, dtype=np.float64).reshape(self.game.n_states, self.k).clip(0, None)
            sums = scheme.sum(axis=1, keepdims=True)
            scheme = np.where(sums > 0, scheme / np.where(sums > 0, sums, 1), 1.0 / self.k)
            reward = self.game.scheme_value(scheme)
            info: dict[str, Any] = {"scheme": scheme}
            terminated = True
        else:
            scalar = np.asarray(action).reshape(()).astype(np.int64) if np.asarray(action).size == 1 else action
            if not self.action_space.contains(scalar):
                raise InvalidActionError(f"action {action!r} is not a signal: pass an integer in 0..{self.k - 1}")
            g, x = int(np.asarray(action).item()), self._state
            posterior = bayes.posteriors(self.game.prior, bayes.scheme_from_counts(self.counts, self.alpha))[g]
            receiver_action = self.game.best_response(posterior)
            reward = float(self.game.sender_utility[x, receiver_action])
            self.counts[x, g] += 1
            info = {"posterior": posterior, "receiver_action": receiver_action, "state": x, "signal": g}
            self._t += 1
            terminated = self._t >= self.horizon
        self.rounds += 1
        self.regret += self.optimal_value - reward
        info.update(optimal_value=self.optimal_value, regret=self.regret, rounds=self.rounds, game=self.game.as_dict())
        self._last = {**info, "reward": reward}
        observation = self._draw() if not terminated else np.zeros(self.game.n_states, np.float32)
        return observation, reward, terminated, False, info

    # Gymnasium types render() over a free TypeVar, which no concrete return type matches.
    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi" or self._last is None:
            return None
        last = self._last
        return (f"state {last.get('state')} -> signal {last.get('signal')} -> action {last.get('receiver_action')}, "
                f"reward {last['reward']:.3f}, regret {last['regret']:.3f} after {last['rounds']} rounds")


class ProsecutorEnv(ClassicPersuasionEnv):
    """The prosecutor-judge game (prior of guilt 0.3; the judge convicts when at least 0.5
    sure). The optimal scheme convicts with probability 0.6. See ``ClassicPersuasionEnv``."""

    def __init__(self, prior_guilty: float = 0.3, **kwargs: Any):
        super().__init__(game=prosecutor(prior_guilty), **kwargs)
