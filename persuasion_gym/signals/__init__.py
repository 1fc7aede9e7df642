"""Signals: the texts an Advisor can send, grouped in libraries."""

from persuasion_gym.signals.code_hints import CODE_SIGNALS
from persuasion_gym.signals.library import SIGNAL_CHARSET, SignalLibrary, as_library
from persuasion_gym.signals.math_hints import MATH_SIGNALS
from persuasion_gym.signals.reasoning_hints import REASONING_SIGNALS

__all__ = ["CODE_SIGNALS", "MATH_SIGNALS", "REASONING_SIGNALS", "SIGNAL_CHARSET", "SignalLibrary", "as_library"]
