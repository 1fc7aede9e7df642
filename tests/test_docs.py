"""The documentation the code cites is in the repository: every ``docs/NAME.md`` (and
``#section``) that a docstring, a comment or the README names exists, and nothing cites the
team's notes outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("persuasion_gym", "agents", "persuasion_verifiers", "examples", "benchmarks")
CITATION = re.compile(r"docs/([A-Za-z0-9_]+\.md)(?:#([A-Za-z0-9_-]+))?")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _citing_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))]
    for folder in SOURCES:
        files += sorted(p for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.is_file()]


def test_every_cited_page_and_section_exists():
    cited = 0
    for path in _citing_files():
        for name, anchor in CITATION.findall(path.read_text()):
            page = REPO / "docs" / name
            assert page.is_file(), f"{path.relative_to(REPO)} cites docs/{name}, which does not exist"
            if anchor:
                assert anchor in _anchors(page), f"{path.relative_to(REPO)} cites docs/{name}#{anchor}: no such section"
            cited += 1
    assert cited > 0


def test_nothing_cites_notes_outside_the_repository():
    for path in _citing_files():
        text = path.read_text()
        assert "shared/design" not in text, f"{path.relative_to(REPO)} cites shared/design"
        if path.suffix == ".py":  # a docstring names the page with its folder: docs/protocols.md
            for match in re.finditer(r"(?<![/\w])(protocols|text_signals)\.md", text):
                raise AssertionError(f"{path.relative_to(REPO)} cites {match.group(0)} without docs/")


def test_the_sdist_ships_the_docs():
    assert "include docs/*.md" in (REPO / "MANIFEST.in").read_text()
