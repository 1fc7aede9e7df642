"""Exceptions of persuasion_gym. Every message names the problem and the fix.

The command line prints one line for each (``persuasion-gym: error: ...``, exit code 2), and
decides by class what else to say: a ``ReceiverError`` that is not a ``ConfigError`` gets what
running the same command again does (the answers that came back are cached); a
``ConfigError`` does not, because a rerun fails the same way until the configuration is fixed.
"""


class PersuasionGymError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(PersuasionGymError, ValueError):
    """A bad argument: unknown name, malformed spec, inconsistent options."""


class DataError(PersuasionGymError, ValueError):
    """A data set that cannot be found or parsed."""


class TableError(DataError):
    """A response table file that cannot be read: missing, truncated, corrupt, not a table."""


class ReceiverError(PersuasionGymError, RuntimeError):
    """The Receiver failed to answer (after retries)."""


class ReceiverUnavailableError(ReceiverError):
    """The Receiver cannot be reached at all, or rejects the credentials."""


class ReceiverConfigError(ReceiverUnavailableError, ConfigError):
    """The Receiver cannot work as configured (a missing or rejected API key, no server at
    the URL when it is set up): nothing was asked, and a rerun fails alike until the
    configuration is fixed."""


class InvalidActionError(PersuasionGymError, ValueError):
    """An action outside the env's action space."""
