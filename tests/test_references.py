"""Every reference in the code resolves inside the repository.

The design lives in ``docs/architecture.md``; code that points to it names a section,
``docs/architecture.md, "The batched environment contract"`` (the quotes are optional), and that
section must exist. Code never cites documents outside the repository, nor tracker issues by
number: a newcomer with a fresh clone can follow every reference.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGES = ("envs", "agents", "graphs", "bayes", "benchmarks", "tests")
#: Spelled in two pieces so that this file does not match itself.
OUTSIDE_DESIGN = "DESIGN" + ".md"
ISSUE_NUMBER = re.compile(r"\b[Ii]ssue \d+")
REFERENCE = "docs/architecture.md, "


def _files() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for pattern in ("*.py", "*.toml")
        for path in (ROOT / package).rglob(pattern)
        if "__pycache__" not in path.parts
    )


def _headings() -> list[str]:
    """The Markdown headings of docs/architecture.md, outside fenced code."""
    headings, fenced = [], False
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+?)\s*#*\s*$", line)):
            headings.append(match.group(1))
    return headings


def _flowing(text: str) -> str:
    """``text`` with line breaks and the comment markers after them read as one space, so that a
    reference wrapped over two lines of a comment or docstring reads as written."""
    return re.sub(r"\s*\n\s*(?:#:?\s*)?", " ", text)


def _where(path: Path, text: str, index: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


def test_no_reference_leaves_the_repository():
    offenders = []
    for path in _files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(re.escape(OUTSIDE_DESIGN), text):
            offenders.append(f"{_where(path, text, match.start())}: cites {OUTSIDE_DESIGN}")
        for match in ISSUE_NUMBER.finditer(text):
            offenders.append(f"{_where(path, text, match.start())}: cites {match.group(0)!r}")
    assert not offenders, (
        "code must not cite documents outside the repository or issues by number; point to the "
        "section of docs/architecture.md that holds the contract "
        '(docs/architecture.md, "Section heading") or state the fact itself:\n'
        + "\n".join(offenders)
    )


def test_references_to_the_architecture_name_existing_sections():
    headings = _headings()
    assert headings, f"{ARCHITECTURE} has no headings"
    offenders = []
    for path in _files():
        if path == Path(__file__).resolve():  # its examples of bad references are on purpose
            continue
        raw = path.read_text(encoding="utf-8")
        flowing = _flowing(raw)
        # The n-th reference of the flowing text is the n-th of the raw text: its line number.
        starts = [m.start() for m in re.finditer(re.escape(REFERENCE.rstrip()), raw)]
        for number, match in enumerate(re.finditer(re.escape(REFERENCE), flowing)):
            rest = flowing[match.end() :]
            if not any(rest.lstrip("\"'`").startswith(heading) for heading in headings):
                where = _where(path, raw, starts[number]) if number < len(starts) else path.name
                offenders.append(f"{where}: {REFERENCE}{rest[:50]!r}...")
    assert not offenders, (
        "these references name no heading of docs/architecture.md (write "
        '`docs/architecture.md, "<heading>"` with a heading exactly as written there):\n'
        + "\n".join(offenders)
        + "\nheadings: "
        + "; ".join(headings)
    )


def test_the_check_reads_wrapped_and_quoted_references():
    text = '# see docs/architecture.md, "Graph\n#     observations" for the form\n'
    assert _flowing(text).count(REFERENCE + '"Graph observations"') == 1
    assert "Graph observations" in _headings()
