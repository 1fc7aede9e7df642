"""A tqdm progress bar for SB3 training.

SB3's own ``progress_bar=True`` needs ``rich``; tqdm is already a dependency, so this small
callback avoids pulling another package in for one bar.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm


class TqdmCallback(BaseCallback):
    """Shows timesteps done out of ``total`` and the running mean reward, and keeps the
    learning curve."""

    def __init__(self, total: int, desc: str = "training", disable: bool = False, log_every: int = 256):
        super().__init__()
        self.total, self.desc, self.disable, self.log_every = total, desc, disable, log_every
        self._bar: tqdm | None = None
        self._rewards: list[float] = []
        self._seen = 0
        self.curve: list[tuple[int, float]] = []  # (episodes, mean reward of the last log_every)

    def _on_training_start(self) -> None:
        self._bar = tqdm(total=self.total, desc=self.desc, unit="step", disable=self.disable)

    def _on_step(self) -> bool:
        rewards = [float(r) for r in self.locals.get("rewards", [])]
        self._rewards.extend(rewards)
        self._seen += len(rewards)
        if len(self._rewards) >= self.log_every:
            self.curve.append((self._seen, sum(self._rewards) / len(self._rewards)))
            self._rewards = []
        assert self._bar is not None
        self._bar.update(self.training_env.num_envs)
        if self.curve:
            self._bar.set_postfix(reward=f"{self.curve[-1][1]:.3f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
