"""``Persuasion-MBPP-v0``: signal a Receiver towards short Python functions that pass their asserts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.sandboxing import sandboxed
from persuasion_gym.receivers import Receiver
from persuasion_gym.sandbox import Sandbox
from persuasion_gym.sandbox.isolation import Mode
from persuasion_gym.tasks.mbpp import MBPPTask


class MBPPEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on MBPP (Austin et al., 2021): the state is a short task description
    with its three asserts; the Advisor sends one signal, a coding hint, to a black-box
    Receiver, which writes the function; the program runs against the asserts in a sandbox.

    ## Action Space
    `Discrete(K)` over the signal library (`persuasion_gym.signals.CODE_SIGNALS`: 9 coding hints
    and the empty signal at index 0), or the signal's text with `action_type="text"`.

    ## Observation Space
    As in `Persuasion-GSM8K-v0`: a feature vector of the task, or the task itself with
    `observation="text"`.

    ## Rewards
    pass@1, as in `Persuasion-HumanEval-v0`: 1.0 when the extracted program passes every
    assert, else 0.0.

    ## Starting State, Episode End
    As in `Persuasion-GSM8K-v0`: a task drawn uniformly from the split (or
    `options={"item_index": i}`); one step per episode.

    ## Info
    As in `Persuasion-HumanEval-v0` (`verdict`, `verdict_detail`, `sandbox`, ...), with the
    task in `info["text"]`.

    ## Arguments
    - `split`: "train" (default), "validation", "test" or "prompt" (the paper's task-id ranges).
    - `data_path`: the original `mbpp.jsonl` (cut by task id), the sanitized file, a
      `{split}.jsonl`, or a directory holding one; default `$PERSUASION_GYM_DATA_DIR/mbpp/`,
      else the hub (`google-research-datasets/mbpp`, needs `datasets`).
    - `sandbox`, `isolation`, `timeout_s`: the sandbox, as in `Persuasion-HumanEval-v0`.
    - `receiver`, `max_items`: as in `Persuasion-GSM8K-v0`.
    - every other `persuasion_gym.envs.EnvSettings` field, by keyword, as in `Persuasion-GSM8K-v0`:
      `signals`, `protocol`, `prior`, `scheme`, `n_signals`, `alpha`, `state_table`, `featurizer`,
      `observation`, `action_type`, `max_signal_length`, `signal_charset`, `samples_per_cell`,
      `on_receiver_error`, `cache`, `table`, `table_reward`, `dataset`, `render_mode`.

    An example, offline given the data file (`mbpp.jsonl` from the MBPP repository):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-MBPP-v0", receiver="embedded", data_path="mbpp.jsonl", split="test", max_items=2,
                   featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(0)  # the empty signal: the baseline
    print(info["text"], info["verdict"], reward)
    ```

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "train", sandbox: Sandbox | str | None = None, isolation: Mode = "auto",
                 timeout_s: float = 10.0, *, data_path: str | Path | None = None,
                 receiver: str | Receiver | None = "auto", max_items: int | None = None, **settings: Any):
        super().__init__(task=sandboxed(MBPPTask, sandbox, isolation, timeout_s), split=split,
                         data_path=data_path, receiver=receiver, max_items=max_items, **settings)
