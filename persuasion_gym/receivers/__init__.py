"""Receivers: the black-box models that answer, behind one batched, cached interface."""

from persuasion_gym.receivers.base import Receiver, ReceiverStats
from persuasion_gym.receivers.cache import ResponseCache, open_cache
from persuasion_gym.receivers.openai_compat import OpenAIReceiver
from persuasion_gym.receivers.response import Request, Response, Usage
from persuasion_gym.receivers.spec import auto_spec, make_receiver, parse_spec
from persuasion_gym.receivers.transformers_local import TransformersReceiver

__all__ = [
    "OpenAIReceiver", "Receiver", "TransformersReceiver", "auto_spec", "ReceiverStats", "Request", "Response",
    "ResponseCache", "Usage", "make_receiver", "open_cache", "parse_spec",
]
