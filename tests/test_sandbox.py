"""The sandbox: real bubblewrap runs, hostile programs, and the runner's verdicts."""

from __future__ import annotations

import shutil
import socket
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from persuasion_gym.errors import ConfigError
from persuasion_gym.sandbox import CodeCheck, Limits, Sandbox, detect
from persuasion_gym.sandbox.values import RefusedValue, check_tree, loads_plain

HAS_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed (make test installs it)")
ADD_TESTS = "assert add(1, 2) == 3\nassert add(-4, 4) == 0\n"
GOOD = "def add(a, b):\n    return a + b\n"
FAST = Limits(timeout_s=3.0)


def check(program: str, tests: str = ADD_TESTS) -> CodeCheck:
    return CodeCheck(textwrap.dedent(program), tests, "add")


@pytest.fixture(scope="module")
def bwrap() -> Sandbox:
    if not HAS_BWRAP:
        pytest.skip("bubblewrap is not installed (make test installs it)")
    sandbox = Sandbox("bwrap", FAST)
    assert sandbox.isolation.name == "bubblewrap"
    return sandbox


@pytest.fixture(scope="module")
def fallback() -> Sandbox:
    from persuasion_gym.sandbox import isolation

    isolation._detected.pop("rlimits", None)  # the warning comes once per process: see it here
    with pytest.warns(RuntimeWarning, match="NO filesystem, network or PID isolation"):
        sandbox = Sandbox("rlimits", FAST)
        assert sandbox.isolation.name == "rlimits"
    return sandbox


