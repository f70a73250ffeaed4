"""The wheel installs one top-level name, `recsys`, and ships no tests or benchmarks."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import shipped_folders

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_holds_only_the_recsys_package(tmp_path):
    source = tmp_path / "source"  # a clean copy: no stale build/ of the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv*", ".git", ".recsys", ".*_cache", "build", "*.egg-info", "__pycache__",
        "results", "docs", "data"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("recsys_mlops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(
        (".dist-info", ".data"))}
    assert top_level == {"recsys"}
    subpackages = {name.split("/")[1] for name in names
                   if name.startswith("recsys/") and name.count("/") >= 2}
    assert subpackages == set(shipped_folders())
    assert "recsys/__init__.py" in names
    assert "recsys/py.typed" in names  # PEP 561: type checkers read the package's types
    assert "recsys/feature_repo/feature_store.yaml" in names
    assert "recsys/feature_repo/.feastignore" in names
    assert "recsys/serving/model_repository/recsys/model-settings.json" in names
    assert not [n for n in names if "/tests/" in n or "/benchmarks/" in n or n.endswith(
        "setup.py")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "recsys = recsys.cli.main:main" in zipfile.ZipFile(wheel).read(
        entry_points).decode()

