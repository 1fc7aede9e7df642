"""persuasion_gym: Bayesian-persuasion alignment as Gymnasium environments.

A small Advisor learns, by reinforcement learning, which signal to send a large black-box
Receiver model so that the Receiver answers better. ``import persuasion_gym`` registers the
environments (``gym.make("Persuasion-GSM8K-v0")``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("persuasion-gym")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from persuasion_gym import registration as _registration  # noqa: E402  (registers the envs)

ENV_IDS = _registration.ENV_IDS
register_env = _registration.register_env

__all__ = ["ENV_IDS", "__version__", "register_env"]
