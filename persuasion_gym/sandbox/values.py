"""Decoding what a sandboxed program sends back: plain values only.

Everything from the sandbox is a pickle, decoded by an unpickler that refuses every class
reference except ``complex``: what comes out is built of None, bool, int, float, complex, str,
bytes, tuple, list, dict, set and frozenset, so no object of the program's own (one whose
``__eq__`` always says True, say) can reach the tests. A size guard refuses cycles and values
whose tree would take too long to compare (a small pickle can share sub-lists exponentially).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

ALLOWED = {("builtins", "complex"): complex}
CONTAINERS = (list, tuple, dict, set, frozenset)


class RefusedValue(Exception):
    """The sandbox sent something other than a plain value."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedValue(f"a {module}.{name} object (only plain values may leave the sandbox)") from None


def loads_plain(data: bytes, max_nodes: int = 10_000_000) -> Any:
    """Decode a pickle of plain values; raise ``RefusedValue`` for anything else."""
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except RefusedValue:
        raise
    except Exception as exc:  # a malformed or truncated frame
        raise RefusedValue(f"an undecodable frame ({type(exc).__name__})") from None
    check_tree(value, max_nodes)
    return value


def _children(value: Any):
    return (*value.keys(), *value.values()) if isinstance(value, dict) else value


def check_tree(root: Any, max_nodes: int) -> int:
    """The number of nodes ``root`` has as a tree (shared parts counted each time they
    appear); ``RefusedValue`` for a cycle or more than ``max_nodes``. Iterative: no recursion
    limit on deep nesting."""
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        value, finished = stack.pop()
        if not isinstance(value, CONTAINERS):
            continue
        key = id(value)
        if finished:
            open_ids.discard(key)
            total = 1 + sum(sizes.get(id(child), 1) for child in _children(value))
            if total > max_nodes:
                raise RefusedValue(f"a value of more than {max_nodes} nodes")
            sizes[key] = total
        elif key in open_ids:
            raise RefusedValue("a value that contains itself")
        elif key not in sizes:
            open_ids.add(key)
            stack.append((value, True))
            stack.extend((child, False) for child in _children(value))
    return sizes.get(id(root), 1)
