"""What made a persuasion env's rewards, as result files record it: the package, the task and
its settings, the data set, the Receiver (or the table), the signals, the protocol and where
its states come from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

import persuasion_gym
from persuasion_gym.envs.text_space import SignalText
from persuasion_gym.persuasion import TextPosteriorProtocol, bayes

if TYPE_CHECKING:
    from persuasion_gym.envs.persuasion_env import PersuasionEnv


def env_provenance(env: PersuasionEnv) -> dict[str, Any]:
    """What made this env's rewards, as result files record it."""
    source: dict[str, Any]
    if env.table is not None:
        source = {"receiver": env.table.meta["receiver"], "table": {
            k: env.table.meta[k] for k in ("created", "package_version") if k in env.table.meta}}
        source["table"]["reward"] = env.table_reward
        source["system_fingerprints"] = env.table.meta.get("system_fingerprints", [])
    else:
        assert env.receiver is not None  # no table: __init__ made one
        source = {"receiver": env.receiver.identity,
                  "system_fingerprints": sorted(env.receiver.stats.fingerprints)}
    extra: dict[str, Any] = {"action_type": env.action_type}
    if env.action_type == "text":
        extra["max_signal_length"] = cast(SignalText, env.action_space).max_length
    if isinstance(env.protocol, TextPosteriorProtocol):
        scheme = env.protocol.scheme
        extra["scheme"] = getattr(scheme, "identity", None) or type(scheme).__name__
    states = states_provenance(env)
    if states is not None:
        extra["states"] = states
    return {
        "package_version": persuasion_gym.__version__,
        "task": env.task.name,
        "task_settings": env.task.settings(),
        "dataset": {"name": env.dataset.name, "split": env.dataset.split, "source": env.dataset.source,
                    "sha256": env.dataset.sha256, "n_items": len(env.dataset)},
        **source,
        "signals": list(env.signals),
        "signals_sha256": env.signals.fingerprint,
        "protocol": env.protocol.name,
        "featurizer": None if env.featurizer is None else env.featurizer.fingerprint,
        "samples_per_cell": env.samples_per_cell,
        **extra,
    }


def states_provenance(env: PersuasionEnv) -> dict[str, Any] | None:
    """Where the protocol's states come from and how ties were broken, as result files
    record it (under the posterior protocols): ``given`` (a table's or ``state_table``'s
    best cells; ``ties``: how many of this split's items tied) or ``online`` (the
    running estimate, whose ties change as it learns: each episode's ``observed_tie``)."""
    estimate = getattr(env.protocol, "estimate", None)
    if estimate is None:
        return None
    if not estimate.given:
        return {"source": "online", "tie_break": bayes.TIE_BREAK, "tie_seed": bayes.TIE_SEED}
    ties = int(estimate.tied_of(np.arange(len(env.dataset))).sum())
    return {"source": env.state_source or "given", "ties": ties, "tie_break": bayes.TIE_BREAK,
            "tie_seed": bayes.TIE_SEED}
