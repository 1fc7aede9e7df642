"""The process that runs untrusted code, inside the sandbox. Standard library only: it runs
under the bare interpreter (``python -I -S``) with no access to the package or its venv.

``argv[1]`` holds the resource limits (``resource=value,...``), set first. It reads frames from
fd 0 and answers on fd 1, then points fds 0-2 at /dev/null so nothing the program prints or
reads touches the channel. Protocol (each frame a 4-byte big-endian length and a pickle):
  runner -> worker: source code;   worker -> runner: ("loaded", [names]) or ("error", type, msg)
  runner -> worker: (name, args, kwargs); worker -> runner: ("return", pickle bytes),
                                          ("raise", type, msg) or ("unpicklable", type)
The runner trusts none of it: it decodes every frame with a restricted unpickler and decides
the verdict itself (see ``runner.py``).
"""

import os
import resource
import struct
import sys

try:  # the C pickler alone: importing ``pickle`` costs a run ~10 ms more (it imports ``re``)
    from _pickle import dumps, loads
except ImportError:
    from pickle import dumps, loads

# ``typing`` imports ``re`` too: its names are for type checkers only, which take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HEADER = struct.Struct(">I")


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def describe(exc: BaseException) -> tuple[str, str, str]:
    try:  # the exception is the program's own object: its __str__ may misbehave
        message = str(exc)[:500]
    except BaseException:
        message = "<unprintable>"
    return ("raise", type(exc).__name__, message)


def main() -> None:
    # Limits first, before any of the program runs; soft = hard so it cannot raise them.
    for pair in sys.argv[1].split(","):
        which, value = map(int, pair.split("="))
        resource.setrlimit(which, (value, value))
    rfd, wfd = os.dup(0), os.dup(1)  # dup'ed fds are not inherited by the program's children
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)

    def send(message: object) -> None:
        write_frame(wfd, dumps(message, protocol=5))

    def receive() -> "Any":
        (size,) = HEADER.unpack(read_exact(rfd, HEADER.size))
        return loads(read_exact(rfd, size))

    source = receive()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "<program>", "exec"), namespace)
    except BaseException as exc:  # SystemExit included: leaving early is a failed load
        send(("error",) + describe(exc)[1:])
        return
    send(("loaded", [name for name, value in namespace.items()
                     if callable(value) and not name.startswith("__")]))
    while True:
        try:
            name, args, kwargs = receive()
        except EOFError:
            return
        try:
            result = namespace[name](*args, **kwargs)
        except BaseException as exc:
            send(describe(exc))
            continue
        try:
            payload = dumps(result, protocol=5)
        except BaseException:
            send(("unpicklable", type(result).__name__))
            continue
        send(("return", payload))


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
