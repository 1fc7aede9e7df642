"""The envs policies are trained and evaluated on: from a benchmark setting's strings, an env
for a Receiver spec or a recorded table (``table:PATH``) and a setting's training env, built
once, on first use; and an env's text twin, for the policies that write their signals."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import gymnasium as gym

from persuasion_gym.envs import PersuasionEnv
from persuasion_gym.errors import ConfigError
from persuasion_gym.tables import load_table

if TYPE_CHECKING:
    from persuasion_agents.benchmark import Setting


def make_env(env_id: str, receiver: str, split: str, n_items: int | None, featurizer: str = "auto") -> gym.Env:
    """An env for a benchmark setting; ``receiver="table:PATH"`` replays a table."""
    if env_id == "Persuasion-Table-v0":
        return gym.make(env_id, table=receiver.removeprefix("table:"), max_items=n_items, featurizer=featurizer)
    if receiver.startswith("table:") and n_items is None:  # every item the table holds
        n_items = load_table(receiver.removeprefix("table:")).n_items
    return gym.make(env_id, receiver=receiver, split=split, max_items=n_items, featurizer=featurizer)


class TrainingEnv:
    """A setting's training env, made on the first call (a setting whose policies all skip
    training never asks for it) and the same env on every later one."""

    def __init__(self, setting: Setting, featurizer: str = "auto"):
        self.setting, self.featurizer = setting, featurizer
        self.env: gym.Env | None = None

    def __call__(self) -> gym.Env:
        if self.env is None:
            setting = self.setting
            receiver = setting.train_receiver or setting.receiver
            if receiver.startswith("table:") and setting.train_receiver is None:
                raise ValueError("a table setting needs --train-receiver table:TRAIN.npz: policies are "
                                 "trained on other items than they are evaluated on")
            self.env = make_env(setting.env_id, receiver, setting.train_split, setting.train_items, self.featurizer)
        return self.env


def text_twin(env: gym.Env) -> PersuasionEnv:
    """The same task, items, signals and Receiver as ``env``, taking text actions."""
    core = cast(PersuasionEnv, env.unwrapped)
    if core.table is not None:
        raise ConfigError("text actions on a recorded table: a table only knows its own signals, so the LM Advisor "
                          "trains and is benchmarked on a live Receiver (--receiver openai:MODEL@URL, embedded, ...)")
    return PersuasionEnv(task=core.task, receiver=core.receiver, dataset=core.dataset, signals=list(core.signals),
                         featurizer="hashed", action_type="text")
