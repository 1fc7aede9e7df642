"""A Receiver spread over a Ray cluster: N actors, each holding a replica of an inner Receiver.

``ray:hf:Qwen/Qwen2.5-7B-Instruct?replicas=8&num_gpus=1`` puts eight copies of a local model on
eight GPUs; ``ray:openai:MODEL?endpoints=URL1,URL2`` gives each endpoint an actor of its own.
A batch is cut into calls the size the inner Receiver likes (one request for an endpoint, a
batch for a local model), each actor keeps as many in flight as its Receiver takes at once,
and every answer comes back to the driver as its call finishes. The driver's response cache
stays the one store (actors hold none): ``respond`` caches each answer on arrival, and a call
starts only when another's answers are stored, so a killed run loses at most the answers in
flight (replicas x calls in flight x requests per call).

The identity is the inner Receiver's: the same model and decoding give the same cache keys
and tables with or without Ray. An ``endpoints=`` list declares that its servers serve one
model, so they share one identity: the inner spec's ``cache_key`` if it has one, else the list
itself (sorted), which a changed list changes. An actor that dies is restarted by Ray (``max_restarts``) and
its calls retried; a call that still fails goes to another replica, and a replica dead with
no restarts left gets no more calls (a ReceiverUnavailableError once all are).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from persuasion_gym.cluster import NAMESPACE, cluster_summary, connect
from persuasion_gym.errors import ConfigError, ReceiverError, ReceiverUnavailableError
from persuasion_gym.receivers.base import OnTruncated, Receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.response import Request, Response
from persuasion_gym.receivers.spec import make_receiver, parse_spec, receiver_class

logger = logging.getLogger(__name__)


class Replica:
    """The body of one Ray actor: an inner Receiver without a cache."""

    def __init__(self, spec: str, overrides: dict[str, Any]):
        self.receiver = make_receiver(spec, cache=False, **overrides)

    def describe(self) -> dict[str, Any]:
        import ray

        legacy = self.receiver.legacy_identity
        return {"identity": self.receiver.identity_json, "dispatch": list(self.receiver.dispatch),
                "legacy": None if legacy is None else json.dumps(legacy, sort_keys=True),
                "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def answer(self, requests: list[Request]) -> list[Response | ReceiverError]:
        results: list[Response | ReceiverError | None] = [None] * len(requests)
        for i, out in self.receiver.generate(requests):
            results[i] = out
        return cast("list[Response | ReceiverError]", results)  # every slot filled: one answer per request


class RayReceiver(Receiver):
    """Replicas of the Receiver ``inner`` (a spec) on Ray actors.

    Args:
        inner: the spec each actor builds, e.g. ``"hf:Qwen/Qwen2.5-7B-Instruct"`` or
            ``"openai:MODEL@URL"``. It must work on every node that may run an actor.
        replicas: how many actors (default: one per endpoint, else 1).
        endpoints: URLs (a list, or one comma-separated string) for an ``openai`` inner spec;
            replica i asks ``endpoints[i % len(endpoints)]``.
        num_gpus, num_cpus: Ray resources per actor (default CPUs: 1 for a local model, 0 for
            an endpoint, whose actor mostly waits).
        address: the cluster to join (default ``$RAY_ADDRESS``, else Ray starts here).
        max_restarts: how often Ray restarts a dead actor (its calls are retried as often;
            ``max_restarts=0`` in a spec: a dead replica stays dead).
        startup_timeout: seconds the replicas may take to start (load their models).
        api_key: passed to the actors as an argument (default: ``$OPENAI_API_KEY`` of this
            process, for an ``openai`` inner spec), never through Ray's runtime environment,
            which the dashboard shows.
        on_truncated: as for every Receiver (the driver applies it).
        cache, price_in, price_out: as for every Receiver; the cache is this process's.

    An inner ``rpm=``/``tpm=`` is one budget per endpoint: the replicas that share an
    endpoint split it evenly.
    """

    kind = "ray"

    def __init__(
        self,
        inner: str,
        replicas: int | None = None,
        endpoints: str | Sequence[str] | None = None,
        num_gpus: float = 0,
        num_cpus: float | None = None,
        address: str | None = None,
        max_restarts: int = 3,
        startup_timeout: float = 600.0,
        api_key: str | None = None,
        on_truncated: OnTruncated = "score",
        cache: ResponseCache | str | Path | bool | None = True,
        price_in: float = 0.0,
        price_out: float = 0.0,
    ):
        super().__init__(cache, price_in, price_out, on_truncated)
        inner_kind, inner_options = parse_spec(inner)  # a malformed inner spec fails here, before Ray
        self._threads = _calls_at_once(inner_kind, inner_options) + 1  # + 1 for ``describe``
        if inner_kind == "ray":
            raise ConfigError(f"ray:{inner}: a Ray Receiver's inner spec cannot be another ray: spec")
        if isinstance(endpoints, str):
            endpoints = [url for url in endpoints.split(",") if url]
        self.endpoints = list(endpoints or [])
        if self.endpoints and inner_kind != "openai":
            raise ConfigError(f"ray:{inner}?endpoints=...: endpoints are for an openai: inner spec, not {inner_kind}:")
        for url in self.endpoints:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"endpoint {url!r} must start with http:// or https://")
        self.replicas = replicas if replicas is not None else max(len(self.endpoints), 1)
        if self.replicas < 1:
            raise ConfigError(f"replicas={self.replicas}: must be at least 1")
        if num_gpus < 0 or (num_cpus is not None and num_cpus < 0) or max_restarts < 0:
            raise ConfigError("num_gpus, num_cpus and max_restarts must not be negative")
        self.inner, self.inner_kind = inner, inner_kind
        self._limits = {name: inner_options[name] for name in ("rpm", "tpm") if inner_options.get(name)}
        self._budget = next((inner_options[name] for name in ("max_completion_tokens", "max_tokens", "max_new_tokens")
                             if isinstance(inner_options.get(name), int)), None)
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus if num_cpus is not None else (0.0 if inner_kind == "openai" else 1.0)
        self.address, self.max_restarts, self.startup_timeout = address, max_restarts, startup_timeout
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self._api_key = key if inner_kind == "openai" else None
        self._group = f"receiver-{uuid.uuid4().hex[:12]}"
        self._actors: list[Any] = []  # None for a dead replica a worker process could not find
        self._dead: set[int] = set()  # replicas Ray gave up on (no restarts left): later batches skip them
        self._identity: dict[str, Any] = {}
        self._legacy: dict[str, Any] | None = None
        # Declared alike: the endpoints share one identity (and cache) rather than each its own.
        self._cache_key = None if not self.endpoints or "cache_key" in inner_options else ",".join(
            sorted(self.endpoints))
        self.nodes: list[str] = []  # the node of each replica
        self.answered: list[int] = []  # the requests each replica has answered
        self._chunk, self._slots = 1, 1
        self._pid = os.getpid()  # the process whose Ray connection the actor handles belong to
        self._start()

    # -- the replicas --------------------------------------------------------------------------
    def _overrides(self, i: int) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.endpoints:
            overrides["base_url"] = self.endpoints[i % len(self.endpoints)]
        if self._cache_key is not None:
            overrides["cache_key"] = self._cache_key
        if self._limits:  # one budget per endpoint, split among the replicas asking it
            sharing = len(range(i % max(len(self.endpoints), 1), self.replicas, max(len(self.endpoints), 1)))
            overrides.update({name: limit / sharing for name, limit in self._limits.items()})
        if self._api_key:
            overrides["api_key"] = self._api_key
        return overrides

    def _start(self) -> None:
        ray = connect(self.address)
        if self.num_gpus > 0:
            available = ray.cluster_resources().get("GPU", 0)
            if available < self.num_gpus:
                raise ConfigError(
                    f"ray:{self.inner}?num_gpus={self.num_gpus:g}: the Ray cluster has {available:g} GPUs "
                    f"({cluster_summary()}): add GPU nodes (ray start --address=... --num-gpus=N), or drop num_gpus= "
                    "to run the replicas on CPUs"
                )
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Hard node affinity: Ray's SPREAD and soft affinity are best-effort and stack small
        # actors on one node. A replica whose node dies is not moved by Ray; its calls go to the
        # other replicas.
        try:
            nodes = place(ray.nodes(), self.replicas, self.num_cpus, self.num_gpus)
        except ConfigError as exc:
            raise ConfigError(f"ray:{self.inner}?replicas={self.replicas}: {exc}") from None
        actor_class = ray.remote(Replica)
        self._dead = set()
        self._actors = [
            actor_class.options(
                name=f"{self._group}-{i}", namespace=NAMESPACE, num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                max_restarts=self.max_restarts, max_task_retries=self.max_restarts, max_concurrency=self._threads,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote(self.inner, self._overrides(i))
            for i, node in enumerate(nodes)
        ]
        try:
            described = ray.get([actor.describe.remote() for actor in self._actors], timeout=self.startup_timeout)
        except ray.exceptions.RuntimeEnvSetupError as exc:
            self.close()
            raise ReceiverUnavailableError(
                f"the Ray workers could not set up the runtime environment for {self.inner!r}: {_cause(exc)}. "
                "Check the workers' logs ('ray logs') and that every node can reach what the job's runtime_env "
                "names (RAY_RUNTIME_ENV, ray.init(runtime_env=...))"
            ) from None
        except ray.exceptions.ActorUnschedulableError as exc:
            self.close()
            raise ConfigError(
                f"Ray cannot schedule the replicas of {self.inner!r} ({_cause(exc)}): the node picked for one is "
                f"gone or lacks {self.num_cpus:g} CPUs and {self.num_gpus:g} GPUs (cluster: {cluster_summary()}; "
                "see 'ray status'); retry, or lower replicas=/num_cpus=/num_gpus="
            ) from None
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ReceiverUnavailableError(
                f"the {self.replicas} replicas of {self.inner!r} did not start within {self.startup_timeout:g} s: the "
                f"cluster ({cluster_summary()}) may lack the resources they ask ({self.num_cpus:g} CPUs, "
                f"{self.num_gpus:g} GPUs each; see 'ray status'); lower replicas=/num_cpus= or raise startup_timeout="
            ) from None
        except ray.exceptions.RayActorError as exc:
            self.close()
            raise ReceiverUnavailableError(
                f"the Receiver {self.inner!r} failed to start on the Ray workers: {_cause(exc)}. Every node must "
                "have persuasion-gym with the inner Receiver's extras (and its model) installed; check the spec "
                "there with 'persuasion-gym check --receiver SPEC'"
            ) from None
        identities = {d["identity"] for d in described}
        if len(identities) > 1:
            self.close()
            raise ConfigError(
                f"the replicas of {self.inner!r} disagree on the model or decoding "
                f"({' vs '.join(sorted(identities))}): "
                "every endpoint must serve the same model"
            )
        self._identity = json.loads(described[0]["identity"])
        self._legacy = json.loads(described[0]["legacy"]) if described[0].get("legacy") else None
        self._chunk, self._slots = described[0]["dispatch"]
        self.nodes = [d["node"] for d in described]
        self.answered = [0] * self.replicas
        used = len(set(self.nodes))
        logger.info("ray receiver: %d replica%s of %s on %d node%s (cluster: %s)", self.replicas,
                    "s" * (self.replicas != 1), self.inner, used, "s" * (used != 1), cluster_summary())

    @property
    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def legacy_identity(self) -> dict[str, Any] | None:
        return self._legacy

    @property
    def completion_budget(self) -> int | None:
        return self._budget

    @property
    def dispatch(self) -> tuple[int, int]:
        return self._chunk, self._slots * self.replicas

    @property
    def in_flight_bound(self) -> int:
        """The most answers a killed run can have paid for and not stored."""
        return self.replicas * self._slots * self._chunk

    def __repr__(self) -> str:
        return f"RayReceiver(inner={self.inner!r}, replicas={self.replicas})"

    def _given_up(self, replica: int) -> bool:
        """Whether Ray has given the replica up (dead, no restarts left): Ray then drops its
        name, while a replica it is restarting keeps it."""
        import ray

        try:
            ray.get_actor(f"{self._group}-{replica}", namespace=NAMESPACE)
        except ValueError:
            return True
        return False

    def _all_dead(self, cause: str) -> ReceiverUnavailableError:
        return ReceiverUnavailableError(
            f"every replica of {self.inner!r} is dead with no restarts left ({cause}): check the workers' logs "
            "('ray logs') and the cluster's health ('ray status'); close() this Receiver to start fresh replicas "
            "on its next batch, or raise max_restarts="
        )

    def generate(self, requests: list[Request]) -> Iterator[tuple[int, Response | ReceiverError]]:
        import ray

        if os.getpid() != self._pid:
            raise ConfigError(
                "a Ray Receiver cannot cross a fork (Ray's connection does not survive it): use the native vector "
                "env (gym.make_vec(ID, num_envs=N): one batch, no processes), or start workers with "
                "vector_kwargs={'context': 'spawn'}"
            )
        if not self._actors:
            self._start()
        live = [r for r in range(self.replicas) if r not in self._dead]
        if not live:
            raise self._all_dead("in an earlier batch")
        pending = deque(list(range(start, min(start + self._chunk, len(requests))))
                        for start in range(0, len(requests), self._chunk))
        load = [0] * self.replicas
        failures = [0] * self.replicas
        in_flight: dict[Any, tuple[int, list[int], int]] = {}

        def submit(replica: int, chunk: list[int], attempt: int) -> None:
            ref = self._actors[replica].answer.remote([requests[j] for j in chunk])
            in_flight[ref] = (replica, chunk, attempt)
            load[replica] += 1

        def fill() -> None:
            # Healthy replicas first; one that failed twice this batch gets work only if all did.
            healthy = [r for r in live if failures[r] < 2] or live
            for replica in healthy:
                while pending and load[replica] < self._slots:
                    submit(replica, pending.popleft(), 0)

        fill()
        try:
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                replica, chunk, attempt = in_flight.pop(ready[0])
                load[replica] -= 1
                try:
                    results = ray.get(ready[0])
                except ray.exceptions.RayActorError as exc:
                    failures[replica] += 1
                    known = replica in self._dead  # another of its calls already told
                    if not known and self._given_up(replica):
                        self._dead.add(replica)
                        live.remove(replica)
                        logger.warning("ray receiver: replica %d of %s is dead with no restarts left (%s): the %d "
                                       "others take its requests, in this batch and later ones", replica,
                                       self.inner, _cause(exc), len(live))
                    if not live:
                        raise self._all_dead(_cause(exc)) from None
                    if attempt >= self.replicas + self.max_restarts:
                        raise ReceiverUnavailableError(
                            f"{len(chunk)} requests failed on every replica of {self.inner!r} ({_cause(exc)}): "
                            "check the workers' logs ('ray logs') and the cluster's health ('ray status')"
                        ) from None
                    others = [r for r in live if r != replica and failures[r] < 2] or live
                    submit(min(others, key=lambda r: load[r]), chunk, attempt + 1)
                    if replica in live:
                        logger.warning("ray receiver: replica %d died (%s); its %d requests went to another replica",
                                       replica, _cause(exc), len(chunk))
                    elif known:
                        logger.debug("ray receiver: %d more requests of dead replica %d went to another replica",
                                     len(chunk), replica)
                    continue
                self.answered[replica] += len(chunk)
                yield from zip(chunk, results, strict=True)
                fill()  # only now, with these answers stored, may more calls start
        finally:  # interrupted: stop what is in flight (best effort; answered calls are lost)
            for ref in in_flight:
                ray.cancel(ref)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the replicas (the next batch starts them again)."""
        if self._actors:
            import ray

            for actor in self._actors:
                if actor is not None:
                    ray.kill(actor, no_restart=True)
        self._actors = []

    def __getstate__(self) -> dict[str, Any]:
        # Another process (an async vector env's worker) finds the same actors by name.
        state = self.__dict__.copy()
        state.update(_actors=[f"{self._group}-{i}" for i in range(self.replicas)] if self._actors else [],
                     address=self.address or os.environ.get("RAY_ADDRESS"))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        names = state.pop("_actors")
        self.__dict__.update(state, _actors=[], _pid=os.getpid())
        if names:
            ray = connect(self.address)
            self._actors = [self._find(ray, i, name) for i, name in enumerate(names)]

    def _find(self, ray: Any, replica: int, name: str) -> Any:
        """The handle of a replica by name; None, and the replica dead, when Ray gave it up."""
        if replica not in self._dead:
            try:
                return ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                self._dead.add(replica)
        return None


