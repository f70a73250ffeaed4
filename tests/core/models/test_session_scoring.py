"""A recommender's next-item session model: learned from the training window's sessions over
the recommender's catalogue, saved inside its folder under one digest, and what both serving
and the offline protocol score a live session with."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.evaluate.sessions import next_item_metrics
from recsys.core.errors import ConfigError
from recsys.core.models.session_rules import fit_session_rules
from recsys.core.models.session_scoring import (
    catalogue_sessions,
    fit_session_model,
    scorer_of,
    session_affinity,
    session_candidates,
    session_model_of,
    session_top,
)
from recsys.core.models.session_zoo import build_session_model
from recsys.core.models.storage import (
    ModelIntegrityError,
    files_sha256,
    load_model,
    save_model,
)
from recsys.core.models.zoo import build_model

START = pd.Timestamp("2026-11-01T10:00:00Z")
# visitors who saw a then b went on to c (three times) or d (once); e leads to f
TRAIN = {"s2": ["a", "b", "c"], "s1": ["a", "b", "c"], "s3": ["a", "b", "c"],
         "s4": ["a", "b", "d"], "s5": ["e", "f"], "anonymous:9": ["e", "f", "zz-not-sold"]}


def events_of(sessions: dict[str, list[str]], order: list[str] | None = None) -> pd.DataFrame:
    order = order or list(sessions)
    rows = [(session, item, START + pd.Timedelta(hours=order.index(session), minutes=step))
            for session, items in sessions.items() for step, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


def recommender(**session_params):
    events = events_of(TRAIN)
    sold = events[events["item_id"] != "zz-not-sold"]
    model = build_model("popularity").fit(sold.assign(user_id=sold["session_id"], weight=1.0))
    fit_session_rules(model, events)
    params = {"k": 10, "sample": 100, "repeat_boost": 0.0, **session_params}
    fit_session_model(model, events, "vsknn", params)
    return model


def test_sessions_become_catalogue_codes_in_the_order_they_started():
    model = build_model("popularity").fit(pd.DataFrame(
        {"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "weight": 1.0}))
    events = events_of({"late": ["c", "c", "x", "a"], "early": ["b", "a"], "gone": ["x"]},
                       order=["early", "late", "gone"])
    # catalogue positions a=0, b=1, c=2 -> codes 1, 2, 3; the reload of c and the unknown
    # x are dropped, and a session left empty is dropped with them
    assert catalogue_sessions(model, events) == [[2, 1], [3, 1]]


def test_the_session_model_answers_the_live_session_and_says_so():
    model = recommender()
    assert scorer_of(model) == "session_model:vsknn"
    assert session_model_of(model).n_items == model.items.size
    # the four neighbours all hold a, three c, one d; b (the page on) is left out
    assert session_top(model, ["a", "b"], 3) == ["a", "c", "d"]
    items, scores = session_candidates(model, ["a", "b"])
    by_item = dict(zip(items, scores))
    assert by_item["c"] > by_item["d"] > by_item["f"]  # neighbours' votes, then popularity
    # the same ranking as the session model on catalogue codes
    codes = [model.item_index["a"] + 1, model.item_index["b"] + 1]
    raw = session_model_of(model).score([codes])[0][1:]
    assert raw[model.item_index["c"]] == pytest.approx(by_item["c"])


def test_a_repeat_penalty_moves_what_the_visitor_viewed_below_the_rest():
    model = recommender(repeat_boost=-5.0)  # a (age 2) loses 2.5: below every unseen item
    assert session_top(model, ["a", "b"], 3) == ["c", "d", "e"]


def test_unknown_live_items_are_skipped_and_an_unknown_session_falls_back():
    model = recommender()
    assert session_top(model, ["never-sold", "e"], 1) == ["f"]
    items, _ = session_candidates(model, ["never-sold"])
    assert items.size == 0
    popular = model.items[np.argsort(-model.popularity, kind="stable")]
    assert session_top(model, ["never-sold"], 1) == [str(popular[0])]
    assert session_top(model, [], 1) == [str(popular[0])]


def test_the_known_users_blend_reads_the_session_models_scores_in_zero_one():
    model = recommender()
    affinity = session_affinity(model, ["a", "b"], ["c", "d", "unknown", "f"])
    assert affinity[0] == 1.0 and 0 < affinity[1] < 1 and affinity[2] == 0.0
    assert affinity[3] < affinity[1]


def test_saved_with_the_recommender_under_one_digest(tmp_path):
    model = recommender()
    digest = save_model(model, tmp_path / "model")
    nested = tmp_path / "model" / "models" / "session_model"
    assert (nested / "model.json").is_file()
    loaded = load_model(tmp_path / "model", expected_sha256=digest)
    assert scorer_of(loaded) == "session_model:vsknn"
    assert session_top(loaded, ["a", "b"], 3) == session_top(model, ["a", "b"], 3)
    (nested / "model.json").write_text((nested / "model.json").read_text().replace(
        '"k"', '"k" '))
    assert files_sha256(tmp_path / "model") != digest
    with pytest.raises(ModelIntegrityError, match="do not match the registry"):
        load_model(tmp_path / "model", expected_sha256=digest)


def test_the_offline_protocol_measures_the_session_model():
    model = recommender()
    test = events_of({"t1": ["a", "b", "c"], "t2": ["e", "f"], "t3": ["a", "b", "d"]})
    metrics = next_item_metrics(model, test, k=2)
    # t1: after a, b the model ranks a, c (c at 2); t2: after e, f first; t3: d not in top 2
    assert metrics["session_hit_rate_at_2"] == pytest.approx(2 / 3)
    assert metrics["session_mrr_at_2"] == pytest.approx((1 / 2 + 1) / 3)
    assert metrics["session_cases"] == 3.0


def test_a_model_without_one_keeps_its_rules_and_an_unknown_name_is_refused():
    model = recommender()
    delattr(model, "session_model")
    assert scorer_of(model) == "session_rules"
    assert session_top(model, ["a", "b"], 1) == ["c"]
    with pytest.raises(ConfigError, match="unknown session model"):
        fit_session_model(model, events_of(TRAIN), "gru9000")
    assert build_session_model("vsknn").name == "vsknn"
