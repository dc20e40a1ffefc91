"""The docs point only at things that exist: relative links, images, headings, the `docs/*.md`
pages the code cites, and every module in the layout of docs/development.md. README stays small."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 15_000  # the front door; details belong in docs/

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_DOCS_CITE = re.compile(r"\bdocs/[\w.-]+\.md\b")


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def links(text: str) -> list[tuple[int, str]]:
    """Link and image targets written in Markdown or HTML, ignoring code blocks and code spans."""
    found = []
    for n, line in prose_lines(text):
        line = _CODE_SPAN.sub("", line)
        found += [(n, m.group(1)) for m in _LINK.finditer(line)]
        found += [(n, m.group(1)) for m in _HTML_SRC.finditer(line)]
    return found


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a page (lower case, punctuation dropped, spaces
    to hyphens, -1, -2, ... for repeats)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """One message per relative link of `page` whose file, or heading, does not exist."""
    problems = []
    for n, target in links(page.read_text(encoding="utf-8")):
        if _SCHEME.match(target):
            continue  # http(s), mailto: not checked here (no network in tests)
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(root)}:{n}: {target}"
        if root not in dest.parents and dest != root:
            problems.append(f"{where}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{where}: {dest.relative_to(root)} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{where}: {dest.relative_to(root)} has no heading #{anchor}")
    return problems


def layout_modules(page: Path) -> set[str]:
    """The `src/vqcnir/...` paths named in the tree under '## Project layout' (two spaces per level)."""
    text = page.read_text(encoding="utf-8")
    section = text.split("## Project layout", 1)[1]
    tree = section.split("```", 2)[1]
    named, stack = set(), []
    for line in tree.splitlines()[1:]:
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        stack[depth:] = [name.rstrip("/")]
        named.add("/".join(stack))
    return named


def test_every_relative_link_and_image_exists():
    assert {p.name for p in PAGES} >= {"README.md", "MODEL_CARD.md", "evaluation.md"}
    problems = [msg for page in PAGES for msg in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_missing_files_and_headings(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Speed\n\n## The `x` option (fast)\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#speed) [ok too](docs/a.md#the-x-option-fast) [web](https://example.org/x)\n"
        "`[code span](nowhere.md)` is not a link\n"
        "```\n[in a code block](nowhere.md)\n```\n"
        "[gone](docs/b.md) ![picture](docs/p.jpg) [no heading](docs/a.md#training) "
        "[up](../outside.md)\n", encoding="utf-8")
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 4, problems
    assert "docs/b.md does not exist" in problems[0] and "docs/p.jpg does not exist" in problems[1]
    assert "no heading #training" in problems[2] and "outside the repository" in problems[3]


def test_docs_pages_cited_in_the_code_exist():
    cited = {}
    for folder in ("src", "scripts", "benchmarks"):
        for source in (ROOT / folder).rglob("*.py"):
            for name in _DOCS_CITE.findall(source.read_text(encoding="utf-8")):
                cited.setdefault(name, source.relative_to(ROOT))
    assert "docs/evaluation.md" in cited  # vqcnir.metrics points readers there
    missing = {name: str(src) for name, src in cited.items() if not (ROOT / name).is_file()}
    assert not missing, f"cited in the code but not in docs/: {missing}"


def test_the_layout_names_every_module():
    named = layout_modules(ROOT / "docs" / "development.md")
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "src" / "vqcnir").rglob("*.py")}
    unnamed = sorted(modules - named)
    assert not unnamed, f"docs/development.md, 'Project layout': add a line for each of {unnamed}"
    stale = sorted(p for p in named if p.startswith("src/vqcnir/") and not (ROOT / p).exists())
    assert not stale, f"docs/development.md, 'Project layout' names files that do not exist: {stale}"


@pytest.mark.parametrize("text, expected", [
    ("## Restore speed\n## Restore speed\n", {"restore-speed", "restore-speed-1"}),
    ("### 1. Sharp photos (works offline)\n", {"1-sharp-photos-works-offline"}),
    ("```\n# not a heading\n```\n# Licence and citation\n", {"licence-and-citation"}),
])
def test_heading_anchors_follow_github(text, expected):
    assert heading_anchors(text) == expected


def test_readme_stays_small():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move details into docs/"
