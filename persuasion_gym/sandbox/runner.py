"""Running untrusted programs against trusted tests; the runner, not the program, decides.

The program runs in a sandboxed worker (``worker.py``). The tests run here, in the runner,
with each of the program's functions bound to a proxy: a call sends the arguments into the
sandbox and brings the result back as a plain value (``values.py``). So nothing the program
does (its exit code, what it prints, patching ``builtins`` or ``assert``, returning an object
that equals everything, exiting early) can make a test pass: a run passes only when the
tests, executing outside the sandbox, finish without an exception. Timeouts, crashes and
refused values are raised as ``Failure``, a ``BaseException`` that tests cannot swallow with
``except Exception``.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import importlib
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persuasion_gym.errors import PersuasionGymError
from persuasion_gym.sandbox.isolation import (
    Isolation,
    Mode,
    bwrap_command,
    clean_environment,
    detect,
    interpreter,
    kill_marked,
    next_uid,
    start_ticks,
)
from persuasion_gym.sandbox.limits import Limits, processes_of_current_user
from persuasion_gym.sandbox.values import RefusedValue, loads_plain
from persuasion_gym.sandbox.worker import HEADER

WORKER_SOURCE = Path(__file__).with_name("worker.py").read_text()
MAX_FRAME = 64 << 20


@dataclass(frozen=True)
class CodeCheck:
    """A program and the tests that judge it.

    ``program`` is untrusted and runs in the sandbox. ``setup`` and ``tests`` are trusted and
    run in the runner: ``setup`` first (HumanEval: the prompt, whose helpers the tests call),
    then ``tests``, in which ``entry_point`` and every other name the program defines and
    ``setup`` does not are the program's functions, called through the sandbox.
    """

    program: str
    tests: str
    entry_point: str
    setup: str = ""

    @functools.cached_property
    def key(self) -> str:
        """A hash of the program and its tests (verdicts are memoised by it)."""
        parts = (self.program, self.tests, self.entry_point, self.setup)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """The outcome of one run. ``status``: passed, failed (a test failed or the program raised),
    timeout, crashed (the sandboxed process died) or refused (it sent back a non-plain value)."""

    passed: bool
    status: str
    detail: str
    isolation: str
    seconds: float


class Failure(BaseException):
    """The run is over for a reason no test may catch (a ``BaseException``, not ``Exception``)."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class ProgramError(Exception):
    """The program's function raised an exception whose type is not a built-in one."""


