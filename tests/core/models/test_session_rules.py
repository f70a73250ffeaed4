"""Session rules on hand-made sessions whose rules, rankings and next-item metrics are
worked out by hand."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.evaluate.sessions import next_item_metrics, split_sessions_by_time
from recsys.core.models.session_rules import (
    fit_session_rules,
    session_affinity,
    session_candidates,
)
from recsys.core.models.session_scoring import session_top
from recsys.core.models.storage import files_sha256, load_model, save_model
from recsys.core.models.zoo import build_model

START = pd.Timestamp("2026-11-01T10:00:00Z")


def events_of(sessions: dict[str, list[str]], day: int = 0) -> pd.DataFrame:
    rows = [(session, item, START + pd.Timedelta(days=day, minutes=step))
            for session, items in sessions.items() for step, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


TRAIN = {"s1": ["a", "b", "c"], "s2": ["a", "b", "d"], "s3": ["a", "a", "b", "c"],
         "s4": ["x", "y"]}


def fitted(window: int = 5, max_rules: int = 100):
    events = events_of(TRAIN)
    interactions = events.assign(user_id=events["session_id"], weight=1.0)
    model = build_model("popularity", popularity_half_life_days=0.0).fit(interactions)
    fit_session_rules(model, events, window=window, max_rules=max_rules)
    return model


def rule(model, source: str, target: str) -> float:
    return float(model.session_rules[model.item_index[source], model.item_index[target]])


def test_rules_add_one_over_the_distance_and_ignore_a_reload():
    model = fitted()
    assert rule(model, "a", "b") == 3.0  # s3's "a, a" is one step
    assert rule(model, "b", "c") == 2.0
    assert rule(model, "a", "c") == 1.0  # two steps later, twice: 2 x 1/2
    assert rule(model, "a", "d") == 0.5
    assert rule(model, "b", "a") == 0.0  # rules go forward only
    assert model.session_rules.diagonal().sum() == 0.0


def test_the_window_and_the_per_item_cap_bound_the_rules():
    short = fitted(window=1)
    assert rule(short, "a", "b") == 3.0 and rule(short, "a", "c") == 0.0
    capped = fitted(max_rules=1)
    assert np.diff(capped.session_rules.indptr).max() == 1
    assert rule(capped, "a", "b") == 3.0 and rule(capped, "a", "c") == 0.0


def test_a_session_ranks_what_follows_its_newest_items_first():
    model = fitted()
    # b (newest, weight 1): c 2, d 1; a (weight 1/2): b 3, c 1, d 0.5
    # c = 2.5, d = 1.25, b = 1.5 but b is the page the visitor is on
    assert session_top(model, ["a", "b"], 2) == ["c", "d"]
    items, scores = session_candidates(model, ["a", "b"], popularity_weight=0.0)
    by_item = dict(zip(items, scores))
    assert by_item["c"] == pytest.approx(1.0) and by_item["d"] == pytest.approx(0.5)
    assert by_item["b"] == pytest.approx(0.6)
    affinity = session_affinity(model, ["a", "b"], ["d", "zzz", "c", "y"])
    assert affinity.tolist() == pytest.approx([0.5, 0.0, 1.0, 0.0])


def test_unknown_items_give_no_session_answer_and_popularity_orders_the_rest():
    model = fitted()
    items, _ = session_candidates(model, ["never-seen"])
    assert items.size == 0
    assert session_top(model, ["never-seen"], 1) == ["a"]  # the most popular: 4 events
    # x's rules reach y only; the rest follows popularity (a 4 events, b 3)
    assert session_top(model, ["x"], 3) == ["y", "a", "b"]


def test_next_item_metrics_on_sessions_with_known_answers():
    model = fitted()
    test = events_of({"t1": ["a", "b", "c"],   # prefix a, b -> c ranked 1st
                      "t2": ["a", "d"],        # prefix a -> b, c, d: d ranked 3rd
                      "t3": ["x", "new"],      # answer never seen in training: left out
                      "t4": ["q"]}, day=1)     # too short
    metrics = next_item_metrics(model, test, k=20)
    assert metrics["session_hit_rate_at_20"] == 1.0
    assert metrics["session_mrr_at_20"] == pytest.approx((1 + 1 / 3) / 2)
    assert metrics["session_cases"] == 2.0
    assert metrics["session_answers_unseen_in_training"] == 1.0
    assert metrics["session_sessions_too_short"] == 1.0
    top1 = next_item_metrics(model, test, k=1)
    assert top1["session_hit_rate_at_1"] == 0.5 and top1["session_mrr_at_1"] == 0.5


def test_sessions_split_by_their_first_event():
    events = pd.concat([events_of({"old": ["a", "b"]}, day=0),
                        events_of({"new": ["c", "d"]}, day=2),
                        events_of({"mid": ["e"]}, day=1)])
    train, test = split_sessions_by_time(events, test_share=1 / 3)
    assert set(train["session_id"]) == {"old", "mid"} and set(test["session_id"]) == {"new"}


def test_rules_are_stored_with_the_model_and_the_serving_cache_is_not(tmp_path):
    model = fitted()
    digest = save_model(model, tmp_path / "before")
    session_candidates(model, ["a"])  # builds the derived popularity view
    assert save_model(model, tmp_path / "after") == digest
    loaded = load_model(tmp_path / "after", expected_sha256=files_sha256(tmp_path / "before"))
    assert (loaded.session_rules != model.session_rules).nnz == 0
    assert session_top(loaded, ["a", "b"], 2) == ["c", "d"]
    refitted = build_model("popularity").fit(
        events_of(TRAIN).assign(user_id="u", weight=1.0))
    assert refitted.session_rules is None
