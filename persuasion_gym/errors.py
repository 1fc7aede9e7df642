"""Exceptions of persuasion_gym. Every message names the problem and the fix."""


class PersuasionGymError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(PersuasionGymError, ValueError):
    """A bad argument: unknown name, malformed spec, inconsistent options."""


class DataError(PersuasionGymError, ValueError):
    """A data set that cannot be found or parsed."""


class ReceiverError(PersuasionGymError, RuntimeError):
    """The Receiver failed to answer (after retries)."""


class ReceiverUnavailableError(ReceiverError):
    """The Receiver cannot be reached at all, or rejects the credentials."""


class InvalidActionError(PersuasionGymError, ValueError):
    """An action outside the env's action space."""
