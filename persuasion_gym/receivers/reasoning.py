"""Where a reasoning model's thinking ends and its answer begins.

Servers return the thinking beside the answer (``reasoning_content`` or ``reasoning``: vLLM and
SGLang with a reasoning parser, DeepSeek's API, llama.cpp), or inline at the start of
``content`` as ``<think>...</think>`` (no parser, some chat templates). Scorers must read the
answer alone: a number or a code block inside the thinking is not what the model answered.
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"\s*<think>", re.IGNORECASE)
_CLOSE = re.compile(r"</think>\s*", re.IGNORECASE)


def split_reasoning(content: str) -> tuple[str, str | None]:
    """``(answer, reasoning)`` of a response's text.

    - ``<think>R</think>A``: the answer is A, the reasoning R.
    - ``<think>R`` never closed (cut off by the token limit while thinking): no answer at all.
    - ``R</think>A`` with no opening tag (templates such as DeepSeek-R1's and Qwen3's put
      ``<think>`` in the prompt): the answer is A.
    - anything else is all answer (reasoning None).
    """
    opened = _OPEN.match(content)
    start = opened.end() if opened else 0
    closed = _CLOSE.search(content, start)
    if closed is None:
        return ("", content[start:].strip()) if opened else (content, None)
    if not opened and "<think>" in content[: closed.start()].lower():
        return content, None  # a tag mid-text (a quoted example), not a leading block
    return content[closed.end():], content[start : closed.start()].strip()
