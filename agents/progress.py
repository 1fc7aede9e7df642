"""A tqdm progress bar for SB3 training.

SB3's own ``progress_bar=True`` needs ``rich``; tqdm is already a dependency, so this small
callback avoids pulling another package in for one bar.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm


class TqdmCallback(BaseCallback):
    """Shows timesteps done out of ``total`` and the running mean reward."""

    def __init__(self, total: int, desc: str = "training"):
        super().__init__()
        self.total, self.desc = total, desc
        self._bar: tqdm | None = None
        self._rewards: list[float] = []

    def _on_training_start(self) -> None:
        self._bar = tqdm(total=self.total, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        self._rewards.extend(float(r) for r in self.locals.get("rewards", []))
        assert self._bar is not None
        self._bar.update(self.training_env.num_envs)
        recent = self._rewards[-500:]
        self._bar.set_postfix(reward=f"{sum(recent) / max(len(recent), 1):.3f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
