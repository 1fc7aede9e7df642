"""``Persuasion-MATH-v0``: signal a Receiver towards right answers on competition mathematics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.receivers import Receiver
from persuasion_gym.tasks.math import MATHTask


class MATHEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on MATH (Hendrycks et al., 2021): the state is a competition problem
    with a LaTeX answer; the Advisor sends one signal, a reasoning strategy or hint, to a
    black-box Receiver, which solves the problem with the signal in context.

    ## Action Space
    `Discrete(K)` over the signal library (`persuasion_gym.signals.MATH_SIGNALS`, as in
    `Persuasion-GSM8K-v0`), or the signal's text with `action_type="text"`.

    ## Observation Space
    As in `Persuasion-GSM8K-v0`: a feature vector of the problem, or the problem itself with
    `observation="text"`.

    ## Rewards
    1.0 when the response's final `\\boxed{}` answer equals the gold answer after normalising
    LaTeX (fractions, spaces, units) or is symbolically equal to it (math-verify), else 0.0.

    ## Starting State, Episode End, Info
    As in `Persuasion-GSM8K-v0`, with the problem in `info["problem"]`.

    ## Arguments
    - `split`: "train" or "test" (default).
    - `data_path`: a `.jsonl(.gz)` of {problem, answer or solution}, a directory with
      `{split}.jsonl`, or the original tree `{split}/{subject}/{n}.json`; default
      `$PERSUASION_GYM_DATA_DIR/math/`, else the hub (needs `datasets`).
    - `receiver`, `max_items`: as in `Persuasion-GSM8K-v0`.
    - every other `persuasion_gym.envs.EnvSettings` field, by keyword, as in `Persuasion-GSM8K-v0`:
      `signals`, `protocol`, `prior`, `scheme`, `n_signals`, `alpha`, `state_table`, `featurizer`,
      `observation`, `action_type`, `max_signal_length`, `signal_charset`, `samples_per_cell`,
      `on_receiver_error`, `cache`, `table`, `table_reward`, `dataset`, `render_mode`.

    An example, offline given the data (a `test.jsonl` of MATH problems in `math_data/`):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-MATH-v0", receiver="embedded", data_path="math_data", max_items=4,
                   featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # the library's signal 1
    print(info["problem"], info["answer"], info["gold"], reward)
    ```

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "test", data_path: str | Path | None = None, *,
                 receiver: str | Receiver | None = "auto", max_items: int | None = None, **settings: Any):
        super().__init__(task=MATHTask(), split=split, data_path=data_path, receiver=receiver, max_items=max_items,
                         **settings)
