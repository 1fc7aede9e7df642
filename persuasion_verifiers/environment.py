"""Any persuasion env as a verifiers environment (verifiers 0.4, its ``verifiers.v1`` stack): the
model being evaluated or trained is the Advisor, and its reward is the Receiver's scored answer.

Each task is one item of the env's split; its prompt is the LM Advisor's prompt for that item
(``AdvisorTemplate``: write one short hint, do not solve the problem). The model answers in one
chat turn (``PersuasionHarness``: in-process, through verifiers' interception server, so the
trace records the call as for any harness); the reward cleans the reply into the signal the env
admits (its first line, within the text action space) and plays it through the env: every
rollout's step goes to one ``SharedEnv`` per process (``persuasion_gym.serving.sessions``, as
``persuasion-gym serve`` does for remote sessions), so the rewards of concurrent rollouts are
one concurrent, cached Receiver batch, and a group's identical (item, signal) pairs are paid once.

verifiers finds it by its taskset id, ``persuasion-verifiers`` (this package exports these
classes): ``vf-eval persuasion-verifiers --env.taskset.env-id ID
--env.taskset.receiver SPEC --model M --client.base-url URL``. In Python,
``load_environment(env_id=..., receiver=..., ...)`` returns the same ``vf.Env``. Needs the
``[verifiers]`` extra and verifiers itself (``VERIFIERS_INSTALL``).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import Field, ValidationError, field_validator

from persuasion_gym.errors import ConfigError

# The verifiers releases this environment is tested with (0.4.0, the only one in the range so far).
# verifiers 0.4 declares openai<3 (this package needs openai>=3) and Prime's tunnel, ZMQ and MCP
# clients: it goes in without its declared dependencies (renderers too, whose tokenizers for other
# models it does not need), and the [verifiers] extra holds what ``import verifiers.v1`` and vf-eval need.
VERIFIERS_RANGE = ">=0.4,<0.5"
VERIFIERS_INSTALL = ("pip install 'persuasion-gym[verifiers]' && pip install --no-deps "
                     f"'verifiers{VERIFIERS_RANGE}' 'renderers>=0.1.12,<0.2'")
TASKSET_ID = "persuasion-verifiers"  # the module verifiers imports for it: persuasion_verifiers

try:
    import verifiers.v1 as vf
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletionMessageParam
    from verifiers.v1.dialects.chat import message_to_wire
except ImportError as exc:  # verifiers itself, or what it imports (the [verifiers] extra)
    raise ConfigError(f"the verifiers environment needs verifiers and the [verifiers] extra ({exc.name or exc} is "
                      f"missing): {VERIFIERS_INSTALL}") from None

from persuasion_agents.lm_advisor.model import AdvisorTemplate  # noqa: E402  (after the install check)
from persuasion_gym.serving.sessions import Played, SharedEnv  # noqa: E402

logger = logging.getLogger(__name__)


def _check_version() -> None:
    try:
        installed = version("verifiers")
    except PackageNotFoundError:  # imported from a source tree
        return
    parts = tuple(int(p) for p in installed.split(".")[:2] if p.isdigit())
    if not (0, 4) <= parts < (0, 5):
        logger.warning("verifiers %s is outside the releases persuasion-gym is tested with (%s); if the environment "
                       "misbehaves: pip install --no-deps 'verifiers%s'", installed, VERIFIERS_RANGE, VERIFIERS_RANGE)


_check_version()


def check_env_id(env_id: str) -> str:
    """``env_id`` if it names a registered env, else an error naming the closest one."""
    import gymnasium as gym

    import persuasion_gym  # noqa: F401  (registers the envs)

    if env_id in gym.registry:
        return env_id
    by_lower = {known.lower(): known for known in gym.registry if known.startswith("Persuasion-")}
    close = difflib.get_close_matches(env_id.lower(), by_lower, n=1)
    guess = f"did you mean {by_lower[close[0]]}? " if close else ""
    raise ConfigError(f"unknown env id {env_id!r}: {guess}`persuasion-gym envs` lists the registered ids")


def check_receiver(spec: str) -> str:
    """``spec`` if it parses as a Receiver spec (no network, no model loaded), else its error."""
    from persuasion_gym.receivers.spec import parse_spec

    if spec != "auto":
        parse_spec(spec)
    return spec


# One SharedEnv per env spec and process: every rollout's reward in this process plays through it.
_shared: dict[str, SharedEnv] = {}
_shared_lock = threading.Lock()


def shared_env(spec: dict[str, Any]) -> SharedEnv:
    """The process's shared env for ``spec`` (``env_id``, ``receiver``, ``kwargs``), made on
    first use: text actions and text observations, the ``direct`` protocol."""
    key = json.dumps(spec, sort_keys=True)
    with _shared_lock:
        if key not in _shared:
            kwargs = {**spec["kwargs"], "receiver": spec["receiver"], "action_type": "text"}
            shared = SharedEnv.make(check_env_id(spec["env_id"]), kwargs)
            if shared.env.protocol.name != "direct":
                shared.close()
                shared.env.close()
                raise ConfigError(
                    f"protocol={shared.env.protocol.name!r}: the verifiers environment sends the model's own text to "
                    "the Receiver, which is the 'direct' protocol (under 'posterior' the Advisor would observe a "
                    "state its fixed prompt cannot show; under 'prior' and 'none' the Receiver never reads it)")
            _shared[key] = shared
        return _shared[key]


def advisor_template(shared: SharedEnv) -> AdvisorTemplate:
    """The LM Advisor's prompt template, narrowed to what the env's text action space admits."""
    return AdvisorTemplate().within(shared.env.action_space)


async def play(shared: SharedEnv, item_index: int, signal: str) -> Played:
    """One episode of ``item_index`` with ``signal``, played in the batch of the steps that arrive
    with it (the session's step info: ``signal``, ``response``, ``answer``, ``correct``, ``gold``, ...)."""
    session = shared.session()
    try:
        session.reset(item_index=item_index)
        return session.finish(await asyncio.wrap_future(session.submit(signal=signal)))
    finally:
        session.close()


_TRACE_INFO = ("item_id", "signal", "response", "answer", "gold", "correct", "cached", "batch_size")


class PersuasionData(vf.TaskData):
    """One task item: its index in the env's split, and the env spec the reward plays it in."""

    item_index: int
    persuasion_env: dict[str, Any]


class PersuasionTask(vf.Task[PersuasionData]):
    """The reward of the model's signal for one item: the Receiver's scored answer."""

    @property
    def key(self) -> str:
        return f"{self.data.persuasion_env['env_id']}/{self.data.id}"

    @vf.reward(weight=1.0)
    async def receiver_reward(self, trace: vf.Trace) -> float:
        shared = shared_env(self.data.persuasion_env)
        signal = advisor_template(shared).clean(trace.last_reply)
        played = await play(shared, self.data.item_index, signal)
        info = played.info
        # The exchange beside the model's own reply: the signal sent and what the Receiver made of it.
        trace.info["persuasion"] = {k: info.get(k) for k in _TRACE_INFO}
        trace.record_metric("correct", float(bool(info.get("correct"))))
        return played.reward


class PersuasionTasksetConfig(vf.TasksetConfig):
    """Which persuasion env, Receiver and items (``--env.taskset.*``); ``env_args`` takes any other
    ``gym.make`` argument of the env (``samples_per_cell``, ``signal_charset``, ``data_path``, ...)."""

    env_id: str = Field("Persuasion-GSM8K-v0", description="a registered persuasion env over task items")
    receiver: str = Field("auto", description="the Receiver spec (openai:MODEL@URL, embedded, hf:..., ...)")
    split: str = Field("train", description="the env's split")
    max_items: int | None = Field(None, ge=1, description="keep the split's first N items")
    env_args: dict[str, Any] = Field(default_factory=dict, description="other gym.make arguments of the env")

    @field_validator("env_id")
    @classmethod
    def _env_id(cls, value: str) -> str:
        return check_env_id(value)

    @field_validator("receiver")
    @classmethod
    def _receiver(cls, value: str) -> str:
        return check_receiver(value)

    @field_validator("env_args")
    @classmethod
    def _env_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(value) & {"receiver", "split", "max_items", "action_type", "observation"})
        if taken:
            raise ConfigError(f"env_args {', '.join(taken)}: receiver, split and max_items have their own fields, "
                              "and the env takes text actions and observations")
        return value

    def spec(self) -> dict[str, Any]:
        """What identifies the env a task's reward plays in (JSON, no secrets: keys come from the environment)."""
        return {"env_id": self.env_id, "receiver": self.receiver,
                "kwargs": {"split": self.split, "max_items": self.max_items, **self.env_args}}


