"""The parts ``PersuasionEnv`` builds from its settings: the data set, then (once the signal
library is known) the information items' states, the protocol, the action space and the
observation space. Each is a function of what it needs, so each can be read (and tested) alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from persuasion_gym.envs.settings import EnvSettings
from persuasion_gym.envs.text_space import ItemText, SignalText
from persuasion_gym.errors import ConfigError
from persuasion_gym.featurizers import Featurizer, cached_features, make_featurizer
from persuasion_gym.persuasion import Protocol, bayes, make_protocol
from persuasion_gym.signals import SIGNAL_CHARSET, SignalLibrary
from persuasion_gym.tables import ResponseTable, load_table
from persuasion_gym.tasks import Dataset, Task


def build_dataset(task: Task, settings: EnvSettings) -> Dataset:
    """The task's split (or the given ``dataset``), cut to ``max_items``."""
    given, n = settings.dataset, settings.max_items
    if given is None:
        return task.load(settings.split, None if settings.data_path is None else str(settings.data_path), n)
    if n is None:
        return given
    return Dataset(given.name, given.split, given.items[:n], given.source, given.sha256)


@dataclass(frozen=True)
class States:
    """Where the protocol's states come from. The information items are the signal library's
    texts; an item's state is its best cell in the replayed table, or in a table recorded for
    that purpose (``state_table``); ties (frequent with 0/1 scores) are broken at random,
    seeded (``bayes.states``). Without either, the posterior protocols estimate them online."""

    states: np.ndarray | None = None
    tied: np.ndarray | None = None
    source: str | None = None  # "table" or "state_table"
    rows: np.ndarray | None = None  # each item's row in the source table


def build_states(table: ResponseTable | None, settings: EnvSettings, signals: SignalLibrary,
                 dataset: Dataset) -> States:
    """The items' states from the replayed ``table``, else from ``settings.state_table``."""
    source = table if table is not None else None if settings.state_table is None else load_table(settings.state_table)
    if source is None:
        return States()
    source.check_signals(list(signals))
    rows = source.rows_for(dataset)
    return States(bayes.states(source.utilities[rows]), bayes.tied(source.utilities[rows]),
                  "table" if table is not None else "state_table", rows)


def build_protocol(settings: EnvSettings, signals: SignalLibrary, dataset: Dataset, states: States) -> Protocol:
    """The persuasion protocol over the library's ``m`` information items; the prior defaults to
    the frequency of each state among a table's items, else uniform."""
    m = len(signals)
    prior = settings.prior
    if isinstance(prior, str):
        if prior != "uniform":
            raise ConfigError(f"prior={prior!r}: use 'uniform', an array over the {m} information items, or None")
        prior = None
    elif prior is None and states.states is not None:
        prior = bayes.state_prior(states.states, m)
    return make_protocol(settings.protocol, m, prior, settings.n_signals, settings.scheme, settings.alpha,
                         states.states, len(dataset), text=settings.action_type == "text", item_texts=list(signals),
                         questions=dataset.texts, tied=states.tied)


def build_action_space(settings: EnvSettings, protocol: Protocol, signals: SignalLibrary) -> spaces.Space:
    """``Discrete`` over the protocol's actions, or with text actions ``SignalText`` whose
    charset admits what a language model writes and the library's own texts."""
    if settings.action_type != "text":
        return spaces.Discrete(protocol.n_actions)
    charset = "".join(sorted(set(settings.signal_charset or SIGNAL_CHARSET) | set("".join(signals))))
    return SignalText(max_length=settings.max_signal_length, min_length=0, charset=charset)


def build_observation_space(
    settings: EnvSettings, task: Task, dataset: Dataset
) -> tuple[spaces.Space, Featurizer | None, np.ndarray | None]:
    """(the observation space, the featurizer, every item's features): a unit-norm ``Box``
    vector per item, computed once per data set and cached on disk; or with text observations
    ``ItemText`` over the task's charset (all its official items) and this data's own characters."""
    texts = dataset.texts
    if settings.observation == "features":
        featurizer = make_featurizer(settings.featurizer)
        return spaces.Box(-1.0, 1.0, (featurizer.dim,), np.float32), featurizer, cached_features(featurizer, texts)
    charset = "".join(sorted(set(task.charset) | set("".join(texts))))
    length = max(task.max_text_length, *map(len, texts))
    return ItemText(max_length=length, min_length=0, charset=charset), None, None
