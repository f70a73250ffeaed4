"""An experiment's life on a real registry and lake: started from the CLI, applied by
serving without a restart, analysed, concluded with the winner promoted (or nothing moved
when there is none)."""
import json
import time

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from recsys.cli.main import main
from recsys.core.data.event_store import RAW_ZONE, append_partitioned
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA, conform_events
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from recsys.core.online.request_log import SCHEMA, ZONE
from recsys.core.settings import Settings
from recsys.experiments.store import open_store
from tests.experiments.shop_simulation import simulate
from tests.factories import register_trained, served_champion

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    state = tmp_path_factory.mktemp("experiment-state")
    processed, champion = served_champion(state, events=6_000, seed=5)
    settings = Settings(state_dir=state, lake_uri=str(state / "lake"))
    challenger = register_trained(settings.tracking_uri, settings.registered_model_name,
                                  processed.train, "ease", champion=False)
    return {"state": state, "settings": settings, "champion": champion,
            "challenger": challenger}


@pytest.fixture
def cli(shop, monkeypatch):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(shop["state"]))
    monkeypatch.setenv("RECSYS_REDIS_URL", "redis://127.0.0.1:6379/11")

    def run(*argv) -> int:
        return main(list(argv))
    return run


def write_to_lake(lake: Lake, exposures: pd.DataFrame, events: pd.DataFrame) -> None:
    rows = exposures.assign(endpoint="recommend", model_version="x", path="model",
                            fallback=False, cached=False, k=5, experiment=None,
                            scores=[[1.0] * 5] * len(exposures))
    rows["experiment"] = rows.pop("experiment_name")
    rows["timestamp"] = rows["timestamp"].dt.floor("ms")
    events = events.assign(timestamp=events["timestamp"].dt.floor("ms"))
    table = pa.Table.from_pandas(rows[SCHEMA.names], schema=SCHEMA, preserve_index=False)
    lake.write_table(f"{ZONE}/date={exposures['timestamp'].min().date()}/part-1.parquet",
                     table)
    frame = conform_events(events.assign(session_id="s"), "test")
    append_partitioned(lake, RAW_ZONE, frame, "event_id", RAW_EVENT_SCHEMA)


def test_start_refuses_a_second_one_and_serving_applies_and_drops_it_without_restart(
        shop, cli, capsys):
    from recsys.serving.build import build_service

    service = build_service({"experiment_watch_seconds": 0.5, "log_requests": False,
                             "watch_seconds": 0})
    users = [f"visitor-{i}" for i in range(60)]
    assert {service.recommend(service.parse(u, 3)).variant for u in users} == {None}
    assert cli("experiment", "start", "live-1", "--variants",
               "control=popularity:50,b=challenger:50") == 0
    pinned = json.loads(capsys.readouterr().out)
    assert pinned["variants"][1]["version"] == shop["challenger"]
    assert cli("experiment", "start", "live-2", "--variants",
               "control=popularity:50,b=champion:50") == 2  # one per surface
    deadline = time.monotonic() + 10
    while service.experiments.active is None and time.monotonic() < deadline:
        time.sleep(0.1)
    answers = [service.recommend(service.parse(u, 3)) for u in users]
    assert {a.variant for a in answers} == {"control", "b"}
    assert {a.model_version for a in answers if a.variant == "b"} == {shop["challenger"]}
    assert cli("experiment", "stop", "live-1", "--reason", "test over") == 0
    deadline = time.monotonic() + 10
    while service.experiments.active is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {service.recommend(service.parse(u, 3)).variant for u in users} == {None}
    service.experiments.stop()
    service.source.stop()


def test_a_winner_is_promoted_with_the_analysis_on_its_version(shop, cli, capsys, tmp_path):
    settings = shop["settings"]
    assert cli("experiment", "start", "seeds-ab", "--variants",
               "control=popularity:30,a=champion:35,b=challenger:35",
               "--minimum-users", "400") == 0
    capsys.readouterr()
    store = open_store(settings.tracking_uri, settings.registered_model_name)
    definition, _ = store.get("seeds-ab")
    start = pd.Timestamp(definition.starts_at)
    exposures, events, _ = simulate(definition, 5000, start=start + pd.Timedelta(minutes=1),
                                    ctr={"control": 0.08, "a": 0.10, "b": 0.15},
                                    buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=8, days=2)
    exposures["experiment_name"] = "seeds-ab"
    lake = Lake(settings.lake)
    write_to_lake(lake, exposures, events)
    now = (start + pd.Timedelta(days=3)).isoformat()
    assert cli("experiment", "analyze", "seeds-ab", "--out", str(tmp_path / "look"),
               "--now", now) == 0
    summary = json.loads((tmp_path / "look" / "summary.json").read_text())
    assert summary["winner"] == "b"
    assert summary["variants"]["b"]["users"] == \
        exposures.loc[exposures["variant"] == "b", "user_id"].nunique()
    assert (tmp_path / "look" / "report.html").read_text().count("<svg") == 2
    capsys.readouterr()
    assert cli("experiment", "conclude", "seeds-ab", "--out", str(tmp_path / "final"),
               "--now", now) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["winner"], outcome["promoted_version"]) == ("b", shop["challenger"])
    client = client_for(settings.tracking_uri)
    names = aliases(client, settings.registered_model_name)
    assert names["champion"] == shop["challenger"] and names["previous"] == shop["champion"]
    tags = client.get_model_version(settings.registered_model_name, shop["challenger"]).tags
    assert tags["registry.promoted_by"] == "experiment"
    assert tags["experiment.name"] == "seeds-ab" and tags["experiment.variant"] == "b"
    assert json.loads(tags["experiment.lifts"])["ctr"] > 0.2
    listed = {e["name"]: e for e in store.list()}
    assert listed["seeds-ab"]["status"] == "concluded"
    artifacts = [a.path for a in client.list_artifacts(store.run_id("seeds-ab"), "analysis")]
    assert sorted(artifacts) == ["analysis/report.html", "analysis/summary.json"]


