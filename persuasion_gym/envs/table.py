"""``Persuasion-Table-v0``: any recorded response table as an environment, no data files needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.persuasion import Protocol
from persuasion_gym.tables import ResponseTable, load_table


class TableEnv(PersuasionEnv):
    """
    ## Description
    A recorded table (``persuasion-gym record``) replayed at memory speed: the items, gold
    answers, signals and every cell's scored Receiver responses come from the table file, so
    training and evaluation make no Receiver calls and need no data set on disk.

    ## Spaces, rewards, episodes, info
    As in the live env of the table's task (``GSM8KEnv`` for GSM8K): `Discrete(K)` actions
    over the table's signals (or `n_signals` under ``protocol="posterior"``), a feature vector
    (or the text) of the item, one step per episode. The reward of a step is one of the cell's
    recorded samples, drawn with the env's seeded generator (`table_reward="sample"`), or the
    cell's mean (`table_reward="mean"`). Nothing is asked: `env.unwrapped.last_outcomes` says `cached=True`.

    ## Arguments
    - `table`: the table file (or a `ResponseTable`).
    - `max_items`: keep the table's first N items. `table_reward`: see above.
    - `protocol`, `prior`, `scheme`, `n_signals`, `alpha`: the persuasion protocol; under
      `posterior` the state of an item is its best-scoring cell and the prior defaults to the
      states' frequencies in the table. The online scheme persists across `reset()`;
      `reset(seed=s)` starts it afresh (see ``PersuasionEnv``).
    - `featurizer`, `observation`, `render_mode`: as in the live env
      (``persuasion_gym.envs.EnvSettings``). The table fixes the task, its items, its signals
      and the Receiver, so it takes no text actions.

    An example (a table recorded with `persuasion-gym record`):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-Table-v0", table="runs/gsm8k-test.npz", featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # the table's signal 1
    print(info["item_id"], info["signal"], info["answer"], reward)
    ```

    ## Version History
    - v0: initial version.
    """

    def __init__(self, table: str | Path | ResponseTable, *, max_items: int | None = None,
                 table_reward: Literal["sample", "mean"] = "sample", protocol: str | Protocol = "direct",
                 **settings: Any):
        loaded = load_table(table)
        super().__init__(task=loaded.task, receiver=None, table=loaded, dataset=loaded.dataset, max_items=max_items,
                         table_reward=table_reward, protocol=protocol, **settings)
