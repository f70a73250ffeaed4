"""The known users' blend of the long-term model with the live session: the formula serving
ranks by, and the weight tuned on the training window's newest sessions of known users."""
import numpy as np
import pandas as pd
import pytest

from recsys.core.models.session_blend import (
    blend_scores,
    blend_weight_of,
    known_user_cases,
    tune_session_blend,
)
from recsys.core.models.session_scoring import fit_session_model, session_model_of
from recsys.core.models.zoo import build_model

START = pd.Timestamp("2026-11-01T10:00:00Z")
USERS = [f"u{i}" for i in range(20)]


def test_blend_scales_the_long_term_scores_and_adds_the_weighted_session():
    blended = blend_scores(np.array([4.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]), 0.5)
    assert blended.tolist() == [1.0, 0.5, 0.75]  # [1, 0, 0.5] + 0.5 x [0, 1, 0.5]
    assert blend_scores(np.array([2.0, 2.0]), np.array([0.0, 1.0]), 1.0).tolist() == [1.0, 2.0]


def shop():
    """Known users who bought p1..p3 and browse a -> b -> c (the session leads to c), while
    d is what everyone else buys (the long-term model's first unseen item for them)."""
    bought = [(u, p, 1.0) for u in USERS for p in ("p1", "p2", "p3")]
    others = [(f"v{i}", item, 1.0) for i in range(30) for item in ("d", "e")] + \
        [(f"w{i}", item, 1.0) for i in range(3) for item in ("a", "b", "c")]
    interactions = pd.DataFrame(bought + others, columns=["user_id", "item_id", "weight"])
    model = build_model("popularity").fit(interactions)
    rows = []
    for n, user in enumerate(USERS * 2):  # two sessions per user, one after the other
        for step, item in enumerate(("a", "b", "c")):
            rows.append((f"s{n}", user, item, START + pd.Timedelta(hours=n, minutes=step)))
    events = pd.DataFrame(rows, columns=["session_id", "user_id", "item_id", "timestamp"])
    return model, events


def test_the_tuning_cases_are_the_newest_sessions_of_known_users():
    model, events = shop()
    older, cases = known_user_cases(model, events, share=0.1)
    assert len(cases) == 4  # 40 sessions: the newest 4
    assert all(prefix == ["a", "b"] and answer == "c" for _, prefix, answer in cases)
    assert {user for user, _, _ in cases} == {"u16", "u17", "u18", "u19"}
    assert older["session_id"].nunique() == 36
    assert set(older["session_id"]).isdisjoint({f"s{n}" for n in range(36, 40)})


def test_a_session_that_predicts_the_next_item_earns_a_weight():
    model, events = shop()
    fit_session_model(model, events, "sequential_rules", {"repeat_boost": 0.0})
    fitted_on_all = session_model_of(model)
    tuning = tune_session_blend(model, events, "sequential_rules", {"repeat_boost": 0.0},
                                weights=(0.0, 0.3, 3.0))
    # without the session, d and e (everyone's purchases) rank first and c fifth (a, b, c
    # tie on popularity, by id): MRR 1/5; with weight, c follows a, b and comes first
    assert tuning.mrr_by_weight[0.0] == pytest.approx(1 / 5)
    assert tuning.mrr_by_weight[3.0] == pytest.approx(1.0)
    assert tuning.weight in (0.3, 3.0) and tuning.mrr_by_weight[tuning.weight] == 1.0
    assert blend_weight_of(model) == tuning.weight
    assert session_model_of(model) is fitted_on_all  # the tuning's own fit is not kept


def test_without_known_users_nothing_is_tuned():
    model, events = shop()
    anonymous = events.assign(user_id=None)
    tuning = tune_session_blend(model, anonymous, "vsknn")
    assert tuning.weight is None and tuning.cases == 0 and blend_weight_of(model) is None
    assert session_model_of(model) is None
