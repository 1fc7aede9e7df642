"""Protocols: what the Receiver sees when the Advisor sends a signal (``docs/protocols.md``).

Every protocol maps a batch of (task item, action) pairs to an **information item** per
episode (an index into the env's information items, by default the signal library's texts;
-1 for no context) and, for the Bayesian protocols, the Receiver's belief over them.

- ``direct``: the signal text itself is the context (the default; K = m).
- ``none``: the question alone, whatever the action.
- ``prior``: an information item drawn from the prior mu_0, whatever the action.
- ``posterior``: the signal g moves the Receiver's belief to mu_g(x) ∝ mu_0(x) sigma(g | x)
  under the Advisor's committed scheme sigma; the context is drawn from mu_g.

Actions are signal indices, or texts (``docs/text_signals.md``): under ``direct`` a text is the
context itself (no information item), and ``posterior`` with texts takes the Advisor as its
scheme (``TextPosteriorProtocol``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.persuasion import bayes
from persuasion_gym.persuasion.scheme import TextScheme


@dataclass
class Choice:
    """What a protocol decided for a batch: the information item of each episode (-1: none),
    the Receiver's beliefs (N, m) when it forms one, and the Advisor's log-likelihoods of its
    text signals under each item (text posterior)."""

    chosen: np.ndarray
    beliefs: np.ndarray | None = None
    log_likelihoods: np.ndarray | None = None


def is_text(actions: Collection) -> bool:
    """Whether a batch of actions holds signal texts rather than indices."""
    return len(actions) > 0 and isinstance(next(iter(actions)), str)


def _draw(beliefs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a (N, m) matrix of distributions (inverse CDF, vectorised)."""
    cdf = np.cumsum(beliefs, axis=1)
    u = rng.random(len(beliefs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), beliefs.shape[1] - 1)


class Protocol(ABC):
    """Chooses the context of each episode. ``m`` is the number of information items."""

    name: str

    def __init__(self, m: int):
        self.m = m

    @property
    def n_actions(self) -> int:
        return self.m

    @abstractmethod
    def choose(self, actions: Sequence | np.ndarray, items: np.ndarray, rng: np.random.Generator) -> Choice:
        """The information item of each episode (-1: no context) and the beliefs, if any."""

    def observe(  # noqa: B027 - an optional hook
        self, items: np.ndarray, actions: Sequence | np.ndarray, chosen: np.ndarray, rewards: np.ndarray
    ) -> None:
        """Learn from the scored episodes (the online protocols do)."""

    def reset(self) -> None:  # noqa: B027 - an optional hook
        """Forget what was learned online (the env calls it on a seeded reset, a fresh run);
        what was given (a fixed scheme, known states, the prior) stays."""


class DirectProtocol(Protocol):
    name = "direct"

    def choose(self, actions, items, rng):
        if is_text(actions):  # the text is the context; no information item
            return Choice(np.full(len(actions), -1, dtype=np.int64))
        return Choice(np.asarray(actions, dtype=np.int64))


class NoContextProtocol(Protocol):
    name = "none"

    def choose(self, actions, items, rng):
        return Choice(np.full(len(actions), -1, dtype=np.int64))


class PriorProtocol(Protocol):
    name = "prior"

    def __init__(self, m: int, prior: np.ndarray):
        super().__init__(m)
        self.prior = np.asarray(prior, dtype=np.float64)

    def choose(self, actions, items, rng):
        beliefs = np.tile(self.prior, (len(actions), 1))
        return Choice(_draw(beliefs, rng), beliefs)


