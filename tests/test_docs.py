"""The README stays short, every link in the docs resolves, generated pages are current."""
import re
from pathlib import Path

import pytest

from recsys.tools.docs_pages import PAGES

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


MATRICES = {"security.md": "## Attack matrix", "testing.md": "## Fault matrix"}
NODE_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?")


def matrix_rows(page: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of every table under `heading`, up to the next `## `."""
    text = (ROOT / "docs" / page).read_text()
    assert heading in text, f"docs/{page} has no {heading!r} section"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows, table = [], []
    for line in [*section.splitlines(), ""]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        else:
            rows.extend(table[2:])  # after the header and the separator
            table = []
    return rows


@pytest.mark.parametrize("page", sorted(MATRICES))
def test_every_matrix_cell_names_a_test_that_exists(page):
    rows = matrix_rows(page, MATRICES[page])
    assert rows, f"docs/{page}: the matrix has no rows"
    for cells in rows:
        named = NODE_ID.findall(cells[-1])
        assert named or cells[-1] in ("n/a", "no test"), \
            f"docs/{page}: a row names no test and does not say n/a or no test: {cells}"
        for path, name in named:
            source = ROOT / path
            assert source.is_file(), f"docs/{page}: {path} does not exist"
            defined = re.search(rf"^\s*def {name}\(", source.read_text(), re.MULTILINE)
            assert defined is not None, f"docs/{page}: {path} defines no {name}"
