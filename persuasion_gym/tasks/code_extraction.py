"""Finding the program in a chat response: fenced blocks, a whole function or only its body,
prose around it, several blocks.

``extract_program`` returns the source to run: the item's ``stub`` (HumanEval: the prompt,
with its imports, helpers and the signature; MBPP: its setup code) followed by the code the
response contributes. Definitions are kept and top-level statements dropped (example calls,
``print``, ``if __name__ == "__main__":`` demos), so a stray example cannot fail or stall a
correct solution. Later blocks override earlier ones, as Python would.
"""

from __future__ import annotations

import ast
import re
import textwrap

FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
PYTHON_TAGS = {"", "python", "py", "python3", "pycon"}
CODE_START = re.compile(r"(def |async def |class |import |from \S+ import |@)")
KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def code_blocks(response: str) -> list[str]:
    """Python code blocks of a Markdown response (a final unclosed fence counts, for cut-off
    responses); when there are none, the runs of code-looking lines in the prose."""
    blocks = [body for tag, body in FENCE.findall(response) if tag.lower() in PYTHON_TAGS]
    if blocks or "```" in response:
        return blocks
    runs: list[str] = []
    current: list[str] = []
    for line in response.splitlines():
        if CODE_START.match(line) or (current and (not line.strip() or line[:1] in " \t")):
            current.append(line)
        elif current:
            runs.append("\n".join(current))
            current = []
    if current:
        runs.append("\n".join(current))
    return runs


def _definitions(source: str) -> str | None:
    """The imports, definitions and assignments of ``source``, or None if it does not parse."""
    source = textwrap.dedent(source).strip("\n")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    kept = []
    for node in tree.body:
        if isinstance(node, KEPT):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n".join(kept)


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^(async )?def {re.escape(name)}\s*\(", source, re.M) is not None


def _as_body(source: str, stub: str) -> str | None:
    """``source`` as the body of the function ``stub`` ends with, if it compiles as one."""
    body = textwrap.indent(textwrap.dedent(source).strip("\n"), "    ")
    program = stub.rstrip() + "\n" + body + "\n"
    try:
        compile(program, "<program>", "exec")
    except SyntaxError:
        return None
    return program


def extract_program(response: str, entry_point: str, stub: str = "") -> str | None:
    """The program a response gives for ``entry_point`` (see the module docstring), or None
    when it holds no code that defines it or completes ``stub``."""
    blocks = code_blocks(response) or [response]
    definitions = [d for d in map(_definitions, blocks) if d]
    if any(_defines(d, entry_point) for d in definitions):
        return "\n\n".join(([stub.rstrip()] if stub.strip() else []) + definitions) + "\n"
    if stub and _defines(stub, entry_point):
        # A body continuing the stub's signature (the classic HumanEval completion).
        for block in blocks:
            program = _as_body(block, stub)
            if program is not None:
                return program
    return None
