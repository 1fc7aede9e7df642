"""Running untrusted code: a bubblewrap sandbox (or an announced fallback) and a runner that
judges programs by trusted tests. See ``runner.py`` for why a program cannot fake a pass."""

from persuasion_gym.sandbox.isolation import Isolation, detect
from persuasion_gym.sandbox.limits import Limits
from persuasion_gym.sandbox.runner import CodeCheck, Failure, ProgramError, Sandbox, Verdict

__all__ = ["CodeCheck", "Failure", "Isolation", "Limits", "ProgramError", "Sandbox", "Verdict", "detect"]
