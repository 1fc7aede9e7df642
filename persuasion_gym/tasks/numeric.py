"""Extracting and comparing final numeric answers (GSM8K-style scoring).

Hand-written rather than math-verify: GSM8K answers are plain numbers written in prose
("The answer is $1,234.50."), which needs answer-phrase and number parsing, not LaTeX
equivalence. The priority follows common GSM8K practice: ``#### x``, then ``\\boxed{x}``,
then "the answer is x", then the last number in the text.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(
    # A minus sign is a sign only when it touches the number and follows no operand:
    # "-3", "is -$5", "$-5" are negative; "8-3", "8 - 3", "(4)-3" are subtractions.
    r"(?:(?<![\w)])(?P<sign>[-−])(?=\$?[\d.]))?(?:\$(?P<sign2>[-−])?)?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:\s?/\s?(?P<den>\d+))?"
)
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([-−]?[\d.,]+)\s*\}\s*\{\s*([\d.,]+)\s*\}")
_ANSWER_PHRASE = re.compile(
    r"(?:final answer|answer)\s*(?:is|was|would be|will be|equals|=|:)?\s*[:=]?",
    re.IGNORECASE,
)


def _to_text(match: re.Match) -> str:
    negative = bool(match.group("sign") or match.group("sign2"))
    text = match.group("num").replace(",", "")
    if match.group("den"):
        text = f"{text}/{match.group('den')}"
    return f"-{text}" if negative else text


def _numbers(region: str) -> list[str]:
    return [_to_text(m) for m in _NUMBER.finditer(region)]


def _boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}``, with nested braces balanced."""
    contents = []
    for start in (m.end() for m in re.finditer(r"\\boxed\s*\{", text)):
        depth, end = 1, start
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        contents.append(text[start : end - 1] if depth == 0 else text[start:])
    return contents


def extract_numeric_answer(text: str) -> str | None:
    """The final numeric answer in a response, normalised (``"1234.50"``, ``"-3"``, ``"2/5"``).

    Looks, in order, for ``#### x``, the last ``\\boxed{x}``, the last "answer is x" phrase
    (taking the first number after it, so trailing units and prose are ignored), and finally
    the last number anywhere. Returns None when the text holds no number.
    """
    if "####" in text:
        found = _numbers(text.rsplit("####", 1)[1])
        if found:
            return found[0]
    for content in reversed(_boxed_contents(text)):
        frac = _FRAC.search(content)
        if frac:
            num, den = (part.replace(",", "").replace("−", "-") for part in frac.groups())
            return f"{num}/{den}"
        found = _numbers(content)
        if found:
            return found[0]
    for phrase in reversed(list(_ANSWER_PHRASE.finditer(text))):
        found = _numbers(text[phrase.end() : phrase.end() + 80])
        if found:
            return found[0]
    found = _numbers(text)
    return found[-1] if found else None


def parse_number(text: str | None) -> Fraction | None:
    """A normalised answer string as an exact Fraction (None if it is not a number)."""
    if text is None:
        return None
    cleaned = text.strip().replace(",", "").replace("$", "").replace("−", "-").rstrip(".%")
    try:
        if "/" in cleaned:
            num, den = cleaned.split("/", 1)
            return Fraction(num.strip()) / Fraction(den.strip())
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_match(predicted: str | None, gold: str | None, rel_tol: float = 1e-6) -> bool:
    """True when both parse as numbers and agree (exactly, or to ``rel_tol`` of the gold)."""
    p, g = parse_number(predicted), parse_number(gold)
    if p is None or g is None:
        return False
    return p == g or abs(p - g) <= rel_tol * max(Fraction(1), abs(g))
