"""The task envs document themselves as Gymnasium's envs do: every section, every argument
named, a signature beyond ``**kwargs``, and an example that runs."""

import inspect
import re
from dataclasses import fields

import pytest

from persuasion_gym.envs import EnvSettings, GSM8KEnv, HumanEvalEnv, MATHEnv, MBPPEnv, ReasoningGymEnv

TASK_ENVS = [GSM8KEnv, HumanEvalEnv, MATHEnv, MBPPEnv, ReasoningGymEnv]
SECTIONS = ("## Description", "## Action Space", "## Observation Space", "## Rewards", "## Arguments",
            "## Version History")


def example_of(env_class: type) -> str:
    found = re.search(r"```python\n(.*?)```", inspect.getdoc(env_class) or "", re.S)
    assert found, f"{env_class.__name__} has no example"
    return found.group(1)


@pytest.mark.parametrize("env_class", TASK_ENVS, ids=lambda c: c.__name__)
def test_sections_signature_and_every_argument(env_class):
    doc = inspect.getdoc(env_class) or ""
    assert [s for s in SECTIONS if s not in doc] == []
    parameters = inspect.signature(env_class).parameters.values()
    named = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]
    assert {"receiver", "max_items"} <= set(named)
    arguments = doc.split("## Arguments")[1].split("## Version History")[0]
    missing = [n for n in [*named, *(f.name for f in fields(EnvSettings))] if f"`{n}`" not in arguments]
    assert missing == []


@pytest.mark.parametrize("env_class", [GSM8KEnv, HumanEvalEnv, ReasoningGymEnv], ids=lambda c: c.__name__)
def test_the_example_runs(env_class, make_server, capsys):
    if env_class is ReasoningGymEnv:
        pytest.importorskip("reasoning_gym")
    server = make_server()  # echoes each prompt: the example's loop, not a model
    code = example_of(env_class)
    assert 'receiver="embedded"' in code
    code = code.replace('receiver="embedded"', f'receiver="openai:scripted@{server.url}"')
    exec(compile(code, f"<{env_class.__name__} example>", "exec"), {})
    assert capsys.readouterr().out.strip()
