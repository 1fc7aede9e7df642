"""The verifiers environment of persuasion-gym, under the name verifiers imports for the taskset id
``persuasion-verifiers`` (``vf-eval persuasion-verifiers ...``): the taskset, its one-turn harness
and the env, which verifiers finds through ``__all__``, and ``load_environment`` for Python (the
code: ``persuasion_verifiers.environment``). A package of its own, beside persuasion_agents: it joins
the envs and the LM Advisor's prompt, as the command line does."""

from persuasion_verifiers.environment import (
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
