"""``Persuasion-GSM8K-v0``: signal a Receiver towards right answers on grade-school math."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persuasion_gym.envs.persuasion_env import PersuasionEnv
from persuasion_gym.receivers import Receiver
from persuasion_gym.tasks import GSM8KTask


class GSM8KEnv(PersuasionEnv):
    """
    ## Description
    Bayesian persuasion on GSM8K (Cobbe et al., 2021). The state is a math word problem; the
    Advisor (the agent) sends one signal, a reasoning strategy or hint, to a black-box
    Receiver model, which answers the problem with the signal in context. The Advisor learns
    which signal makes the Receiver right on which problems.

    ## Action Space
    `Discrete(K)`: the index of a signal in the signal library. The default library
    (`persuasion_gym.signals.MATH_SIGNALS`) holds 9 hints and the empty signal (index 0,
    the no-signal baseline). `info["signal"]` is the text sent.

    ## Observation Space
    `observation="features"` (default): `Box(-1, 1, (d,), float32)`, a unit-norm feature vector
    of the question: all-MiniLM-L6-v2 sentence embeddings (d = 384) with `featurizer="minilm"`,
    hashed word n-grams (d = 1024) with `featurizer="hashed"`; `"auto"` takes MiniLM when it is
    installed. Features are computed once per data set and cached on disk.
    `observation="text"`: the question itself, as `spaces.Text` over a charset holding every
    character of the split. An async vector env then needs `vector_kwargs={"shared_memory": False}`
    (shared memory holds only fixed-size arrays).
    The question, item id and gold answer are in `info["question"]`, `info["item_id"]`, `info["gold"]`.

    ## Rewards
    1.0 when the final number of the Receiver's response equals the gold answer, else 0.0
    (`persuasion_gym.tasks.extract_numeric_answer` and `numbers_match`).

    ## Starting State
    `reset()` draws a question uniformly from the split with the env's seeded generator;
    `reset(options={"item_index": i})` picks question i.

    ## Episode End
    Every episode is one step: `terminated=True` after the Receiver's answer is scored.

    ## Info
    After `step`: `signal`, `action`, `context` (what the Receiver saw), `response`, `answer`
    (extracted), `correct`, `usage` (prompt/completion/total tokens), `latency_s` (of the
    Receiver call that made the response), `sample`, and `receiver_error` when a failed call was
    scored 0. A step's `info` is the same whether its answer is a Receiver call or that call's
    cache hit, so the env checkers pass on a cold cache; which it was is in
    `env.unwrapped.last_outcomes` (`cached`), and the Receiver's totals in
    `env.unwrapped.receiver.stats` (`calls`, `cache_hits`).

    ## Arguments
    - `split`: `"train"` (default) or `"test"`.
    - `data_path`: a GSM8K `.jsonl` file or a directory holding `{split}.jsonl`; default
      `$PERSUASION_GYM_DATA_DIR/gsm8k/`, else `openai/gsm8k` from the hub (needs `datasets`).
    - `receiver`: a `Receiver`, or a spec such as `"openai:MODEL@http://127.0.0.1:8000/v1"`,
      `"embedded"` (SmolLM2-135M, offline) or `"table:PATH"`; `"auto"` (default) reads
      `PERSUASION_GYM_RECEIVER` or `OPENAI_BASE_URL`/`OPENAI_API_KEY`, else takes `"embedded"`.
    - `max_items`: keep the first N questions of the split.
    - `signals`: a list of signal texts replacing the default library.
    - `protocol`: `"direct"` (the signal is the context, default), `"none"` (the question
      alone), `"prior"` (an information item drawn from the prior) or `"posterior"` (the
      Receiver updates on the Advisor's scheme; with `prior`, `scheme`, `n_signals`, `alpha`,
      `state_table`).
    - `observation`, `featurizer`: see Observation Space. `action_type`: `"index"` (default)
      or `"text"` (the signal's text, up to `max_signal_length` characters of `signal_charset`).
    - `samples_per_cell`: Receiver samples per (question, signal); visits cycle through them,
      so a cell costs at most this many calls (1 suits greedy decoding).
    - `on_receiver_error`: `"raise"` (default) or `"zero"` (reward 0, `info["receiver_error"]`).
    - `cache`: the persistent response cache: `True` (default file), `False`, or a path.
    - `table`, `table_reward`: replay a recorded table instead of asking a Receiver.
    - `dataset`: a loaded `Dataset` instead of the split. `render_mode`: `"ansi"` renders the
      last exchange as text.

    Each is a field of `persuasion_gym.envs.EnvSettings`, which documents them all. An example,
    offline (the embedded Receiver, and the GSM8K files under `$PERSUASION_GYM_DATA_DIR`):

    ```python
    import gymnasium as gym
    import persuasion_gym  # registers the envs

    env = gym.make("Persuasion-GSM8K-v0", receiver="embedded", split="test", max_items=4, featurizer="hashed")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # the library's signal 1
    print(info["question"], info["signal"], info["answer"], info["gold"], reward)
    ```

    ## Version History
    - v0: initial version.
    """

    def __init__(self, split: str = "train", data_path: str | Path | None = None, *,
                 receiver: str | Receiver | None = "auto", max_items: int | None = None, **settings: Any):
        super().__init__(task=GSM8KTask(), split=split, data_path=data_path, receiver=receiver, max_items=max_items,
                         **settings)