def test_no_winner_changes_nothing(shop, cli, capsys, tmp_path):
    settings = shop["settings"]
    client = client_for(settings.tracking_uri)
    before = aliases(client, settings.registered_model_name)
    assert cli("experiment", "start", "flat", "--variants",
               f"control=champion:50,b={shop['champion']}:50", "--minimum-users", "400") == 0
    store = open_store(settings.tracking_uri, settings.registered_model_name)
    definition, _ = store.get("flat")
    start = pd.Timestamp(definition.starts_at)
    exposures, events, _ = simulate(definition, 3000, start=start + pd.Timedelta(minutes=1),
                                    ctr={"control": 0.1, "b": 0.1},
                                    buy={"control": 0.3, "b": 0.3}, seed=9, days=2)
    exposures["experiment_name"] = "flat"
    write_to_lake(Lake(settings.lake), exposures, events.assign(
        event_id="flat-" + events["event_id"]))
    capsys.readouterr()
    assert cli("experiment", "conclude", "flat", "--out", str(tmp_path),
               "--now", (start + pd.Timedelta(days=3)).isoformat()) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["promoted_version"] is None and outcome["winner"] is None
    assert aliases(client, settings.registered_model_name) == before


def test_an_exported_experiment_is_served_from_its_artifact(shop, cli, capsys, tmp_path):
    """The cluster path: `experiment export` writes one artifact; the runtime serves it
    with the same assignment and without a registry watch."""
    from recsys.experiments.assignment import Assigner
    from recsys.serving.artifact import SETTINGS_FILE, artifact_options
    from recsys.serving.build import build_service

    settings = shop["settings"]
    assert cli("experiment", "start", "export-1", "--variants",
               f"control=popularity:50,b={shop['challenger']}:50") == 0
    definition = json.loads(capsys.readouterr().out)
    out = tmp_path / "artifact"
    manifests = tmp_path / "seldon.yaml"
    assert cli("experiment", "export", "export-1", "--out", str(out), "--arms",
               "--manifests", str(manifests)) == 0
    written = json.loads(capsys.readouterr().out)
    champion = aliases(client_for(settings.tracking_uri),
                       settings.registered_model_name)["champion"]  # (an earlier test moves it)
    assert written["version"] == champion
    assert set(written["variants"]) == {shop["challenger"]}
    # --arms: an artifact per variant, and the Seldon objects that split between them
    assert set(written["arms"]) == {"control", "b"}
    assert set(written["arms"]["b"]["variants"]) == {shop["challenger"]}
    assert written["arms"]["control"]["variants"] == {}  # a strategy: the champion's data
    arm_extra = json.loads((out / "arms" / "b" / SETTINGS_FILE).read_text())["parameters"]
    assert arm_extra["extra"]["experiment_arm"] == "b"
    assert arm_extra["extra"]["experiment_arm_models"] == {
        "control": "recsys-export-1-control", "b": "recsys-export-1-b"}
    assert json.loads((out / "arms" / "b" / SETTINGS_FILE).read_text())["name"] == \
        "recsys-export-1-b"
    objects = list(yaml.safe_load_all(manifests.read_text()))
    assert [o["kind"] for o in objects] == ["Model", "Model", "Experiment"]
    assert [o["spec"]["storageUri"] for o in objects[:2]] == [
        f"{out}/arms/control", f"{out}/arms/b"]
    assert objects[2]["spec"]["candidates"] == [
        {"name": "recsys-export-1-control", "weight": 50},
        {"name": "recsys-export-1-b", "weight": 50}]
    assert cli("experiment", "stop", "export-1", "--reason", "exported") == 0
    extra = json.loads((out / SETTINGS_FILE).read_text())["parameters"]["extra"]
    service = build_service({**artifact_options(extra, str(out / "model")),
                             "log_requests": False})
    users = [f"visitor-{i}" for i in range(60)]
    answers = {u: service.recommend(service.parse(u, 3)) for u in users}
    assigner = Assigner(service.experiments.active.definition)
    assert service.experiments.active.definition.name == definition["name"]
    for user, answer in answers.items():
        assert answer.variant == assigner.assign(user).variant
        if answer.variant == "b":
            assert answer.model_version == shop["challenger"]
    assert {a.variant for a in answers.values()} == {"control", "b"}
    service.source.stop()
