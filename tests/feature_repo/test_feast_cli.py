"""feature_repo/ is a Feast repository Feast's own CLI can plan and apply."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from feast import FeatureStore

from recsys.core.errors import ConfigError
from recsys.feature_repo.features.definitions import feature_definitions
from recsys.feature_repo.features.feast_adapter import WRITTEN_FOR, check_feast_version

REPO_DIR = Path(__file__).resolve().parents[2] / "feature_repo"
FEAST = Path(sys.executable).with_name("feast")


def test_the_folder_has_feasts_template_shape_and_feast_imports_only_its_entry():
    ignored = {line.strip() for line in (REPO_DIR / ".feastignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    # as `feast init` lays it out: the profiles and one module of objects at the top...
    assert {p.name for p in REPO_DIR.glob("*.py")} == {"__init__.py", "feast_repo.py"}
    assert (REPO_DIR / "feature_store.yaml").is_file()
    # ...the library recsys imports itself in a sub-package Feast's CLI does not import
    assert (REPO_DIR / "features" / "store.py").is_file() and "features/" in ignored


@pytest.mark.slow
def test_feast_cli_plans_and_applies_the_repository(tmp_path):
    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO_DIR, repo, ignore=shutil.ignore_patterns("__pycache__", "data"))
    env = {"PATH": str(FEAST.parent), "RECSYS_STATE_DIR": str(tmp_path / "state"),
           "HOME": str(tmp_path)}
    plan = subprocess.run([str(FEAST), "plan"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert "Created feature view user_session" in plan.stdout
    apply = subprocess.run([str(FEAST), "apply"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=300)
    assert apply.returncode == 0, apply.stderr
    assert (repo / "data" / "registry.db").exists() and (repo / "data" / "online.db").exists()

    store = FeatureStore(repo_path=str(repo))
    expected = feature_definitions(tmp_path / "state" / "lake" / "features")
    assert {v.name for v in store.list_feature_views()} == {
        expected.user_stats.name, expected.item_stats.name, expected.user_session.name}
    assert [v.name for v in store.list_on_demand_feature_views()] == [expected.price_fit.name]
    assert {s.name for s in store.list_feature_services()} == {"recommender_v1", "training_v1"}
    assert {e.name for e in store.list_entities()} == {"user", "item"}
    source = store.get_feature_view("item_stats").batch_source
    assert source.path == str(tmp_path / "state" / "lake" / "features" / "item_stats")


def test_adapter_refuses_a_feast_release_it_was_not_checked_against():
    check_feast_version(f"{WRITTEN_FOR}.7")
    with pytest.raises(ConfigError, match=f"written for feast {WRITTEN_FOR}"):
        check_feast_version("0.64.0")
