"""The sandbox of the code envs (HumanEval, MBPP), built and probed when the env is made."""

from __future__ import annotations

from persuasion_gym.errors import ConfigError
from persuasion_gym.sandbox import Limits, Sandbox
from persuasion_gym.sandbox.isolation import Mode
from persuasion_gym.tasks.code import CodeTask


def sandboxed(task_class: type[CodeTask], sandbox: Sandbox | str | None, isolation: Mode, timeout_s: float) -> CodeTask:
    """A code task with its sandbox, probed now: a missing bwrap is an error (``isolation="bwrap"``)
    or an announced fallback at ``gym.make``, not in the middle of training. ``sandbox="ray"``
    runs the programs on a Ray cluster's CPUs."""
    if sandbox == "ray":
        from persuasion_gym.sandbox.on_ray import RaySandbox

        sandbox = RaySandbox(isolation, Limits(timeout_s=timeout_s))
    elif sandbox in (None, "local"):
        sandbox = Sandbox(isolation, Limits(timeout_s=timeout_s))
    elif not isinstance(sandbox, Sandbox):
        raise ConfigError(f"sandbox={sandbox!r}: pass a Sandbox, 'local' or 'ray'")
    _ = sandbox.isolation
    return task_class(sandbox)
