"""The README stays short, every link in the docs resolves, generated pages are current."""
import re
from pathlib import Path

import pytest

from recsys.benchmarks.docs_pages import PAGES

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HISTORY = re.compile(r"\b(session \d|last session|this session|earlier run|earlier, slower|"
                     r"went from|this round)\b", re.IGNORECASE)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    out = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_resolves(document):
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        assert resolved.exists(), f"{document.name}: broken link {target}"
        if anchor:
            assert anchor in anchors(resolved), f"{document.name}: no heading #{anchor}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_docs_hold_no_development_history(document):
    found = HISTORY.findall(document.read_text())
    assert not found, f"{document.name}: development history belongs in commits: {found}"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_pages_are_current(name):
    current = (ROOT / "docs" / name).read_text()
    assert current == PAGES[name](), f"docs/{name} is out of date: run `make docs`"


def test_every_area_page_is_indexed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"README does not link docs/{page.name}"
