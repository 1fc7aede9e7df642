"""Extracting and comparing final answers to MATH problems (LaTeX expressions).

Two answers match when their normalised strings are equal (the Hendrycks et al. rules,
extended: units, ``x =``, thousands separators, ``\\left``/``\\right``, ``\\dfrac``), or else
when math-verify finds them symbolically equal. String rules alone miss equivalent forms a
Receiver may legitimately write, such as ``\\frac{\\sqrt2}{2}`` for ``\\frac{1}{\\sqrt2}`` or
``0.5`` for ``\\frac12``; math-verify parses both sides to SymPy and compares values, sets,
intervals and tuples. Without math-verify installed, only the string rules apply.

math-verify interrupts slow comparisons with ``signal.alarm``, which raises ValueError in any
thread but the main one. So the main thread keeps its timeouts, other threads pass None (no
alarm), and in every thread answers holding numbers beyond about 2^1100 (``2^{2^{100}}``,
``(10^{100})!``, on which SymPy computes for minutes to forever, holding the GIL) are compared
as strings only.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import threading
from typing import Any

# Seconds math-verify may spend parsing or comparing, in the main thread only (see above).
_TIMEOUT_SECONDS = 5
# Numbers above 2**_MAX_BITS are compared as strings only: SymPy's simplify takes 1 s on
# 2^{2^{10}} = 2^{1024} but gives up only after minutes on 2^{2^{13}} = 2^{8192}.
_MAX_BITS = 1100

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_ANSWER_PHRASE = re.compile(r"(?:final answer|the answer)\s*(?:is|:)[ \t:]*(?P<answer>[^\n]+)", re.IGNORECASE)
_UNIT_WORDS = (
    r"(?:square\s+|sq\.?\s+|cubic\s+)?(?:units?|cm|centimeters?|mm|millimeters?|km|kilometers?|"
    r"meters?|inch(?:es)?|feet|foot|ft|yards?|miles?|mph|degrees?|radians?|cents?|dollars?|"
    r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|pounds?|ounces?|grams?|kg|liters?)"
)
_POWER = r"(?:\^\s*\{?\s*[23]\s*\}?)?"  # cm^2, \text{ m}^3
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}).a-zA-Z])\s*\b{_UNIT_WORDS}{_POWER}\.?$")
_TEXT_UNIT = re.compile(rf"(?<=\S)\s*\\(?:text|textrm|mbox|mathrm)\s*\{{[^{{}}]*\}}\s*{_POWER}$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textrm|textbf|mbox|mathrm|mathbf)\s*\{([^{}]*)\}")
_ASSIGNMENT = re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=\s*(?=[^=]+$)")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:(?:,|\{,\})\d{3})+(?:\.\d+)?$")


def _braced(text: str, start: int) -> str | None:
    """The content of the brace group opening at ``text[start] == "{"``."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1 : index]
    return None  # unbalanced: a truncated response


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` (nested braces balanced), or of
    ``\\boxed x`` up to the next ``$`` or whitespace; None when there is no closed box."""
    for match in reversed(list(_BOX.finditer(text))):
        rest = text[match.end() :]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            content = _braced(rest, len(rest) - len(stripped))
            if content is not None:
                return content.strip()
        elif stripped and rest[:1].isspace():
            return re.split(r"[\s$]", stripped, maxsplit=1)[0]
    return None


def extract_math_answer(response: str) -> str | None:
    """The final answer of a response: the last box, else the text after the last "final answer
    is"/"The answer is" (to the end of its line, without a trailing period or ``$...$``)."""
    boxed = extract_boxed(response)
    if boxed is not None:
        return boxed
    phrases = list(_ANSWER_PHRASE.finditer(response))
    if not phrases:
        return None
    answer = phrases[-1].group("answer").strip().strip("*").rstrip(".").strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(left) and answer.endswith(right) and len(answer) > len(left) + len(right):
            answer = answer[len(left) : -len(right)].strip()
            break
    return answer.strip() or None


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac{a}2`` -> ``\\frac{a}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``."""
    s = re.sub(r"\\frac\s*([^{\s\\])", r"\\frac{\1}", s)
    s = re.sub(r"(\\frac\{(?:[^{}]|\{[^{}]*\})*\})\s*([^{\s\\])", r"\1{\2}", s)
    return re.sub(r"\\sqrt\s*([^{\s\\[])", r"\\sqrt{\1}", s)


def normalize_answer(s: str) -> str:
    """A canonical string for a LaTeX answer: spacing, ``\\left``/``\\right``, ``\\dfrac``,
    units, ``^\\circ``, a leading ``x =``, ``\\$``, ``\\%``, thousands separators and decimal
    forms removed or unified, so that equal answers written differently compare equal."""
    s = s.strip().replace("\n", " ")
    s = re.sub(r"\\[$%]|%", "", s)  # before "$" is dropped, so that "\$" leaves no backslash
    s = re.sub(r"\\(?:left|right)(?![a-zA-Z])|(?<!\\)\\[!,;: ]|\$|~", " ", s)
    s = re.sub(r"\\[dt]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree", "", s)
    s = s.strip().rstrip(".").strip()
    s = _TEXT_UNIT.sub("", s)
    s = _TEXT_WRAPPER.sub(r"\1", s).strip()
    s = _TRAILING_UNIT.sub("", s)
    s = _ASSIGNMENT.sub("", s)
    if _THOUSANDS.match(s):  # "1,000" is a number; "1, 2" (with a space) and "(1,2)" are not
        s = s.replace("{,}", "").replace(",", "")
    s = _fix_fracs(s)
    # Spaces separate a command from a following letter (\cdot x); elsewhere they are noise.
    s = re.sub(r"(\\[a-zA-Z]+\s)\s*(?=[a-zA-Z])|\s+", lambda m: m.group(1) or "", s)
    s = re.sub(r"^(-?)(\d+)/(\d+)$", r"\1\\frac{\2}{\3}", s)
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)  # .5 -> 0.5
    s = re.sub(r"(\d\.\d*[1-9])0+(?!\d)", r"\1", s)  # 0.50 -> 0.5
    return re.sub(r"(\d)\.0+(?!\d)", r"\1", s)  # 5.0 -> 5


def _log2_bound(expr: Any) -> float:
    """An upper bound on log2 of the magnitude of the numbers in a SymPy expression."""
    import sympy

    if isinstance(expr, sympy.Rational):
        return max(1.0, math.log2(max(abs(expr.p), expr.q)))
    if isinstance(expr, sympy.Float):
        return max(1.0, math.log2(abs(float(expr)) + 1))
    bounds = [_log2_bound(arg) for arg in getattr(expr, "args", ())]
    if isinstance(expr, sympy.Pow) and len(bounds) == 2:
        base, exponent = bounds
        return math.inf if exponent > 64 else base * 2.0**exponent
    if isinstance(expr, (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma, sympy.binomial)):
        n = bounds[0] if bounds else 1.0
        return math.inf if n > 64 else n * 2.0**n
    if isinstance(expr, sympy.Mul):
        return sum(bounds)
    return max(bounds, default=0.0) + (math.log2(len(bounds)) if isinstance(expr, sympy.Add) else 0.0)


def math_verify_version() -> str | None:
    """The math-verify version symbolic comparison uses; None when it is not importable (then
    only the string rules apply). Scores depend on it, so tasks record it in their settings."""
    try:
        import math_verify  # noqa: F401
    except ImportError:
        return None
    try:
        return importlib.metadata.version("math-verify")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"  # importable but not installed as a distribution (a vendored copy)


def _symbolically_equal(answer: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except ImportError:
        return False
    main = threading.current_thread() is threading.main_thread()
    timeout = _TIMEOUT_SECONDS if main else None  # signal.alarm raises outside the main thread
    try:
        parsed_gold = parse(f"${gold}$", parsing_timeout=timeout)
        parsed_answer = parse(f"${answer}$", parsing_timeout=timeout)
        if not parsed_gold or not parsed_answer:
            return False
        if any(_log2_bound(e) > _MAX_BITS for e in (parsed_gold[0], parsed_answer[0])):
            return False
        return bool(verify(parsed_gold, parsed_answer, timeout_seconds=timeout))
    # Parse errors, RecursionError on deep nesting, and a TimeoutException (a BaseException)
    # should an alarm fire outside math-verify's own handlers.
    except (Exception, TimeoutException):
        return False


def math_answers_match(answer: str | None, gold: str) -> bool:
    """True when ``answer`` equals ``gold`` after normalisation, or math-verify finds the two
    symbolically equal (``gold`` is the reference); False for a None or empty answer."""
    if answer is None:
        return False
    normal_answer, normal_gold = normalize_answer(answer), normalize_answer(gold)
    if not normal_answer or not normal_gold:
        return False
    return normal_answer == normal_gold or _symbolically_equal(normal_answer, normal_gold)
