"""``Persuasion-MBPP-v0`` and ``Persuasion-MATH-v0``: the same game on two more data sets."""

from __future__ import annotations

from typing import Any

from persuasion_gym.envs.humaneval import sandboxed
from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.sandbox import Sandbox
from persuasion_gym.sandbox.isolation import Mode
from persuasion_gym.tasks.math import MATHTask
from persuasion_gym.tasks.mbpp import MBPPTask


class MBPPEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on MBPP (Austin et al., 2021): the state is a short task description
    with its three asserts; the Receiver writes the function; the reward is pass@1 of the
    sandboxed program against the asserts. Spaces, info and sandbox as in
    `Persuasion-HumanEval-v0` (`info["text"]` holds the task).

    ## Arguments
    - `split`: "train" (default), "validation", "test" or "prompt" (the paper's task-id ranges).
    - `data_path`: the original `mbpp.jsonl` (cut by task id), the sanitized file, a
      `{split}.jsonl`, or a directory holding one; default `$PERSUASION_GYM_DATA_DIR/mbpp/`,
      else the hub (`google-research-datasets/mbpp`, needs `datasets`).
    - `sandbox`, `isolation`, `timeout_s`, and the rest as in `Persuasion-HumanEval-v0`.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "train", sandbox: Sandbox | str | None = None, isolation: Mode = "auto",
                 timeout_s: float = 10.0, **kwargs: Any):
        super().__init__(task=sandboxed(MBPPTask, sandbox, isolation, timeout_s), split=split, **kwargs)


class MATHEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on MATH (Hendrycks et al., 2021), competition problems with LaTeX
    answers. Spaces and episodes as in `Persuasion-GSM8K-v0`; `info["problem"]` holds the problem.

    ## Rewards
    1.0 when the response's final `\\boxed{}` answer equals the gold answer after normalising
    LaTeX (fractions, spaces, units) or is symbolically equal to it (math-verify), else 0.0.

    ## Arguments
    - `split`: "train" or "test" (default).
    - `data_path`: a `.jsonl(.gz)` of {problem, answer or solution}, a directory with
      `{split}.jsonl`, or the original tree `{split}/{subject}/{n}.json`; default
      `$PERSUASION_GYM_DATA_DIR/math/`, else the hub (needs `datasets`).
    - The rest as in `Persuasion-GSM8K-v0`.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "test", **kwargs: Any):
        super().__init__(task=MATHTask(), split=split, **kwargs)
