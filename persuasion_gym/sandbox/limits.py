"""Resource limits of one sandboxed run. The worker sets them on itself before it runs any
of the program (no ``preexec_fn``, which is unsafe in threaded parents)."""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one program may use. ``timeout_s`` is wall-clock time for the whole run (loading
    the program and every test call); ``cpu_s`` defaults to that, rounded up, plus one."""

    timeout_s: float = 10.0
    cpu_s: int | None = None
    memory_mb: int = 1024  # address space
    file_mb: int = 16  # the largest file the program may write
    tmp_mb: int = 64  # the private temporary directory (bubblewrap only)
    processes: int = 32  # processes and threads of the program's user
    open_files: int = 256

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb <= 0 or self.file_mb < 0 or self.processes < 1:
            raise ValueError(f"{self}: timeouts and limits must be positive")

    def argument(self, extra_processes: int = 0) -> str:
        """The limits as the worker's ``argv[1]``: ``resource=value,...``."""
        return ",".join(f"{which}={value}" for which, value in self.rlimits(extra_processes))

    def rlimits(self, extra_processes: int = 0) -> list[tuple[int, int]]:
        """(resource, limit) pairs; ``extra_processes`` raises the process limit by what the
        user already runs (the limit counts all of a user's processes)."""
        cpu = self.cpu_s if self.cpu_s is not None else math.ceil(self.timeout_s) + 1
        return [
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_AS, self.memory_mb << 20),
            (resource.RLIMIT_FSIZE, self.file_mb << 20),
            (resource.RLIMIT_NPROC, self.processes + extra_processes),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_CORE, 0),
        ]


def processes_of_current_user() -> int:
    """How many processes this user runs now (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count
