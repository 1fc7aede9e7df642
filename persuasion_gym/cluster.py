"""Joining a Ray cluster: the one place that imports, starts or connects Ray.

Receivers (``ray:`` specs), the sandbox and RLlib training call ``connect``. It joins the
cluster at ``address`` (or ``$RAY_ADDRESS``; ``ray start --head`` prints it) and otherwise
starts Ray on this machine. A local start exports its address as ``RAY_ADDRESS``, so
processes this one starts later (an async vector env's workers) join the same Ray instead of
starting their own. The workers of this job see this process's ``PERSUASION_GYM_*`` settings
(data and cache folders, see ``shared_settings``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from types import ModuleType
from typing import Any

from persuasion_gym.errors import ConfigError, ReceiverUnavailableError

INSTALL_HINT = "pip install 'persuasion-gym[ray]' (Ray and RLlib)"
NAMESPACE = "persuasion_gym"
_joined: dict[str, str] = {}  # each address connect() joined -> the GCS address it led to


def require_ray() -> ModuleType:
    """The ``ray`` module, or an error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"running on Ray needs the ray package: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None, **init_options: Any) -> ModuleType:
    """Ray, initialised: joined to ``address`` (or ``$RAY_ADDRESS``), else started locally.

    A process already connected stays on its cluster; asking it for another address is an
    error rather than a silent second cluster.
    """
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        current = _gcs_address(ray)
        if address and not same_cluster(address, current):
            raise ConfigError(
                f"this process is already connected to the Ray cluster at {current}, not {address}: "
                "use one address per process (ray.shutdown() first to switch)"
            )
        return ray
    options: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": True,
                               "runtime_env": {"env_vars": shared_settings()}, **init_options}
    if address:
        fix = ("start it with 'ray start --head' (it prints the address), check --ray-address / RAY_ADDRESS, "
               "or unset them to run Ray on this machine")
        # Ray itself retries an unreachable address for minutes; a plain TCP probe fails at once.
        host, _, port = address.removeprefix("ray://").rpartition(":")
        host = host.strip("[]")  # an IPv6 host, [::1]:6379
        if host and port.isdigit():
            try:
                socket.create_connection((host, int(port)), timeout=10).close()
            except OSError as exc:
                raise ReceiverUnavailableError(f"cannot join the Ray cluster at {address!r} ({exc}): {fix}") from None
        try:
            ray.init(address=address, **options)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            raise ReceiverUnavailableError(
                f"cannot join the Ray cluster at {address!r} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): {fix}"
            ) from None
        # A ray:// client address never reads like the GCS address it leads to: remember it.
        _joined[address] = _gcs_address(ray)
    else:
        ray.init(include_dashboard=False, **options)
        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    return ray


def _gcs_address(ray: ModuleType) -> str:
    """The connected cluster's GCS address, or a marker for a Ray Client (ray://) connection,
    whose runtime context does not hold it."""
    try:
        return str(ray.get_runtime_context().gcs_address)
    except AttributeError:
        return "(a ray:// client connection)"


def same_cluster(address: str, current: str) -> bool:
    """Whether ``address`` names the cluster this process is connected to (GCS ``current``):
    "auto" and "local", an address this process joined, or the same host and port once host
    names are resolved and loopback is read as this node (Ray reports its node's IP, not
    ``localhost``)."""
    if address in ("auto", "local", current) or _joined.get(address) == current:
        return True
    mine, theirs = _endpoint(address), _endpoint(current)
    return mine is not None and mine == theirs


def _endpoint(address: str) -> tuple[str, int] | None:
    """The IP and port of a ``host:port`` address (``ray://`` stripped), loopback as this node's
    IP; None when it is not one or its host does not resolve."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    try:
        ip = str(socket.getaddrinfo(host, None)[0][4][0])
        loopback = ipaddress.ip_address(ip.partition("%")[0]).is_loopback  # an IPv6 scope ("%eth0") aside
    except (OSError, UnicodeError, ValueError):
        return None
    if loopback:
        ip = require_ray().util.get_node_ip_address()
    return ip, int(port)


def shared_settings() -> dict[str, str]:
    """This process's settings the workers need too: the package's data and cache folders and
    the Hugging Face offline switches. Never a secret: tokens and API keys are not among them
    (Ray shows the runtime environment on its dashboard)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME")
    return {name: value for name, value in os.environ.items()
            if (name.startswith("PERSUASION_GYM_") or name in names) and "KEY" not in name and "TOKEN" not in name}


def cluster_summary() -> str:
    """A one-line description of the connected cluster: nodes, CPUs, GPUs."""
    ray = require_ray()
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    resources = ray.cluster_resources()
    return (f"{len(nodes)} node{'s' * (len(nodes) != 1)}, {resources.get('CPU', 0):g} CPUs, "
            f"{resources.get('GPU', 0):g} GPUs")