def place(nodes: Sequence[dict[str, Any]], replicas: int, num_cpus: float, num_gpus: float) -> list[str]:
    """The node id of each replica, from ``ray.nodes()``: every alive node holds as many
    replicas as its resources over a replica's demand, and the nodes take one each in turn
    while they have room, so uneven nodes (1 GPU and 4) are filled rather than left waiting.
    A ConfigError, up front, when the cluster cannot hold them all."""
    room: dict[str, int] = {}
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        fits = [int(resources.get(name, 0) / demand + 1e-9)  # 1e-9: 0.3 / 0.1 is 2.999...
                for name, demand in (("CPU", num_cpus), ("GPU", num_gpus)) if demand > 0]
        room[node["NodeID"]] = min(fits) if fits else replicas  # no demand: no limit
    if sum(room.values()) < replicas:
        held = ", ".join(f"{node_id[:8]}: {n}" for node_id, n in room.items()) or "no alive nodes"
        raise ConfigError(
            f"the Ray cluster can hold {sum(room.values())} replicas of {num_cpus:g} CPUs and {num_gpus:g} GPUs "
            f"each, not {replicas} (per node: {held}): lower replicas=, num_cpus= or num_gpus=, or add nodes "
            "(ray start --address=... --num-cpus=N --num-gpus=N)"
        )
    placed: list[str] = []
    while len(placed) < replicas:
        for node_id in [node_id for node_id, n in room.items() if n > 0][: replicas - len(placed)]:
            placed.append(node_id)
            room[node_id] -= 1
    return placed


def _calls_at_once(kind: str, options: dict[str, Any]) -> int:
    """The calls an actor runs at once (threads), read off the inner Receiver's own options:
    an endpoint takes ``max_concurrency`` requests, a local model one batch."""

    parameter = inspect.signature(receiver_class(kind)).parameters.get("max_concurrency")
    return int(options.get("max_concurrency", parameter.default)) if parameter is not None else 1


def _cause(exc: BaseException) -> str:
    """The last line of a Ray error: the original exception, without Ray's preamble."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if "Error" in line.split(":")[0] and not line.startswith(("ray.", "Traceback"))]
    return (useful or lines or [type(exc).__name__])[-1][:300]
