"""The verifiers environment of persuasion-gym, under the name verifiers imports for the taskset id
``persuasion-verifiers`` (``vf-eval persuasion-verifiers ...``): the taskset, its one-turn harness
and the env, which verifiers finds through ``__all__``, and ``load_environment`` for Python. The
code is ``persuasion_gym.serving.verifiers``."""

from persuasion_gym.serving.verifiers import (
    PersuasionEnvConfig,
    PersuasionHarness,
    PersuasionHarnessConfig,
    PersuasionTask,
    PersuasionTaskset,
    PersuasionTasksetConfig,
    PersuasionVerifiersEnv,
    load_environment,
)

__all__ = [
    "PersuasionEnvConfig",
    "PersuasionHarness",
    "PersuasionHarnessConfig",
    "PersuasionTask",
    "PersuasionTaskset",
    "PersuasionTasksetConfig",
    "PersuasionVerifiersEnv",
    "load_environment",
]