class PersuasionTaskset(vf.Taskset[PersuasionTask, PersuasionTasksetConfig]):
    """The env's items as tasks, each prompting the model for its signal. The env is made when
    the taskset is (a bad env, Receiver spec or data set fails before any rollout)."""

    def __init__(self, config: PersuasionTasksetConfig) -> None:
        super().__init__(config)
        self.shared = shared_env(config.spec())

    def load(self) -> Iterator[PersuasionTask]:
        spec, template = self.config.spec(), advisor_template(self.shared)
        for index, item in enumerate(self.shared.env.dataset.items):
            system, user = template.messages(item.text)
            data = PersuasionData(id=item.item_id, name=item.item_id, prompt=user["content"],
                                  system_prompt=system["content"], item_index=index, persuasion_env=spec)
            yield PersuasionTask(data, self.config.task)


class PersuasionHarnessConfig(vf.HarnessConfig):
    id: str = TASKSET_ID


class PersuasionHarness(vf.Harness[PersuasionHarnessConfig]):
    """One chat completion, in-process: the model writes its signal in one turn (no program to
    install, no tools). The request goes to verifiers' interception server, which applies the
    run's sampling settings, forwards it to the policy endpoint and records it in the trace."""

    APPENDS_SYSTEM_PROMPT = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(self, ctx: vf.ModelContext, trace: vf.Trace, runtime: vf.Runtime, endpoint: str, secret: str,
                     mcp_urls: dict[str, str], data: vf.TaskData, **kwargs: Any) -> vf.ProgramResult:
        system, prompt = self.resolve_prompt(data)
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        else:
            messages += [message_to_wire(message) for message in prompt or []]
        # The interception server retries the upstream; a failure here ends the rollout with its error.
        async with AsyncOpenAI(base_url=endpoint, api_key=secret, max_retries=0) as client:
            await client.chat.completions.create(model=ctx.model, messages=messages)
        return vf.ProgramResult(exit_code=0, stdout="", stderr="")


class PersuasionEnvConfig(vf.EnvConfig):
    """The one Advisor seat; its harness needs no box, so it runs as a local subprocess runtime."""

    agent: vf.AgentConfig = vf.AgentConfig(runtime=vf.SubprocessConfig())


class PersuasionVerifiersEnv(vf.Env[PersuasionEnvConfig]):
    """One rollout per episode: the model writes the signal for the task's item."""

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        await agents.agent.run(task)


def load_environment(env_id: str = "Persuasion-GSM8K-v0", receiver: str = "auto", split: str = "train",
                     max_items: int | None = None, **env_args: Any) -> vf.Env:
    """The verifiers environment over ``gym.make(env_id, receiver=receiver, split=split,
    max_items=max_items, **env_args)`` (text actions): a ``vf.Env`` for verifiers' own runners."""
    try:
        taskset = PersuasionTasksetConfig(id=TASKSET_ID, env_id=env_id, receiver=receiver, split=split,
                                          max_items=max_items, env_args=env_args)
    except ValidationError as exc:  # our own checks' messages, without pydantic's frame around them
        messages = (str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise ConfigError("; ".join(messages)) from None
    return vf.load_environment(PersuasionEnvConfig(taskset=taskset))

