"""``Persuasion-ReasoningGym-v0``: any reasoning-gym generator as a persuasion env."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.envs.settings import SETTING_NAMES
from persuasion_gym.envs.vector import PersuasionVectorEnv
from persuasion_gym.errors import ConfigError
from persuasion_gym.receivers import Receiver
from persuasion_gym.tasks.reasoning_gym import DEFAULT_DATASET, ReasoningGymTask

# The env's settings; every other keyword is the generator's difficulty setting. ``dataset``
# here names the generator, so it is never the settings' loaded Dataset.
_ENV_ARGUMENTS = SETTING_NAMES - {"dataset"}


def split_arguments(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the env's arguments, the generator's settings) of ``gym.make``'s keywords."""
    if "task" in kwargs:
        raise ConfigError("Persuasion-ReasoningGym-v0 makes its own task: pass dataset=NAME and its settings, "
                          "not task= (or use PersuasionEnv(task=...))")
    env = {k: v for k, v in kwargs.items() if k in _ENV_ARGUMENTS}
    return env, {k: v for k, v in kwargs.items() if k not in _ENV_ARGUMENTS}


class ReasoningGymEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on any generator of reasoning-gym (Stojanovski et al., 2025): procedural
    arithmetic, counting, logic, algorithmic and symbolic tasks with their own verifiers and
    difficulty settings. The state is a generated question; the Advisor sends a signal, by
    default one of a library of general reasoning hints; the Receiver answers; the dataset's own
    `score_answer` scores the answer.

    ## Action Space
    `Discrete(K)` over the signal library (`persuasion_gym.signals.REASONING_SIGNALS`: 9 hints
    and the empty signal at index 0), or the signal's text with `action_type="text"`.

    ## Observation Space
    As in `Persuasion-GSM8K-v0`: a feature vector of the question, or with `observation="text"`
    the question itself, over a charset holding every character of both splits.
    `info["question"]`, `info["item_id"]` (`DATASET/SPLIT/INDEX`) and `info["gold"]` (the
    generator's answer; "" for datasets that score from metadata) come with each step.

    ## Rewards
    `score_answer(answer, entry)` of the dataset, a float in [0, 1]: partial credit is kept (the
    default scorer gives len(gold)/len(answer) to an answer holding the gold one). `correct` is
    reward 1. The answer is extracted from the response by
    `persuasion_gym.tasks.reasoning_gym.extract_answer`: the last `<answer>` tag, `\\boxed{}` or
    "Answer: X" line, else the last line; for numeric golds the number in it (after its last
    `=`), else the last number of the response.

    ## Starting State, Episode End, Info
    As in `Persuasion-GSM8K-v0`.

    ## Arguments
    - `dataset`: the reasoning-gym dataset's name (`persuasion_gym.tasks.reasoning_gym.dataset_names()`).
    - `size`: items generated per split; `seed`: the generator's seed. `split="train"` (default)
      is items 0..size-1 under `seed`, `"test"` those under `seed + 1,000,000,007`, less any
      question the train split asks.
    - `config`, or any keyword that is not an env argument: the generator's settings (its
      difficulty), e.g. `min_terms`, `max_digits` for `basic_arithmetic`; an unknown or rejected
      setting is an error listing the generator's settings and defaults.
    - `receiver`, `max_items`: as in `Persuasion-GSM8K-v0`.
    - every other `persuasion_gym.envs.EnvSettings` field, by keyword, as in `Persuasion-GSM8K-v0`:
      `split`, `signals`, `protocol`, `prior`, `scheme`, `n_signals`, `alpha`, `state_table`,
      `featurizer`, `observation`, `action_type`, `max_signal_length`, `signal_charset`,
      `samples_per_cell`, `on_receiver_error`, `cache`, `table`, `table_reward`, `render_mode`
      (there is no `data_path`, and `dataset` names the generator: items are generated).

    An example, offline (the embedded Receiver on generated sums):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-ReasoningGym-v0", dataset="basic_arithmetic", size=20, seed=0,
                   min_terms=2, max_terms=3, max_digits=1, receiver="embedded", featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # the library's signal 1
    print(info["question"], info["answer"], info["gold"], reward)
    ```

    Tables recorded from it keep the generator's name, version, config, seed and size in their
    `task_settings`, so `persuasion-gym rescore` rebuilds the items and the scorer.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, dataset: str = DEFAULT_DATASET, size: int = 200, seed: int = 0,
                 config: Mapping[str, Any] | None = None, *, receiver: str | Receiver | None = "auto",
                 max_items: int | None = None, **options: Any):
        env, generator = split_arguments(options)
        super().__init__(task=ReasoningGymTask(dataset, size=size, seed=seed, config=config, **generator),
                         receiver=receiver, max_items=max_items, **env)


def reasoning_gym_vector_env(num_envs: int = 1, autoreset_mode: str = "same-step",
                             **kwargs: Any) -> PersuasionVectorEnv:
    """``gym.make_vec("Persuasion-ReasoningGym-v0", num_envs=N, dataset=NAME, ...)``."""
    return PersuasionVectorEnv(ReasoningGymEnv(**kwargs), num_envs, autoreset_mode)


def register(env_id: str, dataset: str, size: int = 200, seed: int = 0, **kwargs: Any) -> None:
    """Register one reasoning-gym dataset and difficulty under an env id of its own, e.g. for the
    command line, whose ``--env`` takes ``module:Env-v0`` (a module that calls this registers it)."""
    gym.registry.pop(env_id, None)
    gym.register(id=env_id, entry_point="persuasion_gym.envs.reasoning_gym:ReasoningGymEnv",
                 vector_entry_point="persuasion_gym.envs.reasoning_gym:reasoning_gym_vector_env",
                 kwargs={"dataset": dataset, "size": size, "seed": seed, **kwargs})
