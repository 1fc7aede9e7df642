"""Receiver spec strings, as ``gym.make(..., receiver=...)`` and the CLI take them.

- ``openai:MODEL@URL`` (e.g. ``openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1``);
  ``openai:MODEL`` takes the URL from ``$OPENAI_BASE_URL``; ``openai:@URL`` asks the server
  which model it serves. Decoding options follow a ``?``: ``openai:gpt-4o-mini?temperature=0.7&seed=1``.
- ``auto``: ``$PERSUASION_GYM_RECEIVER`` if set, else an endpoint configured through
  ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` (model from ``$OPENAI_MODEL`` or the server).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from persuasion_gym.errors import ConfigError, ReceiverUnavailableError
from persuasion_gym.receivers.base import Receiver
from persuasion_gym.receivers.cache import ResponseCache
from persuasion_gym.receivers.openai_compat import OpenAIReceiver

KINDS: dict[str, type[Receiver]] = {"openai": OpenAIReceiver}
SPEC_HELP = "use 'openai:MODEL@URL' (e.g. 'openai:my-model@http://127.0.0.1:8000/v1'), 'auto', or pass a Receiver"


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec into its kind and constructor keyword arguments (no network)."""
    body, _, query = spec.strip().partition("?")
    kind, _, rest = body.partition(":")
    if kind not in KINDS:
        raise ConfigError(f"unknown receiver spec {spec!r}: {SPEC_HELP}")
    kwargs: dict[str, Any] = {}
    if kind == "openai" and rest:
        model, _, url = rest.partition("@")
        if model:
            kwargs["model"] = model
        if url:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"receiver spec {spec!r}: the URL after '@' must start with http:// or https://")
            kwargs["base_url"] = url
    allowed = set(inspect.signature(KINDS[kind]).parameters) - {"cache", "api_key"}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(
                f"receiver spec {spec!r}: bad option {pair!r}; options are {', '.join(sorted(allowed))}"
            )
        kwargs[key] = _value(value)
    return kind, kwargs


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
    if spec == "auto":
        spec = _auto_spec()
    kind, kwargs = parse_spec(spec)
    return KINDS[kind](**kwargs, **overrides, cache=cache)


def _auto_spec() -> str:
    configured = os.environ.get("PERSUASION_GYM_RECEIVER")
    if configured:
        if configured == "auto":
            raise ConfigError("PERSUASION_GYM_RECEIVER=auto would loop: set it to a spec such as 'openai:MODEL@URL'")
        return configured
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL", "")
        return f"openai:{model}" if model else "openai"
    raise ReceiverUnavailableError(
        "no Receiver configured: pass receiver='openai:MODEL@URL', or set PERSUASION_GYM_RECEIVER "
        "to such a spec, or set OPENAI_BASE_URL (and OPENAI_API_KEY, OPENAI_MODEL) for an "
        "OpenAI-compatible endpoint"
    )
