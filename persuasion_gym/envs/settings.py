"""What a persuasion env is made of: ``EnvSettings``, every argument ``gym.make`` passes to
``PersuasionEnv`` besides the task, with the checks that need nothing loaded (``validate``).

The task envs (``GSM8KEnv``, ...) fix the task and take these as keywords; ``PersuasionEnv``
validates them before it loads a data set, a table or a Receiver, so a bad argument fails first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np

from persuasion_gym.errors import ConfigError
from persuasion_gym.featurizers import Featurizer
from persuasion_gym.persuasion import Protocol, TextScheme
from persuasion_gym.receivers import Receiver, ResponseCache
from persuasion_gym.signals import SignalLibrary
from persuasion_gym.tables import ResponseTable
from persuasion_gym.tasks import Dataset

Observation = Literal["features", "text"]
ActionType = Literal["index", "text"]


@dataclass
class EnvSettings:
    """The arguments of every persuasion env over task items.

    Arguments:
        receiver: a ``Receiver``, or a spec such as ``"openai:MODEL@http://127.0.0.1:8000/v1"``,
            ``"embedded"`` or ``"table:PATH"`` (replay a recorded table); ``"auto"`` (default)
            reads ``$PERSUASION_GYM_RECEIVER``, else ``$OPENAI_BASE_URL``/``$OPENAI_API_KEY``,
            else the embedded model. ``None`` needs ``table``.
        split: the data set's split (``"train"``, ``"test"``, ...; the task env says which).
        data_path: a data file or a directory holding ``{split}.jsonl``; default: the task's
            files under ``$PERSUASION_GYM_DATA_DIR``, else the hub (needs ``datasets``).
        signals: signal texts replacing the default library (a table's own, on a table).
        protocol: ``"direct"`` (the signal is the Receiver's context), ``"none"`` (the item
            alone), ``"prior"`` (an information item drawn from the prior), ``"posterior"`` (the
            Receiver updates on the Advisor's scheme; ``persuasion_gym.persuasion.protocols``),
            or a ``Protocol``.
        featurizer: ``"auto"``, ``"minilm"``, ``"hashed"`` or a ``Featurizer`` (features observation).
        max_items: keep the first N items of the split.
        observation: ``"features"`` (a unit-norm ``Box`` vector of the item) or ``"text"``
            (the item itself, ``spaces.Text``).
        samples_per_cell: Receiver samples per (item, context); visits cycle through them, so a
            cell costs at most this many calls (1 suits greedy decoding).
        on_receiver_error: ``"raise"`` (default) or ``"zero"`` (reward 0, ``info["receiver_error"]``).
        cache: the persistent response cache: ``True`` (the default file), ``False``, a path or
            a ``ResponseCache``.
        render_mode: ``"ansi"`` renders the last exchange as text; ``None`` renders nothing.
        table: a recorded table (path or ``ResponseTable``) to replay instead of a Receiver.
        table_reward: on a table, ``"sample"`` (one recorded sample, seeded) or ``"mean"``.
        prior: the prior over the information items (the signal library's texts) under the
            posterior protocols: an array, ``"uniform"``, or ``None`` (a table's state frequencies,
            else uniform).
        scheme: a committed scheme (an array, or a ``TextScheme`` for text actions); default:
            the Receiver estimates it online.
        n_signals: how many signals the Advisor may send under ``posterior``
            (default: one per information item).
        alpha: the Dirichlet smoothing of the online scheme estimate.
        dataset: a loaded ``Dataset`` instead of the task's split (``split``, ``data_path`` unused).
        action_type: ``"index"`` (a signal library index, ``Discrete``) or ``"text"`` (the
            signal's text itself; needs a live Receiver).
        max_signal_length: the longest text action, in characters.
        signal_charset: the characters a text action may hold (default: what a language model
            writes, and the library's own texts).
        state_table: a table recorded to give the posterior protocols their states, for a live
            Receiver (a table's own states come from it).
    """

    receiver: str | Receiver | None = "auto"
    split: str = "train"
    data_path: str | Path | None = None
    signals: Sequence[str] | SignalLibrary | None = None
    protocol: str | Protocol = "direct"
    featurizer: str | Featurizer = "auto"
    max_items: int | None = None
    observation: Observation = "features"
    samples_per_cell: int = 1
    on_receiver_error: Literal["raise", "zero"] = "raise"
    cache: ResponseCache | str | Path | bool | None = True
    render_mode: str | None = None
    table: str | Path | ResponseTable | None = None
    table_reward: Literal["sample", "mean"] = "sample"
    prior: Sequence[float] | np.ndarray | Literal["uniform"] | None = None
    scheme: np.ndarray | TextScheme | None = None
    n_signals: int | None = None
    alpha: float = 1.0
    dataset: Dataset | None = None
    action_type: ActionType = "index"
    max_signal_length: int = 512
    signal_charset: str | None = None
    state_table: str | Path | ResponseTable | None = None

    def __post_init__(self) -> None:
        # ``receiver="table:PATH"`` is the table's spelling on the command line and in gym.make.
        if isinstance(self.receiver, str) and self.receiver.startswith("table:"):
            self.table, self.receiver = self.receiver.removeprefix("table:"), None

    def validate(self, render_modes: Sequence[str] = ("ansi",)) -> None:
        """Raise a ``ConfigError`` naming the fix for any argument out of range or at odds with
        another; what needs the data, the table or the Receiver is checked as they load."""
        if self.observation not in ("features", "text"):
            raise ConfigError(f"observation={self.observation!r}: use 'features' (a Box vector) or 'text'")
        if self.on_receiver_error not in ("raise", "zero"):
            raise ConfigError(f"on_receiver_error={self.on_receiver_error!r}: use 'raise' or 'zero'")
        if self.table_reward not in ("sample", "mean"):
            raise ConfigError(f"table_reward={self.table_reward!r}: use 'sample' (one recorded sample) or 'mean'")
        if self.samples_per_cell < 1:
            raise ConfigError(f"samples_per_cell={self.samples_per_cell}: must be at least 1")
        if self.render_mode is not None and self.render_mode not in render_modes:
            raise ConfigError(f"render_mode={self.render_mode!r}: use one of {list(render_modes)} or None")
        if self.action_type not in ("index", "text"):
            raise ConfigError(f"action_type={self.action_type!r}: use 'index' (a signal library index) or 'text' "
                              "(the signal's text itself)")
        if self.max_signal_length < 1:
            raise ConfigError(f"max_signal_length={self.max_signal_length}: must be at least 1 character")
        if self.action_type == "text" and self.table is not None:
            raise ConfigError("text actions on a recorded table: a table only knows its own signals, so it cannot "
                              "answer new texts; use a live Receiver (receiver='openai:MODEL@URL', 'embedded', ...), "
                              "or action_type='index'")
        if self.table is None and self.receiver is None:
            raise ConfigError("receiver=None needs a table: pass receiver='table:PATH' or a Receiver spec")


SETTING_NAMES: frozenset[str] = frozenset(f.name for f in fields(EnvSettings))
