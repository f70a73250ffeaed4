"""The whole online experiment on the embedded default: the generated shop's users, with
their hidden tastes, request lists from the real MLServer service and click and buy through
the real collector; the analysis must find the variant that is truly better (by the
simulator's own click model) and `conclude` must promote it. A share of the traffic is
anonymous visitors, answered from their live session by each arm's own session model."""
import json
import uuid

import pytest

from recsys.cli.main import main
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from tests.factories import register_trained

pytestmark = pytest.mark.integration
EVENTS, SEED = 60_000, 3


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A shop whose champion is plain popularity with the default session model (rules)
    and whose challenger is EASE with STAN, both fitted with the window's sessions."""
    from recsys.cli.experiment_challenger import challenger_config, train_challenger
    from recsys.components.train.train import log_trained, training_sessions
    from recsys.core.data.lake import Lake
    from recsys.core.lifecycle.gate import Decision
    from recsys.core.lifecycle.registry import register_with_decision
    from tests.factories import published_shop

    state = tmp_path_factory.mktemp("simulation") / "state"
    settings, processed = published_shop(state, EVENTS, SEED)
    Lake(settings.lake)  # created
    name = settings.registered_model_name
    champion = register_trained(settings.tracking_uri, name, processed.train, "popularity",
                                sessions=training_sessions(processed))
    trained = train_challenger(processed, challenger_config("ease", {}, "stan"))
    run_id, model_uri = log_trained(trained, settings.tracking_uri, f"{name}-tests",
                                    {"rows": len(processed.train)}).logged_run()
    challenger = register_with_decision(client_for(settings.tracking_uri), name, model_uri,
                                        run_id, Decision(True, ["test"]), {}, {},
                                        compared_with=champion)
    return {"state": state, "settings": settings, "champion": champion,
            "challenger": challenger}


def test_the_truly_better_variant_wins_and_is_promoted(shop, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(shop["state"]))
    monkeypatch.setenv("RECSYS_REDIS_URL", "redis://127.0.0.1:6379/13")
    monkeypatch.setenv("RECSYS_EVENT_STREAM", f"sim:{uuid.uuid4().hex[:8]}")
    out = tmp_path / "report"
    # production (a) against the challenger (b): popularity within the session's category,
    # the seeds' control, fits this shop's category-driven tastes about as well as EASE
    assert main(["experiment", "simulate", "e2e", "--variants", "a=champion:50,b=challenger:50",
                 "--days", "7", "--requests-per-day", "1000", "--guardrail", "conversion:0.1",
                 "--minimum-users", "300", "--visitor-share", "0.1", "--events", str(EVENTS),
                 "--seed", str(SEED), "--out", str(out), "--allow-volatile-bus"]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    # nothing lost on the way: every list served is an exposure, every event in the lake
    assert result["failed_requests"] == 0 and result["events_refused"] == 0
    assert summary["data"]["exposure_rows"] == result["requests"] == 7000
    assert result["events_in_lake"] == result["events_sent"] > 0
    assert summary["srm"]["flagged"] is False
    # the simulator's own click model says b (EASE) fits tastes best; the analysis agrees
    assert result["truly_best_variant"] == "b"
    assert result["expected_ctr"]["b"] > 1.1 * result["expected_ctr"]["a"]
    assert summary["verdict"] == "winner" and summary["winner"] == "b"
    observed_ctr = {v: s["clicked"] / s["lists"] for v, s in result["observed"].items()}
    assert summary["variants"]["b"]["ctr"] == pytest.approx(observed_ctr["b"], abs=0.01)
    # anonymous visitors: each arm answered them from their live session with its own
    # session model, and their lists are among the exposures analysed
    assert result["session_scorers"] == {"a": "session_model:sequential_rules",
                                         "b": "session_model:stan"}
    assert result["visitors_without_session"] == 0
    for label, scorer in result["session_scorers"].items():
        visitors = result["visitors"][label]
        assert 0.05 < visitors["lists"] / result["observed"][label]["lists"] < 0.15
        assert visitors["paths"].get("session", 0) >= 0.95 * visitors["lists"]
        assert visitors["scorers"].get(scorer, 0) >= 0.95 * visitors["lists"]
    # and conclude promoted it through the registry's audited move
    assert result["promoted_version"] == shop["challenger"]
    client = client_for(shop["settings"].tracking_uri)
    names = aliases(client, shop["settings"].registered_model_name)
    assert (names["champion"], names["previous"]) == (shop["challenger"], shop["champion"])
    assert "<svg" in (out / "report.html").read_text()
