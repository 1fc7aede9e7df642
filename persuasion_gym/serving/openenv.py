"""Any persuasion env as an OpenEnv environment (``persuasion-gym serve``), on openenv-core's own
server: the WebSocket sessions TRL's OpenEnv integration and SkyRL open, many at once.

Wire types: ``PersuasionAction`` (``signal``: the signal's text, or ``index``: its position in
the env's signal library), ``PersuasionObservation`` (the task item's ``item_text``,
``item_id`` and ``item_index``; after the step the ``signal`` sent, the Receiver's
``response``, its scored ``answer`` and ``correct``, and ``info``: the Gymnasium env's step
info, JSON-safe; the reward and ``done`` travel beside it, as OpenEnv sends them) and
``PersuasionState`` (the episode, the env's signals, and the server's counters). OpenEnv's
serializer leaves an observation's ``metadata`` off the wire, so ``info`` carries what
``metadata`` holds in-process (``PersuasionEnvClient`` puts it back into ``metadata``).

Each session gets its own ``Session`` (its own episode and seed) over one ``SharedEnv``: one
Receiver, response cache and sandbox; steps that arrive together are one Receiver batch
(``persuasion_gym.serving.sessions``). A bad action is an error in OpenEnv's shape
(``{"type": "error", "data": {"message": ..., "code": "EXECUTION_ERROR"}}``) carrying the
Gymnasium env's message, and the session goes on. Needs the ``[openenv]`` extra and
openenv-core itself (``pip install --no-deps 'openenv-core>=0.2.2,<0.4'``: its server and
client, without its CLI, web UI and MCP server dependencies).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from concurrent.futures import Future
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import Field

import persuasion_gym
from persuasion_gym.errors import ConfigError, PersuasionGymError
from persuasion_gym.persuasion import TextPosteriorProtocol
from persuasion_gym.serving import OPENENV_INSTALL, OPENENV_RANGE
from persuasion_gym.serving.sessions import Played, Session, SharedEnv

try:
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State
except ImportError as exc:  # openenv-core itself, or what its server imports (the [openenv] extra)
    raise ConfigError(f"serving OpenEnv needs openenv-core and the [openenv] extra ({exc.name or exc} is missing): "
                      f"{OPENENV_INSTALL}") from None

logger = logging.getLogger(__name__)


class PersuasionAction(Action):
    """The Advisor's signal: its text, or its index in the env's signal library (the state's
    ``signals``). Exactly one; a text-action env takes either, an index-action env (a recorded
    table) indices only."""

    signal: str | None = Field(default=None, description="the signal's text")
    index: int | None = Field(default=None, description="the signal's position in the env's signal library")


class PersuasionObservation(Observation):
    """The task item (the state of the persuasion game) and, after the step, what the Receiver
    answered; ``reward`` is the scored answer and ``done`` is true after the one step."""

    item_text: str = Field(default="", description="the task item's text (a question, a coding problem)")
    item_id: str = Field(default="", description="the task item's id in its data set")
    item_index: int = Field(default=-1, description="the item's index in the served split")
    signal: str | None = Field(default=None, description="the signal's text the Receiver read (after the step)")
    response: str | None = Field(default=None, description="the Receiver's response (after the step)")
    answer: str | None = Field(default=None, description="the answer read from the response (after the step)")
    correct: bool | None = Field(default=None, description="whether the answer was right (after the step)")
    info: dict[str, Any] = Field(default_factory=dict,
                                 description="the Gymnasium env's info (after the step: gold, usage, cached, ...)")


class PersuasionState(State):
    """The session's episode (``episode_id``, ``step_count``, its item, ``done``), what it plays
    over (the env, its signal library, the Receiver's identity) and the server's counters."""

    item_id: str | None = Field(default=None, description="the open or last episode's item")
    item_index: int | None = Field(default=None, description="its index in the served split")
    done: bool = Field(default=False, description="the episode has had its step")
    env_id: str = Field(default="", description="the served env")
    task: str = Field(default="", description="its task")
    split: str = Field(default="", description="the served split")
    n_items: int = Field(default=0, description="items in the split")
    action_type: str = Field(default="text", description="text: signal texts or indices; index: indices only")
    signals: list[str] = Field(default_factory=list, description="the signal library (what an index names)")
    protocol: str = Field(default="direct", description="what the Receiver reads (direct: the signal)")
    receiver: dict[str, Any] = Field(default_factory=dict, description="the Receiver's identity (no secrets)")
    batches_played: int = Field(default=0, description="server: batches played so far")
    steps_played: int = Field(default=0, description="server: steps played so far")
    largest_batch: int = Field(default=0, description="server: the most steps played as one batch")
    receiver_calls: int = Field(default=0, description="server: Receiver requests sent (the rest came from the cache)")
    cache_hits: int = Field(default=0, description="server: answers served from the response cache")


def _fields(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that ``model`` has fields for (a newer server may send more)."""
    return {k: v for k, v in data.items() if k in model.model_fields}


class PersuasionEnvironment(Environment):
    """One OpenEnv session: a ``Session`` over the server's ``SharedEnv``."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, shared: SharedEnv):
        super().__init__()
        self.shared = shared
        self.session: Session = shared.session()

    def reset(self, seed: int | None = None, episode_id: str | None = None, item_id: str | None = None,
              item_index: int | None = None, **unknown: Any) -> PersuasionObservation:
        if unknown:
            raise ConfigError(f"reset takes seed, item_id, item_index and episode_id, not {', '.join(sorted(unknown))}")
        item = self.session.reset(seed=seed, item_id=item_id, item_index=item_index, episode_id=episode_id)
        return PersuasionObservation(**item, done=False, reward=None, metadata=dict(item["info"]))

    async def reset_async(self, seed: int | None = None, episode_id: str | None = None, item_id: str | None = None,
                          item_index: int | None = None, **unknown: Any) -> PersuasionObservation:
        # On the server's event loop (no thread per session), except where a reset waits for the
        # batch in flight (the text posterior protocol reads what it learns).
        call = functools.partial(self.reset, seed, episode_id, item_id, item_index, **unknown)
        if isinstance(self.shared.env.protocol, TextPosteriorProtocol):
            return await asyncio.to_thread(call)
        return call()

    def step(self, action: PersuasionAction, timeout_s: float | None = None, **kwargs: Any) -> PersuasionObservation:
        return self._observation(self.session.finish(self._submit(action).result()))

    async def step_async(self, action: PersuasionAction, timeout_s: float | None = None,
                         **kwargs: Any) -> PersuasionObservation:
        # Awaits its batch on the event loop: a thousand waiting sessions cost no threads.
        future = self._submit(action)
        return self._observation(self.session.finish(await asyncio.wrap_future(future)))

    def _submit(self, action: PersuasionAction) -> Future[Played]:
        if not isinstance(action, PersuasionAction):
            raise PersuasionGymError(f"step takes a PersuasionAction, not a {type(action).__name__}")
        return self.session.submit(signal=action.signal, index=action.index)

    def _observation(self, played: Played) -> PersuasionObservation:
        env = self.shared.env
        info = {k: v for k, v in played.info.items() if k != env.task.text_key}
        item = env.dataset.items[info["item_index"]]
        return PersuasionObservation(
            item_text=item.text, item_id=item.item_id, item_index=info["item_index"], signal=info.get("signal"),
            response=info.get("response"), answer=info.get("answer"), correct=info.get("correct"), info=info,
            done=True, reward=played.reward, metadata=dict(info))

    @property
    def state(self) -> PersuasionState:
        session = self.session
        item = self.shared.env.dataset.items[session.last] if session.last is not None else None
        return PersuasionState(episode_id=session.episode_id, step_count=session.step_count,
                               item_id=item.item_id if item else None, item_index=session.last, done=session.done,
                               **self.shared.describe(), **self.shared.counters())

    def get_metadata(self) -> EnvironmentMetadata:
        env = self.shared.env
        doc = (type(env).__doc__ or "").strip().splitlines()
        return EnvironmentMetadata(
            name=self.shared.env_id, version=persuasion_gym.__version__,
            description=(f"{self.shared.env_id}: a persuasion game over {len(env.dataset)} {env.task.name} items "
                         f"({env.dataset.split}); the action is the Advisor's signal, the reward the Receiver's scored "
                         f"answer. {doc[0] if doc else ''}").strip())

    def close(self) -> None:
        self.session.close()


class PersuasionEnvClient(EnvClient):
    """OpenEnv's WebSocket client for a served persuasion env: ``PersuasionEnvClient(base_url=
    "http://HOST:PORT")``, async (``await client.reset(seed=0)``, ``await client.step("Think
    step by step.")``) or synchronous through ``.sync()``. ``step`` takes a
    ``PersuasionAction``, a text or an index."""

    def _step_payload(self, action: PersuasionAction | str | int) -> dict[str, Any]:
        if not isinstance(action, PersuasionAction):
            action = PersuasionAction(signal=action) if isinstance(action, str) else PersuasionAction(index=action)
        return action.model_dump(exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult:
        data = payload.get("observation", {})
        observation = PersuasionObservation(**_fields(PersuasionObservation, data), done=payload.get("done", False),
                                            reward=payload.get("reward"), metadata=dict(data.get("info", {})))
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> PersuasionState:
        return PersuasionState.model_validate(payload)


def _check_version() -> None:
    try:
        installed = version("openenv-core")
    except PackageNotFoundError:  # imported from a source tree
        return
    parts = tuple(int(p) for p in installed.split(".")[:3] if p.isdigit())
    if not (0, 2, 2) <= parts < (0, 4):
        logger.warning("openenv-core %s is outside the releases persuasion-gym is tested with (%s); if the server "
                       "misbehaves: pip install --no-deps 'openenv-core%s'", installed, OPENENV_RANGE, OPENENV_RANGE)


def create_app(shared: SharedEnv, max_sessions: int = 64) -> Any:
    """openenv-core's FastAPI app (``/ws`` sessions, ``/reset``, ``/step``, ``/state``,
    ``/schema``, ``/health``, ``/docs``) for the shared env, at most ``max_sessions`` sessions
    at once."""
    if max_sessions < 1:
        raise ConfigError(f"max_sessions={max_sessions}: must be at least 1")
    _check_version()
    factory = functools.partial(PersuasionEnvironment, shared)
    return create_fastapi_app(factory, PersuasionAction, PersuasionObservation, max_concurrent_envs=max_sessions)


def quiet_closes(app: Any) -> Any:
    """``app``, less the traceback openenv-core's WebSocket endpoint logs when a client closes
    first (its last ``websocket.close()`` raises ``WebSocketDisconnect`` at a gone peer): the
    session was over and cleaned up by then."""
    from starlette.websockets import WebSocketDisconnect

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except WebSocketDisconnect:
            if scope.get("type") != "websocket":
                raise

    return wrapped


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts (so ``port=0`` has its number to say)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port (0 takes a free one) "
                          "or --host") from None


def serve(shared: SharedEnv, host: str = "127.0.0.1", port: int = 8000, max_sessions: int = 64,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); then play what is queued and close the env.
    ``announce`` is told the address once the socket listens."""
    import uvicorn

    app = create_app(shared, max_sessions)
    sock = bind(host, port)
    where = sock.getsockname()
    shown = f"[{where[0]}]" if sock.family == socket.AF_INET6 else where[0]
    receiver = shared.env.receiver
    limit = getattr(receiver, "max_concurrency", None)
    if isinstance(limit, int) and limit < max_sessions:
        logger.warning("the Receiver sends at most %d requests at a time, and up to %d sessions' steps make one batch: "
                       "add ?max_concurrency=%d to the receiver spec to ask them all at once", limit, max_sessions,
                       max_sessions)
    env = shared.env
    (announce or (lambda line: print(line, flush=True)))(
        f"serving {shared.env_id} ({len(env.dataset)} items, {len(env.signals)} signals, {env.action_type} actions, "
        f"receiver {receiver!r}) to OpenEnv clients at http://{shown}:{where[1]} (WebSocket /ws, up to "
        f"{max_sessions} sessions; API docs at /docs)")
    config = uvicorn.Config(quiet_closes(app), log_level="warning", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        shared.close()
        env.close()
        if receiver is not None:
            receiver.close()
        sock.close()
    logger.info("served %d steps in %d batches", shared.batcher.steps, shared.batcher.batches)
