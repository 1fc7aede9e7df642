"""``Persuasion-Table-v0``: any recorded response table as an environment, no data files needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persuasion_gym.envs.persuasion_env import PersuasionEnv
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
    - `featurizer`, `observation`, `render_mode`: as in the live env.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, table: str | Path | ResponseTable, **kwargs: Any):
        loaded = load_table(table)
        super().__init__(task=loaded.task, receiver=None, table=loaded, dataset=loaded.dataset, **kwargs)
