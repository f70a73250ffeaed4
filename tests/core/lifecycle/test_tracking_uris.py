"""Which MLflow store the project talks to: its own RECSYS_MLFLOW_TRACKING_URI, else MLflow's
standard MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI, else the SQLite file in the state
directory."""
import os

import mlflow
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.core.lifecycle.tracking import client_for, registry_uri_for
from recsys.core.settings import Settings

OURS, THEIRS, REGISTRY = "http://ours:5000", "http://theirs:5000", "databricks-uc"
VARIABLES = ("RECSYS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """No MLflow variable set, the state directory in tmp_path; restores the fluent URIs."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield monkeypatch
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    for name in VARIABLES[1:]:  # MLflow wrote them; monkeypatch restores what was there
        os.environ.pop(name, None)


def uris(tracking_uri: str) -> tuple[str, str, str, str]:
    """(client tracking, client registry, fluent tracking, fluent registry) of client_for."""
    client = client_for(tracking_uri)
    return (client.tracking_uri, client._registry_uri, mlflow.get_tracking_uri(),
            mlflow.get_registry_uri())


def test_nothing_set_is_the_sqlite_file_for_both(environment, tmp_path):
    default = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert Settings().tracking_uri == default
    assert uris(Settings().tracking_uri) == (default,) * 4


def test_mlflow_variables_are_honoured_when_the_project_setting_is_unset(environment):
    environment.setenv("MLFLOW_TRACKING_URI", THEIRS)
    assert Settings().tracking_uri == THEIRS
    assert uris(Settings().tracking_uri) == (THEIRS,) * 4  # the registry follows tracking

    environment.setenv("MLFLOW_REGISTRY_URI", REGISTRY)
    assert uris(Settings().tracking_uri) == (THEIRS, REGISTRY, THEIRS, REGISTRY)


def test_the_project_setting_wins_over_both_mlflow_variables(environment):
    environment.setenv("MLFLOW_TRACKING_URI", THEIRS)
    environment.setenv("MLFLOW_REGISTRY_URI", REGISTRY)
    environment.setenv("RECSYS_MLFLOW_TRACKING_URI", OURS)
    assert Settings().tracking_uri == OURS
    assert uris(Settings().tracking_uri) == (OURS,) * 4


def test_only_a_registry_variable_moves_the_registry_off_the_default_file(environment,
                                                                          tmp_path):
    environment.setenv("MLFLOW_REGISTRY_URI", REGISTRY)
    default = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert uris(Settings().tracking_uri) == (default, REGISTRY, default, REGISTRY)


def test_the_store_used_last_does_not_become_the_next_default(environment, tmp_path):
    """MLflow writes the URIs it is given into MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI;
    they would then read as the user's choice for every later store of the process."""
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    assert uris(first) == (first,) * 4
    assert not {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"} & set(os.environ)
    assert Settings().tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert uris(second) == (second,) * 4

    environment.setenv("MLFLOW_REGISTRY_URI", REGISTRY)  # what the user set stays set
    assert uris(first) == (first, REGISTRY, first, REGISTRY)
    assert os.environ["MLFLOW_REGISTRY_URI"] == REGISTRY
    assert "MLFLOW_TRACKING_URI" not in os.environ


uri = st.one_of(st.none(), st.just(""), st.text(
    st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20))


@given(ours=uri, theirs_registry=uri, tracking=st.text(min_size=1, max_size=20))
def test_the_registry_is_mlflows_only_without_the_project_setting(ours, theirs_registry,
                                                                  tracking):
    environ = {name: value for name, value in zip(
        ("RECSYS_MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"), (ours, theirs_registry))
        if value is not None}
    expected = theirs_registry if theirs_registry and not ours else tracking
    assert registry_uri_for(tracking, environ) == expected
