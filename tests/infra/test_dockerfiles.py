"""Every image that installs the project copies the build context, and the context lets
through exactly the folders the wheel ships (setup.cfg's list): an image missing one fails
at start on an import (the seldon-core v1 image once lacked `experiments/`, which serving
imports), and a folder let through that the wheel does not ship is a package nobody meant
to put in an image."""
import re

import pytest

from tests.conftest import REPO, shipped_folders

INFRA = REPO / "infra"


def installing_dockerfiles() -> list[str]:
    """The Dockerfiles that `pip install` the project from its sources (`... .`)."""
    return sorted(path.name for path in INFRA.glob("Dockerfile*")
                  if re.search(r"pip install [^\n]*\s\.(\s|$)", path.read_text()))


def test_the_installing_dockerfiles_are_found():
    assert installing_dockerfiles() == ["Dockerfile", "Dockerfile.seldon-v1", "Dockerfile.stream"]
    assert "experiments" in shipped_folders() and len(shipped_folders()) == 9


@pytest.mark.parametrize("dockerfile", installing_dockerfiles())
def test_every_installing_image_copies_the_whole_build_context(dockerfile):
    text = (INFRA / dockerfile).read_text()
    assert re.search(r"^COPY \. \./$", text, re.MULTILINE), dockerfile


def test_the_build_context_lets_exactly_the_shipped_folders_through():
    rules = (REPO / ".dockerignore").read_text().splitlines()
    let_through = {rule[1:] for rule in rules if rule.startswith("!")}
    folders = {name for name in let_through if (REPO / name).is_dir()}
    assert folders == set(shipped_folders())