class PosteriorProtocol(Protocol):
    """The paper's protocol, with an online or a given committed scheme.

    Args:
        m: information items; n_signals: K, the Advisor's signals (default m; K < m makes
            the Advisor pool states).
        prior: mu_0 over the information items.
        scheme: a fixed (m, K) committed scheme, or None to estimate it online as the
            Dirichlet(alpha)-smoothed counts of (state, signal) over past episodes (since the
            last ``reset()``, which a seeded env reset calls).
        states: theta(q) per task item when known (from a table), else None: then theta(q) is
            estimated as the information item with the best running mean reward seen for q
            (ties broken at random, seeded, as ``bayes.states`` breaks them); episodes whose
            state is still unknown do not update the scheme. The estimate only knows the cells
            the env has sampled, which the posterior itself steers, so early on it favours the
            items the scheme reveals.
        tied: per task item, whether its given state was a tie (``bayes.tied``), when known.
    """

    name = "posterior"

    def __init__(self, m: int, prior: np.ndarray, n_signals: int | None = None, scheme: np.ndarray | None = None,
                 alpha: float = 1.0, states: np.ndarray | None = None, n_items: int = 0,
                 tied: np.ndarray | None = None):
        super().__init__(m)
        self.k = n_signals or m
        self.prior = np.asarray(prior, dtype=np.float64)
        self.alpha = alpha
        self.fixed_scheme = None if scheme is None else np.asarray(scheme, dtype=np.float64)
        if self.fixed_scheme is not None and self.fixed_scheme.shape != (m, self.k):
            raise ConfigError(f"scheme has shape {self.fixed_scheme.shape}; "
                              f"expected (information items, signals) = ({m}, {self.k})")
        self.counts = np.zeros((m, self.k))
        self.estimate = StateEstimate(m, n_items, states, tied)

    @property
    def n_actions(self) -> int:
        return self.k

    @property
    def scheme(self) -> np.ndarray:
        """sigma(g | x) as the Receiver knows it now."""
        return self.fixed_scheme if self.fixed_scheme is not None else bayes.scheme_from_counts(self.counts, self.alpha)

    def choose(self, actions, items, rng):
        if is_text(actions):
            raise ConfigError("text signals under protocol='posterior' need the Advisor as the committed scheme: "
                              "pass scheme=<an object with log_likelihoods()>, e.g. a persuasion_agents LMAdvisor")
        beliefs = bayes.posteriors(self.prior, self.scheme)[np.asarray(actions, dtype=np.int64)]
        return Choice(_draw(beliefs, rng), beliefs)

    def state_of(self, items: np.ndarray) -> np.ndarray:
        """theta(q) per item, -1 where unknown."""
        return self.estimate.state_of(items)

    def observe(self, items, actions, chosen, rewards):
        items, actions = np.asarray(items), np.asarray(actions)
        self.estimate.observe(items, chosen, rewards)
        theta = self.state_of(items)
        known = theta >= 0
        np.add.at(self.counts, (theta[known], actions[known]), 1)

    def reset(self) -> None:
        self.counts[:] = 0
        self.estimate.reset()