def _raised(type_name: str, message: str) -> Exception:
    """The program's exception, rebuilt as the built-in type of that name when there is one
    (so tests that expect a ``ValueError`` see one), else as ``ProgramError``."""
    kind = getattr(builtins, type_name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
        try:
            return kind(message)
        except Exception:
            pass
    return ProgramError(f"{type_name}: {message}")


class _Worker:
    """One sandboxed worker process and its framed channel, with a deadline on every wait."""

    def __init__(self, isolation: Isolation, limits: Limits, deadline: float):
        self.deadline = deadline
        self.isolated = isolation.isolated
        python, _ = interpreter()
        root = os.geteuid() == 0
        self.marker = marker = os.urandom(8).hex()
        self._tmp: tempfile.TemporaryDirectory | None = None
        if isolation.isolated:
            uid = next_uid() if root else None
            # Unless the program runs under its own user id, RLIMIT_NPROC counts all of ours.
            extra = 0 if uid is not None else processes_of_current_user()
            argv = [*bwrap_command(limits, uid, marker), python, "-I", "-S", "-c", WORKER_SOURCE,
                    limits.argument(extra)]
            env, cwd = None, None
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="persuasion-gym-run-")
            extra = 0 if root else processes_of_current_user()
            argv = [python, "-I", "-S", "-c", WORKER_SOURCE, limits.argument(extra)]
            env = clean_environment(self._tmp.name, marker)
            cwd = self._tmp.name
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
        )
        self._born = 0 if isolation.isolated else start_ticks(self.process.pid)
        stdin, stdout, stderr = self.process.stdin, self.process.stdout, self.process.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # all three are pipes
        self._streams = (stdin, stdout, stderr)
        self._in, self._out, self._stderr = stdin.fileno(), stdout.fileno(), stderr
        os.set_blocking(self._in, False)

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=5)
        data = HEADER.pack(len(data)) + data
        while data:
            self._wait(self._in, write=True)
            try:
                data = data[os.write(self._in, data):]
            except BrokenPipeError:
                raise self._died() from None

    def receive(self) -> Any:
        (size,) = HEADER.unpack(self._read(HEADER.size))
        if size > MAX_FRAME:
            raise Failure("refused", f"the program sent a frame of {size} bytes (more than {MAX_FRAME})")
        try:
            return loads_plain(self._read(size))
        except RefusedValue as exc:
            raise Failure("refused", f"the program returned {exc}") from None

    def _read(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n:
            self._wait(self._out, write=False)
            chunk = os.read(self._out, min(n, 1 << 20))
            if not chunk:
                raise self._died()
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _wait(self, fd: int, write: bool) -> None:
        left = self.deadline - time.monotonic()
        if left > 0:
            ready = select.select([], [fd], [], left)[1] if write else select.select([fd], [], [], left)[0]
            if ready:
                return
        raise Failure("timeout", "the run exceeded its wall-clock limit")

    def _died(self) -> Failure:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            reason = f"killed by {signal.Signals(-code).name}"
        elif code is not None:
            reason = f"exited with code {code}"
        else:
            reason = "closed its channel"
        if code == 1 or code == 127:  # bwrap or setpriv refused to start: say why
            stderr = self._stderr.read(2000).decode(errors="replace").strip()
            reason += f" ({stderr})" if stderr else ""
        return Failure("crashed", f"the sandboxed process {reason}")

    def close(self) -> None:
        """Kill the worker with everything it started: under bubblewrap the whole PID namespace
        dies with it; in the fallback, its session and every process carrying its marker."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if not self.isolated:  # after the wait: the worker itself is gone, not dying
            kill_marked(self.marker, self._born)
        for stream in self._streams:
            try:
                stream.close()
            except OSError:
                pass
        if self._tmp is not None:
            self._tmp.cleanup()


class _Function:
    """A function of the sandboxed program, callable from the tests."""

    def __init__(self, worker: _Worker, name: str):
        self._worker, self.__name__ = worker, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            self._worker.send((self.__name__, args, kwargs))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise Failure(
                "failed", f"the tests passed {self.__name__} an argument that cannot enter the sandbox ({exc})"
            ) from None
        reply = self._worker.receive()
        match reply:
            case ("return", bytes() as payload):
                try:
                    return loads_plain(payload)
                except RefusedValue as exc:
                    raise Failure("refused", f"{self.__name__} returned {exc}") from None
            case ("raise", str() as kind, str() as message):
                raise _raised(kind, message)
            case ("unpicklable", str() as kind):
                raise Failure("refused", f"{self.__name__} returned a {kind} object, which is not a plain value")
        raise Failure("refused", f"the program broke the protocol ({type(reply).__name__} frame)")

    def __repr__(self) -> str:
        return f"<sandboxed function {self.__name__}>"


def _test_line(exc: BaseException) -> int | str:
    """The line of the tests where ``exc`` was raised."""
    line: int | str = "?"
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == "<tests>":
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def _free_names(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


class Sandbox:
    """Runs untrusted programs against trusted tests, one sandboxed process per program.

    ``isolation``: ``"auto"`` (bubblewrap when it works here, else the announced fallback),
    ``"bwrap"`` (bubblewrap or an error) or ``"rlimits"``. ``workers``: how many programs
    ``run_many`` runs at once (default: one per core).
    """

    def __init__(self, isolation: Mode = "auto", limits: Limits | None = None, workers: int | None = None):
        self.mode, self.limits = isolation, limits or Limits()
        self.workers = workers or os.cpu_count() or 1
        self._isolation: Isolation | None = None

    @property
    def isolation(self) -> Isolation:
        """The active isolation (probed on first use)."""
        if self._isolation is None:
            self._isolation = detect(self.mode)
        return self._isolation

    def run(self, check: CodeCheck) -> Verdict:
        """Run one program against its tests."""
        isolation, start = self.isolation, time.monotonic()
        try:
            worker = _Worker(isolation, self.limits, start + self.limits.timeout_s)
        except OSError as exc:  # the machine's fault, not the program's: no silent reward of 0
            raise PersuasionGymError(
                f"could not start a sandboxed process ({exc}); the program was not judged") from exc
        try:
            self._judge(check, worker)
        except Failure as failure:
            status, detail = failure.status, failure.detail
        except SyntaxError as exc:
            status, detail = "failed", f"the tests do not compile: {exc}"
        except AssertionError as exc:
            line = _test_line(exc)
            status, detail = "failed", f"a test failed (AssertionError at test line {line}) {exc}".rstrip()
        except Exception as exc:
            status, detail = "failed", f"the tests raised {type(exc).__name__}: {str(exc)[:300]}"
        else:
            status, detail = "passed", "every test passed"
        return Verdict(status == "passed", status, detail, isolation.name, time.monotonic() - start)

    def run_many(self, checks: Sequence[CodeCheck], progress: bool = False) -> list[Verdict]:
        """Run programs in parallel, ``workers`` at a time; verdicts in the order given."""
        if not checks:
            return []
        _ = self.isolation  # probe (and warn) once, before the threads start
        with ThreadPoolExecutor(max_workers=min(self.workers, len(checks))) as pool:
            results: Iterable[Verdict] = pool.map(self.run, checks)
            if progress:
                from tqdm.auto import tqdm

                results = tqdm(results, total=len(checks), desc="running programs", unit="program")
            return list(results)

    def _judge(self, check: CodeCheck, worker: _Worker) -> None:
        try:
            worker.send(check.program)
            match worker.receive():
                case ("loaded", list() as defined):
                    pass
                case ("error", str() as kind, str() as message):
                    raise Failure("failed", f"the program raised {kind} while loading: {message}")
                case _:
                    raise Failure("refused", "the program broke the protocol while loading")
            if check.entry_point not in defined:
                raise Failure("failed", f"the program defines no function {check.entry_point!r}")
            namespace: dict[str, Any] = {"__name__": "__sandbox_tests__"}
            exec(compile(check.setup, "<setup>", "exec"), namespace)
            names = _free_names(check.tests)
            for name in names:
                if name == check.entry_point or (name in defined and name not in namespace
                                                 and not hasattr(builtins, name)):
                    namespace[name] = _Function(worker, name)
                elif name not in namespace and not hasattr(builtins, name) and name in sys.stdlib_module_names:
                    namespace[name] = importlib.import_module(name)  # e.g. `math.isclose` in MBPP tests
            namespace[check.entry_point] = _Function(worker, check.entry_point)
            exec(compile(check.tests, "<tests>", "exec"), namespace)
        finally:
            worker.close()
