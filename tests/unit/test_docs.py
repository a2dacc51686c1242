"""The README and docs/: every relative link leads somewhere, and the README stays a front page."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](target) and ![alt](target), with an optional "title"; and reference definitions, [label]: target.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
ABSOLUTE = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, code spans blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as rendered, lowercased, punctuation but - and _ dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower()
    text = "".join(char for char in text if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = not fenced and HEADING.match(line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    links = []
    for line in prose_lines(path.read_text()):
        links += INLINE_LINK.findall(line)
        reference = REFERENCE.match(line)
        if reference:
            links.append(reference.group(1))
    return [link for link in links if not ABSOLUTE.match(link)]


def test_the_slug_rules():
    assert slug("The session cache: revocable tokens at the speed of a signature check") == (
        "the-session-cache-revocable-tokens-at-the-speed-of-a-signature-check"
    )
    assert slug("The API document and /docs") == "the-api-document-and-docs"
    assert slug("Deploying (Heroku or any host that reads a Procfile)") == (
        "deploying-heroku-or-any-host-that-reads-a-procfile"
    )
    assert slug("`POST /token`, with_underscores") == "post-token-with_underscores"


def test_the_link_finder():
    page = ['[a](a.md) and ![b](img/b.png "title") and [c](https://example.com) and `[d](d.md)`', "```", "[e](e.md)"]
    found = []
    for line in prose_lines("\n".join(page)):
        found += INLINE_LINK.findall(line)
    assert found == ["a.md", "img/b.png", "https://example.com"]


def test_there_are_pages_and_links():
    assert len(PAGES) > 10
    assert sum(len(relative_links(page)) for page in PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / unquote(target)).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and path.suffix == ".md" and unquote(anchor) not in anchors(path):
            broken.append(f"{link}: no such heading in {path.relative_to(ROOT)}")
        elif ROOT not in path.parents and path != ROOT:
            broken.append(f"{link}: outside the repository")
    assert not broken, broken


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move the detail into docs/"
    for page in PAGES[1:]:
        if page.parent == ROOT / "docs":
            # Every page of docs/ is reachable from the front page.
            assert f"(docs/{page.name})" in "\n".join(lines), f"README.md does not link to docs/{page.name}"
