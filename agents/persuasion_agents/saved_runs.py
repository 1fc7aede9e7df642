"""Saved benchmark runs: where each is saved, every setting its result depends on (its run
key), and whether a saved run answers a new one. A run is reused only under an equal key, so a
rerun under other settings recomputes exactly the runs they change."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym

from persuasion_agents.baselines import BestFixed
from persuasion_agents.registry import SEEDLESS, make_policy
from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError

if TYPE_CHECKING:
    from persuasion_agents.benchmark import Setting

logger = logging.getLogger(__name__)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def run_path(out: Path, setting: Setting, name: str) -> Path:
    """Where a benchmark in ``out`` saves the run of policy ``name`` in ``setting``."""
    return out / "runs" / f"{slug(setting.key)}__{name}.json"


def _jsonable(value: Any) -> Any:
    """A policy option as a run key records it: a dataclass (``AdvisorTraining``) as its fields,
    an object with an ``identity`` (an ``LMAdvisor``) as that."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    identity = getattr(value, "identity", None)
    if isinstance(identity, dict):
        return identity
    raise ConfigError(f"policy option {value!r}: a benchmark run records its settings, and this one has no JSON "
                      "form (pass a str, number, dataclass or an object with an `identity` dict)")


def _advisor_key(advisor: Any) -> tuple[Any, bool]:
    """What an ``lm-advisor`` run's ``advisor`` option is (a trained directory: its
    ``advisor.json`` too, so retraining into the same directory counts), and whether the
    policy trains it first (untrained: ``embedded``, a hub id, a source directory)."""
    if isinstance(advisor, str | Path):
        from persuasion_agents.lm_advisor.model import ADVISOR_FILE

        file = Path(advisor) / ADVISOR_FILE
        if not file.is_file():
            return str(advisor), True
        info = json.loads(file.read_text())
        return {"source": str(advisor), ADVISOR_FILE: info}, info.get("trained_on") is None
    return _jsonable(advisor), advisor.info.trained_on is None


def run_key(name: str, setting: Setting, eval_env: gym.Env, timesteps: int, seed: int,
            options: dict[str, Any]) -> dict[str, Any]:
    """Every setting a run's result depends on, as JSON: the held-out items and what the eval
    env says made their rewards (Receiver identity, dataset hash, signal texts, ...), the seed
    where the policy draws from it, and for a policy that trains, where and how (training
    items, featurizer, timesteps where it takes them, its options). A saved run is reused
    only under an equal key."""
    provenance = cast(PersuasionEnv, eval_env.unwrapped).provenance()
    # The package version alone changes no result; the featurizer matters only to training; the
    # backend fingerprints are what the answers said afterwards, not a setting.
    eval_source = {k: v for k, v in provenance.items()
                   if k not in ("package_version", "featurizer", "system_fingerprints")}
    key: dict[str, Any] = {"policy": name, "env": setting.env_id, "receiver": setting.receiver,
                           "split": setting.split, "n_items": setting.n_items, "eval_env": eval_source}
    options = dict(options)
    if name == "gepa":
        options.pop("out", None)  # where it searches, not how: run_benchmark derives it from this key
    if name == "lm-advisor":
        options.pop("out", None)  # where it trains, not how: run_benchmark derives it from this key
        options["advisor"], trains = _advisor_key(options.get("advisor", "embedded"))
        if not trains:
            options.pop("training", None)
        # It trains for ``training.steps``, seeded by ``training.seed``, and writes greedily.
        uses_timesteps = False
    else:
        policy = make_policy(name, options)
        trains = policy.needs_training and name != "oracle"  # the oracle reads the held-out answers
        uses_timesteps = not isinstance(policy, BestFixed)  # it reads the training rewards whole
        if not isinstance(policy, SEEDLESS):
            key["seed"] = seed
    if options:
        key["options"] = _jsonable(options)
    if trains:
        key.update(train_receiver=setting.train_receiver or setting.receiver, train_split=setting.train_split,
                   train_items=setting.train_items, featurizer=provenance["featurizer"])
        if uses_timesteps:
            key["timesteps"] = timesteps
    return cast(dict[str, Any], json.loads(json.dumps(key, sort_keys=True)))  # as a saved run holds it


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.removesuffix("."): value}


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def saved_run(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The run saved at ``path`` if it ran under ``key``; else None, saying why it is recomputed."""
    if not path.is_file():
        return None
    run = cast(dict[str, Any], json.loads(path.read_text()))
    saved = run.get("run_key")
    if saved == key:
        return run
    if saved is None:
        logger.warning("%s: saved by an older version, which did not record the run's settings: recomputing", path)
        return None
    before, now = _flat(saved), _flat(key)
    changed = sorted(k for k in before.keys() | now.keys() if k not in before or k not in now or before[k] != now[k])

    def settings(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={_shown(values[k])}" if k in values else f"no {k}" for k in changed)

    logger.warning("%s: saved under %s; now %s: recomputing", path, settings(before), settings(now))
    return None


def training_out(out: str | Path, setting: Setting, key: dict[str, Any]) -> str:
    """Where a run's Advisor (or search) trains, resumably, under ``out``: a directory per
    setting and training, so one finished under other settings is never taken for this one."""
    training = {k: key.get(k) for k in ("env", "options", "train_receiver", "train_split", "train_items")}
    return str(Path(out) / f"{slug(setting.key)}__{_digest(training)}")