def processes_with(text: str) -> list[int]:
    """Host processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# -- the runner decides ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bwrap", "rlimits"])
def test_good_passes_and_wrong_fails(mode, request):
    sandbox = request.getfixturevalue("bwrap" if mode == "bwrap" else "fallback")
    good = sandbox.run(check(GOOD))
    assert good.passed and good.status == "passed" and good.isolation == sandbox.isolation.name
    wrong = sandbox.run(check("def add(a, b):\n    return a - b\n"))
    assert not wrong.passed and wrong.status == "failed" and "AssertionError" in wrong.detail


def test_program_errors_reach_tests_as_builtin_exceptions(bwrap):
    program = "def add(a, b):\n    if a < 0:\n        raise ValueError('negative')\n    return a + b\n"
    tests = "assert add(1, 2) == 3\ntry:\n    add(-1, 2)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n    raise AssertionError('no error')\n"
    assert bwrap.run(check(program, tests)).passed
    custom = "class Oops(Exception):\n    pass\ndef add(a, b):\n    raise Oops('x')\n"
    verdict = bwrap.run(check(custom, "add(1, 2)"))
    assert verdict.status == "failed" and "ProgramError" in verdict.detail and "Oops" in verdict.detail


def test_missing_entry_point_and_syntax_error(bwrap):
    assert "defines no function 'add'" in bwrap.run(check("def plus(a, b):\n    return a + b\n")).detail
    broken = bwrap.run(check("def add(a, b)\n    return a + b\n"))
    assert broken.status == "failed" and "SyntaxError while loading" in broken.detail


def test_helpers_and_stdlib_names_in_tests(bwrap):
    # MBPP-style tests call several of the program's functions and use modules it imported.
    program = "import math\ndef area(r):\n    return math.pi * r * r\ndef add(a, b):\n    return a + b\n"
    tests = "assert math.isclose(area(1), 3.14159, rel_tol=1e-3)\nassert add(area(0), 1) == 1\n"
    assert bwrap.run(check(program, tests)).passed


def test_setup_helpers_are_the_trusted_ones(bwrap):
    # HumanEval: the tests call helpers from the prompt; a program redefining them is not trusted.
    setup = "def double(x):\n    return 2 * x\n"
    program = "def double(x):\n    return 0\ndef add(a, b):\n    return a + b\n"
    assert bwrap.run(CodeCheck(program, "assert double(add(1, 1)) == 4", "add", setup)).passed


# -- hostile programs: each contained, scored 0, and the next program unaffected -------------
HOSTILE = {
    "infinite loop": "while True:\n    pass\n",
    "infinite loop in the call": "def add(a, b):\n    while True:\n        pass\n",
    "memory bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n",
    "fork bomb": textwrap.dedent("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """),
    "huge file": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n",
    "stdout flood": "import sys\nwhile True:\n    print('x' * 100000)\n    sys.stderr.write('y' * 100000)\n",
    "sys.exit(0) before the tests": "import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n",
    "os._exit(0) before the tests": "import os\nos._exit(0)\n",
    "exit(0) inside the call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "patched assert and builtins": textwrap.dedent("""
        import builtins, sys
        class Quiet(Exception):
            pass
        builtins.AssertionError = Quiet
        builtins.print = lambda *a, **k: None
        builtins.__import__ = None
        sys.modules['builtins'].len = lambda x: 0
        def add(a, b):
            return 0
        """),
    "object equal to everything": textwrap.dedent("""
        class Anything:
            def __eq__(self, other):
                return True
        def add(a, b):
            return Anything()
        """),
    "int subclass equal to everything": textwrap.dedent("""
        class Sly(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def add(a, b):
            return Sly(0)
        """),
    "value that contains itself": "def add(a, b):\n    x = []\n    x.append(x)\n    return x\n",
    "exponentially shared value": textwrap.dedent("""
        def add(a, b):
            x = [0]
            for _ in range(60):
                x = [x, x]
            return x
        """),
    "prints PASSED and exits 0": textwrap.dedent("""
        import os
        def add(a, b):
            print('PASSED: all tests passed')
            os.write(1, b'passed')
            os._exit(0)
        """),
    "garbage on the runner's channel": textwrap.dedent("""
        import os
        for fd in range(3, 16):
            try:
                os.write(fd, b'\\x00\\x00\\x00\\x10' + b'\\xff' * 16)
            except OSError:
                pass
        def add(a, b):
            return 0
        """),
    "forged result frames": textwrap.dedent("""
        import os, pickle, struct
        frame = pickle.dumps(('loaded', ['add']))
        for fd in range(3, 16):
            try:
                os.write(fd, struct.pack('>I', len(frame)) + frame)
            except OSError:
                pass
        def add(a, b):
            return 0
        """),
}
FALLBACK_SAFE = ["infinite loop", "infinite loop in the call", "memory bomb", "huge file", "stdout flood",
                 "sys.exit(0) before the tests", "os._exit(0) before the tests", "patched assert and builtins",
                 "object equal to everything", "int subclass equal to everything", "prints PASSED and exits 0",
                 "value that contains itself", "exponentially shared value"]


@needs_bwrap
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(bwrap, name):
    verdict = bwrap.run(check(HOSTILE[name]))
    assert not verdict.passed, verdict
    assert verdict.seconds < FAST.timeout_s + 6  # killed at the timeout (margin for a loaded machine)
    assert bwrap.run(check(GOOD)).passed  # the next program is unaffected


@pytest.mark.parametrize("name", FALLBACK_SAFE)
def test_hostile_program_in_the_fallback(fallback, name):
    verdict = fallback.run(check(HOSTILE[name]))
    assert not verdict.passed, verdict
    assert fallback.run(check(GOOD)).passed


def test_fallback_environment_holds_no_secrets(fallback, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox-secret")
    program = "import os\ndef add(a, b):\n    return sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k)\n"
    assert fallback.run(check(program, "assert add(0, 0) == []")).passed


def test_a_sandbox_that_cannot_start_is_an_error_not_a_zero(monkeypatch):
    from persuasion_gym.errors import PersuasionGymError
    from persuasion_gym.sandbox import isolation

    sandbox = Sandbox("rlimits", FAST)
    sandbox.isolation
    monkeypatch.setattr(isolation.sys, "executable", "/nonexistent/python")
    with pytest.raises(PersuasionGymError, match="could not start a sandboxed process"):
        sandbox.run(check(GOOD))


def test_timeout_and_limit_statuses(bwrap):
    assert bwrap.run(check(HOSTILE["infinite loop"])).status == "timeout"
    assert bwrap.run(check(HOSTILE["object equal to everything"])).status == "refused"
    assert bwrap.run(check(HOSTILE["value that contains itself"])).status == "refused"
    assert bwrap.run(check(HOSTILE["os._exit(0) before the tests"])).status == "crashed"
    huge = bwrap.run(check(HOSTILE["huge file"]))
    assert huge.status == "failed" and "File too large" in huge.detail  # Python ignores SIGXFSZ: EFBIG


@needs_bwrap
def test_deleting_files_outside_the_sandbox(bwrap, tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    program = f"""
        import os, shutil
        shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)
        for path in ({str(victim)!r}, '/usr/bin/env', {str(Path.cwd() / 'pyproject.toml')!r}):
            try:
                os.remove(path)
            except OSError:
                pass
        def add(a, b):
            return 0
        """
    assert not bwrap.run(check(program)).passed
    assert victim.read_text() == "keep me"
    assert Path("/usr/bin/env").exists() and (Path.cwd() / "pyproject.toml").exists()


@needs_bwrap
def test_nothing_of_the_host_is_visible(bwrap, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox-secret")
    # Each of these passes only if the program cannot see the secret or the host's files.
    program = f"""
        import os
        def add(a, b):
            return [os.environ.get('OPENAI_API_KEY'), os.path.exists({str(Path.cwd())!r}),
                    os.path.exists('/home'), os.path.exists('/etc/passwd'), os.getuid() == 0, sum(p.isdigit() for p in os.listdir('/proc')) > 5]
        """
    verdict = bwrap.run(check(program, "assert add(0, 0) == [None, False, False, False, False, False]"))
    assert verdict.passed, verdict.detail


@needs_bwrap
def test_no_network(bwrap):
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        server.settimeout(5)
        try:
            connection, _ = server.accept()
            received.append(connection.recv(100))
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    program = f"""
        import socket
        def add(a, b):
            try:
                socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')
                return 'connected'
            except OSError:
                return 'refused'
        """
    verdict = bwrap.run(check(program, "assert add(0, 0) == 'refused'"))
    server.close()
    thread.join()
    assert verdict.passed and received == []


@needs_bwrap
def test_killing_the_parent_and_everything(bwrap):
    for program in ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
                    "import os, signal\nos.kill(-1, signal.SIGKILL)\n"):
        assert not bwrap.run(check(program)).passed
    assert bwrap.run(check(GOOD)).passed  # and this process lives on to say so


@pytest.mark.parametrize("mode", ["bwrap", "rlimits"])
def test_detached_child_does_not_outlive_the_run(mode, request):
    sandbox = request.getfixturevalue("bwrap" if mode == "bwrap" else "fallback")
    token = f"{time.time_ns() % 10**6}.{uuid.uuid4().int % 10**6}"
    program = f"""
        import subprocess, os
        subprocess.Popen(['sleep', '3{token}'], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            os.execvp('sleep', ['sleep', '4{token}'])
        def add(a, b):
            return 0
        """
    assert not sandbox.run(check(program)).passed
    deadline = time.monotonic() + 5
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    if mode == "rlimits" and processes_with(token):
        pytest.fail("the fallback left a detached child running")
    assert processes_with(token) == []


def test_the_sweep_waits_for_a_process_caught_mid_exec():
    """A process in the middle of execve shows an empty environment for a moment (CI once lost
    a detached child to that window): here one shows none for 0.4 s, then execs with the marker."""
    import subprocess
    import sys

    from persuasion_gym.sandbox.isolation import kill_marked, start_ticks

    token, marker = f"{uuid.uuid4().int % 10**9}", uuid.uuid4().hex
    exec_later = (f"import os, time; time.sleep(0.4); os.execve('/bin/sleep', ['sleep', '5{token}'], "
                  f"{{'PERSUASION_GYM_SANDBOX_RUN': '{marker}'}})")
    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", exec_later], env={})
    try:
        assert kill_marked(marker, start_ticks(child.pid)) == 1
        assert child.wait(timeout=5) == -9 and processes_with(token) == []
    finally:
        child.kill()


@needs_bwrap
def test_parallel_runs_keep_order_and_isolation(bwrap):
    checks = [check(GOOD), check(HOSTILE["fork bomb"]), check(GOOD), check(HOSTILE["infinite loop"]),
              check("def add(a, b):\n    return a - b\n"), check(GOOD)]
    statuses = [v.status for v in bwrap.run_many(checks)]
    assert statuses[0] == statuses[2] == statuses[5] == "passed"
    assert statuses[3] == "timeout" and statuses[4] == "failed" and statuses[1] != "passed"


def test_isolation_choice_errors():
    with pytest.raises(ConfigError, match="use 'auto', 'bwrap' or 'rlimits'"):
        detect("docker")  # type: ignore[arg-type]
    if not HAS_BWRAP:
        with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
            detect("bwrap")


@needs_bwrap
def test_auto_prefers_bubblewrap():
    assert detect("auto").name == "bubblewrap"


def test_plain_values_only():
    import collections
    import decimal
    import pickle

    assert loads_plain(pickle.dumps([1, (2.5, "x"), {3: {4, 5}}, frozenset({b"y"}), None, True, 1j])) == \
        [1, (2.5, "x"), {3: {4, 5}}, frozenset({b"y"}), None, True, 1j]
    for forbidden in (collections.Counter("ab"), range(3), decimal.Decimal(1), threading.Lock):
        try:
            data = pickle.dumps(forbidden)
        except TypeError:
            continue
        with pytest.raises(RefusedValue):
            loads_plain(data)
    with pytest.raises(RefusedValue, match="undecodable"):
        loads_plain(b"\x80\x05garbage")
    shared = [0]
    for _ in range(30):
        shared = [shared, shared]
    with pytest.raises(RefusedValue, match="more than"):
        check_tree(shared, 10_000_000)
    assert check_tree([[1, 2], [3]], 100) == 6  # 3 lists and 3 numbers
