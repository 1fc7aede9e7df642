"""How untrusted programs are isolated: bubblewrap when it works, else rlimits and a process group.

bubblewrap (``bwrap``) gives the program a read-only view of the interpreter and system
libraries and nothing else (no project files, no home, no /etc), a private size-capped /tmp,
new PID, network, IPC and UTS namespaces, no capabilities, ``no_new_privs``, a cleared
environment, and death with its parent. Run as root, the sandbox drops to a per-run user id
(``setpriv``) so that the process limit holds: the kernel exempts root from RLIMIT_NPROC.

Without bwrap the program runs with the same resource limits, a cleared environment, a
temporary working directory and its own process group, but it can read what this user can
read and reach the network: the fallback is announced in a warning and in every verdict.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from persuasion_gym.errors import ConfigError
from persuasion_gym.sandbox.limits import Limits

logger = logging.getLogger("persuasion_gym.sandbox")

Mode = Literal["auto", "bwrap", "rlimits"]
BWRAP_FIX = "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`)"
# Per-run user ids when the sandbox starts as root: RLIMIT_NPROC counts per user.
UID_BASE, UID_SPAN = 61000, 4000
_uids = itertools.count()
_uid_lock = threading.Lock()


@dataclass(frozen=True)
class Isolation:
    """The active isolation: ``name`` ("bubblewrap" or "rlimits") and what it does and does not do."""

    name: str
    description: str

    @property
    def isolated(self) -> bool:
        return self.name == "bubblewrap"


BUBBLEWRAP = Isolation(
    "bubblewrap",
    "bubblewrap: read-only system, private /tmp, no network, own PID/IPC/UTS namespaces, "
    "no capabilities, cleared environment, resource limits",
)


def interpreter() -> tuple[str, list[str]]:
    """The bare interpreter behind this one (outside any venv) and the directories it needs."""
    python = os.path.realpath(sys.executable)
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    return python, sorted(roots)


def clean_environment(home: str, marker: str) -> dict[str, str]:
    """All a program's environment holds (no keys, no tokens); the marker names its run."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "PERSUASION_GYM_SANDBOX_RUN": marker}


def next_uid() -> int:
    with _uid_lock:
        return UID_BASE + next(_uids) % UID_SPAN


def bwrap_command(limits: Limits, uid: int | None, marker: str) -> list[str]:
    """The bwrap argv up to the program to run (the caller appends the interpreter and args)."""
    python, roots = interpreter()
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    for root in roots:
        if root == "/usr" or root.startswith("/usr/"):
            continue
        # bwrap creates missing parents 0700, which a dropped user id could not traverse.
        parts = Path(root).parts
        for depth in range(2, len(parts)):
            argv += ["--perms", "0755", "--dir", str(Path(*parts[:depth]))]
        argv += ["--ro-bind", root, root]
    argv += [
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp", "--chdir", "/tmp",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--clearenv", "--cap-drop", "ALL",
    ]
    for name, value in clean_environment("/tmp", marker).items():
        argv += ["--setenv", name, value]
    if uid is not None:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "setpriv",
                 "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--inh-caps=-all"]
    return argv


def kill_marked(marker: str, born_after: int = 0, patience: float = 2.0) -> int:
    """SIGKILL every process whose environment holds this run's marker: the fallback's sweep
    for children that left the process group (best effort: a program can clear its
    environment before it detaches). Returns how many were killed.

    A process caught in the middle of ``execve`` shows an empty environment for a moment, so
    user processes born since ``born_after`` (clock ticks since boot, as in /proc/PID/stat)
    that show none are read again, for up to ``patience`` seconds, and scans repeat until
    one kills nothing: a marked process may fork while the sweep runs."""
    needle, killed = f"PERSUASION_GYM_SANDBOX_RUN={marker}".encode(), set()
    deadline = time.monotonic() + patience
    while True:
        fresh, unsure = False, False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in killed:  # killed ones take a moment to go
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as environ:
                    variables = environ.read()
                if needle in variables.split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed.add(int(entry.name))
                    fresh = True
                elif not variables and _newborn_user_process(entry.name, born_after):
                    unsure = True
            except OSError:
                pass
        if not (fresh or unsure) or time.monotonic() > deadline:
            return len(killed)
        time.sleep(0.005)


def _newborn_user_process(pid: str, born_after: int) -> bool:
    """Whether the process started at or after ``born_after`` and has a memory map that shows
    no environment yet: not a kernel thread, and not one dying (those just killed show none)."""
    fields = _stat_fields(pid)
    flags, start, vsize = int(fields[6]), int(fields[19]), int(fields[20])
    return not flags & (_PF_KTHREAD | _PF_EXITING) and vsize > 0 and start >= born_after


def start_ticks(pid: int) -> int:
    """When the process started, in clock ticks since boot (0 when it is already gone)."""
    try:
        return int(_stat_fields(str(pid))[19])
    except (OSError, IndexError, ValueError):
        return 0


def _stat_fields(pid: str) -> list[bytes]:
    """/proc/PID/stat from its third field (the state) on; the name before ")" may hold spaces."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()


_PF_EXITING, _PF_KTHREAD = 0x4, 0x00200000  # include/linux/sched.h: dying; a kernel thread


_detected: dict[str, Isolation] = {}
_detect_lock = threading.Lock()


def detect(mode: Mode = "auto") -> Isolation:
    """The isolation to use, probed once per process: ``"bwrap"`` insists on bubblewrap,
    ``"rlimits"`` takes the fallback, ``"auto"`` takes bubblewrap when a probe run works."""
    if mode not in ("auto", "bwrap", "rlimits"):
        raise ConfigError(f"sandbox isolation {mode!r}: use 'auto', 'bwrap' or 'rlimits'")
    with _detect_lock:
        if mode in _detected:
            return _detected[mode]
        problem = None if mode == "rlimits" else _probe_bwrap()
        if mode == "bwrap" and problem is not None:
            raise ConfigError(f"sandbox isolation 'bwrap' is not available: {problem}; {BWRAP_FIX}")
        if problem is None and mode != "rlimits":
            isolation = BUBBLEWRAP
            logger.info("sandbox: %s", isolation.description)
        else:
            reason = "requested" if mode == "rlimits" else problem
            isolation = Isolation(
                "rlimits",
                f"rlimits only ({reason}): resource limits, a process group and a cleared "
                "environment, but NO filesystem, network or PID isolation"
                + (" and no process limit (root is exempt)" if os.geteuid() == 0 else ""),
            )
            message = f"sandbox: {isolation.description}. For real isolation, {BWRAP_FIX}."
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        _detected[mode] = isolation
        return isolation


def _probe_bwrap() -> str | None:
    """None when bwrap runs a program here, else what went wrong."""
    if shutil.which("bwrap") is None:
        return "bwrap is not on PATH"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not on PATH"
    uid = next_uid() if os.geteuid() == 0 else None
    python, _ = interpreter()
    argv = bwrap_command(Limits(), uid, "probe") + [python, "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start ({exc})"
    if done.returncode != 0:
        return f"bwrap failed here ({done.stderr.decode(errors='replace').strip()[:200]})"
    return None
