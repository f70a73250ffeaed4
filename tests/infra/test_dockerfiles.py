"""Every image that installs the project copies every package the wheel ships (setup.py's
list), and the build context lets each one through: an image missing one fails at start on
an import (the seldon-core v1 image once lacked `experiments/`, which serving imports)."""
import ast
import re

import pytest

from tests.conftest import REPO

INFRA = REPO / "infra"


def shipped_packages() -> list[str]:
    """setup.py's SHIPPED list, read without running setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    assignment = next(node for node in tree.body if isinstance(node, ast.Assign)
                      and [t.id for t in node.targets] == ["SHIPPED"])
    return ast.literal_eval(assignment.value)


def installing_dockerfiles() -> list[str]:
    """The Dockerfiles that `pip install` the project from its sources (`... .`)."""
    return sorted(path.name for path in INFRA.glob("Dockerfile*")
                  if re.search(r"pip install [^\n]*\s\.(\s|$)", path.read_text()))


def copied(dockerfile: str) -> set[str]:
    text = (INFRA / dockerfile).read_text()
    return {match.rstrip("/") for match in re.findall(r"^COPY (\S+) \./\S*$", text, re.MULTILINE)}


def test_the_installing_dockerfiles_are_found():
    assert installing_dockerfiles() == ["Dockerfile", "Dockerfile.seldon-v1"]
    assert "experiments" in shipped_packages() and len(shipped_packages()) == 9


@pytest.mark.parametrize("dockerfile", installing_dockerfiles())
def test_every_shipped_package_is_copied(dockerfile):
    missing = [name for name in shipped_packages() if name not in copied(dockerfile)]
    assert missing == [], f"{dockerfile} does not copy {missing}"


def test_the_build_context_lets_every_shipped_package_through():
    rules = (REPO / ".dockerignore").read_text().splitlines()
    missing = [name for name in shipped_packages() if f"!{name}" not in rules]
    assert missing == []