class StateEstimate:
    """theta(q): exact when given (a table's best cells, ``tied`` saying which of them were
    ties), else online, the information item with the best running mean reward seen for q
    (-1 until one cell of q is seen). Online ties are broken as ``bayes.states`` breaks them:
    among the best seen items, the one with the largest seeded key (``bayes.tie_keys`` of the
    task items, drawn once from ``seed``: the same keys for the whole run). Only the cells
    the env has sampled count, and the posterior steers which those are, so early on the
    estimate favours the items the scheme already reveals."""

    def __init__(self, m: int, n_items: int, states: np.ndarray | None = None, tied: np.ndarray | None = None,
                 seed: int | None = bayes.TIE_SEED):
        self.states = None if states is None else np.asarray(states, dtype=np.int64)
        self.given_tied = None if tied is None or states is None else np.asarray(tied, dtype=bool)
        self._sums = np.zeros((n_items, m)) if states is None else None
        self._seen = np.zeros((n_items, m)) if states is None else None
        self._keys = bayes.tie_keys((n_items, m), seed) if states is None else None

    @property
    def given(self) -> bool:
        """Whether the states are given (exact) rather than estimated online."""
        return self.states is not None

    def _means(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._sums is not None and self._seen is not None  # no states: estimated online
        seen = self._seen[items]
        return np.where(seen > 0, self._sums[items] / np.maximum(seen, 1), -np.inf), seen.any(axis=1)

    def state_of(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        if self.states is not None:
            return self.states[items]
        means, any_seen = self._means(items)
        keys = None if self._keys is None else self._keys[items]
        return np.where(any_seen, bayes.argmax_with_ties(means, keys), -1)

    def tied_of(self, items: np.ndarray) -> np.ndarray:
        """Per item, whether its (estimated) state is a tie the tie-break decided (False
        where unknown, or where given states came without their ties)."""
        items = np.asarray(items, dtype=np.int64)
        if self.states is not None:
            return self.given_tied[items] if self.given_tied is not None else np.zeros(len(items), dtype=bool)
        means, any_seen = self._means(items)
        return any_seen & bayes.tied(means)

    def observe(self, items: np.ndarray, chosen: np.ndarray, rewards: np.ndarray) -> None:
        if self._sums is not None and self._seen is not None:
            shown = chosen >= 0
            np.add.at(self._sums, (items[shown], chosen[shown]), rewards[shown])
            np.add.at(self._seen, (items[shown], chosen[shown]), 1)

    def reset(self) -> None:
        """Forget the rewards seen (given states stay)."""
        if self._sums is not None and self._seen is not None:
            self._sums[:] = 0
            self._seen[:] = 0


class TextPosteriorProtocol(Protocol):
    """The paper's protocol with signals in words: the committed scheme is the Advisor.

    At reset the Advisor observes the state x* of the question (``observe_states``: exact
    when states are given, else the online estimate as it stands at that call, drawn from
    mu_0 while unknown). For a signal g the Receiver's belief is mu_g(x) ∝ mu_0(x) pi(g | q, x),
    from the scheme's log-likelihoods of g under every item; the context is g with an item
    drawn from mu_g. A NaN (or +inf) log-likelihood is an error naming the scheme.

    Args:
        m: information items (``item_texts``); prior: mu_0 over them.
        scheme: a ``TextScheme`` (the Advisor). questions: the task items' texts.
        states: theta(q) per task item when known, else None (the online estimate).
        tied: per task item, whether its given state was a tie (``bayes.tied``), when known.
    """

    name = "posterior"

    def __init__(self, m: int, prior: np.ndarray, scheme: TextScheme, item_texts: Sequence[str],
                 questions: Sequence[str], states: np.ndarray | None = None, tied: np.ndarray | None = None):
        super().__init__(m)
        if not isinstance(scheme, TextScheme):
            raise ConfigError(f"scheme={scheme!r} is not a text scheme: with text signals pass an object with "
                              "log_likelihoods(questions, signals, items), e.g. a persuasion_agents LMAdvisor")
        self.prior = np.asarray(prior, dtype=np.float64)
        self.scheme, self.item_texts, self.questions = scheme, list(item_texts), list(questions)
        self.estimate = StateEstimate(m, len(self.questions), states, tied)

    def observe_states(self, items: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The item x* the Advisor observes per task item, and whether it is the (estimated)
        state (True) or a draw from the prior because the state is still unknown (False).
        The estimate is read at this call (online, it moves with every scored batch), and a
        task item that occurs several times in one call observes one x* (one draw while its
        state is unknown): a GRPO group of one prompt sees one item."""
        items = np.asarray(items, dtype=np.int64)
        theta = self.estimate.state_of(items)
        known = theta >= 0
        if not known.all():
            unique, first, inverse = np.unique(items, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")  # one draw per task item, in order of appearance
            draws = np.empty(len(unique), dtype=np.int64)
            draws[order] = _draw(np.tile(self.prior, (len(unique), 1)), rng)
            theta = np.where(known, theta, draws[inverse.reshape(-1)])
        return theta.astype(np.int64), known

    def choose(self, actions, items, rng):
        if not is_text(actions):
            raise ConfigError("this posterior protocol takes the Advisor's signal texts: make the env with "
                              "action_type='text'")
        questions = [self.questions[int(i)] for i in items]
        log_likelihoods = np.asarray(self.scheme.log_likelihoods(questions, list(actions), self.item_texts),
                                     dtype=np.float64)
        if log_likelihoods.shape != (len(actions), self.m):
            raise ConfigError(f"the scheme {scheme_name(self.scheme)} returned log-likelihoods of shape "
                              f"{log_likelihoods.shape}; expected (signals, information items) = "
                              f"({len(actions)}, {self.m})")
        bad = np.isnan(log_likelihoods) | (log_likelihoods == np.inf)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            first = int(rows[0])
            raise ConfigError(
                f"the scheme {scheme_name(self.scheme)} returned NaN or +inf log-likelihoods for {len(rows)} of "
                f"{len(actions)} signals (first: signal {str(actions[first])[:60]!r} on task item {int(items[first])}, "
                f"items {np.flatnonzero(bad[first]).tolist()}): the Receiver cannot update its belief on them; "
                "a log-likelihood is a number <= 0, or -inf where the signal is impossible: fix the scheme")
        beliefs = bayes.posteriors_from_log_likelihoods(self.prior, log_likelihoods)
        return Choice(_draw(beliefs, rng), beliefs, log_likelihoods)

    def observe(self, items, actions, chosen, rewards):
        self.estimate.observe(np.asarray(items), np.asarray(chosen), np.asarray(rewards))

    def reset(self) -> None:
        self.estimate.reset()


def scheme_name(scheme: object) -> str:
    """A committed text scheme as errors and provenance name it: its ``identity`` when it has
    one (an ``LMAdvisor``: kind and source), else its class."""
    identity = getattr(scheme, "identity", None)
    if isinstance(identity, dict):
        shown = ", ".join(f"{k}={identity[k]}" for k in ("kind", "source") if k in identity)
        return f"{type(scheme).__name__}({shown})" if shown else type(scheme).__name__
    return str(identity) if identity else type(scheme).__name__


PROTOCOLS = ("direct", "posterior", "prior", "none")


def make_protocol(
    protocol: str | Protocol,
    m: int,
    prior: Sequence[float] | np.ndarray | None = None,
    n_signals: int | None = None,
    scheme: np.ndarray | TextScheme | None = None,
    alpha: float = 1.0,
    states: np.ndarray | None = None,
    n_items: int = 0,
    text: bool = False,
    item_texts: Sequence[str] = (),
    questions: Sequence[str] = (),
    tied: np.ndarray | None = None,
) -> Protocol:
    """A protocol by name over ``m`` information items (``prior`` defaults to uniform).
    ``text=True``: the Advisor writes its signals; ``posterior`` then needs a ``TextScheme``
    (with ``item_texts`` and the task items' ``questions``). ``tied``: which given ``states``
    were ties (``bayes.tied``), for what the env reports."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if protocol in ("direct", "none") and (n_signals not in (None, m) or scheme is not None):
        raise ConfigError(f"n_signals and scheme apply to the posterior protocol, not {protocol!r}")
    prior = np.full(m, 1.0 / m) if prior is None else np.asarray(prior, dtype=np.float64)
    if prior.shape != (m,) or (prior < 0).any() or not np.isclose(prior.sum(), 1.0):
        raise ConfigError(f"prior must be a distribution over the {m} information items")
    if protocol == "direct":
        return DirectProtocol(m)
    if protocol == "none":
        return NoContextProtocol(m)
    if protocol == "prior":
        return PriorProtocol(m, prior)
    if text:
        if scheme is None or not isinstance(scheme, TextScheme):
            raise ConfigError("protocol='posterior' with text signals needs the Advisor as its committed scheme: pass "
                              "scheme=<an object with log_likelihoods(questions, signals, items)>, "
                              "e.g. a persuasion_agents LMAdvisor (an (m, K) matrix is for index actions)")
        if n_signals is not None:
            raise ConfigError("n_signals counts index signals: with text signals the Advisor writes them")
        return TextPosteriorProtocol(m, prior, scheme, item_texts, questions, states, tied)
    if isinstance(scheme, TextScheme):
        raise ConfigError("a text scheme (an Advisor that writes signals) needs text actions: make the env with "
                          "action_type='text'")
    return PosteriorProtocol(m, prior, n_signals, scheme, alpha, states, n_items, tied)
