"""Planning a test from the shop's recent traffic: the baseline, users per variant and days,
checked against the closed-form sample size computed here from the same per-user data."""
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from recsys.cli.main import main
from recsys.core.data.event_store import RAW_ZONE, append_partitioned
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA, conform_events
from recsys.core.online.request_log import SCHEMA, ZONE
from recsys.experiments.definition import ExperimentDefinition, parse_variants
from recsys.experiments.planning import NoHistoryError, plan_from_lake

NOW = pd.Timestamp("2026-11-15T00:00:00Z")
DAYS, NEW_PER_DAY, LISTS, P_CLICK = 14, 100, 10, 0.1


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """14 days, 100 new users a day; each sees 10 lists on the day they arrive and clicks
    each with probability 0.1. Returns the lake and each user's clicked lists."""
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    rng = np.random.default_rng(3)
    start = NOW - pd.Timedelta(days=DAYS)
    clicked_lists, events = {}, []
    for day in range(DAYS):
        rows = []
        for n in range(NEW_PER_DAY):
            user = f"u{day}-{n}"
            clicked_lists[user] = 0
            for k in range(LISTS):
                at = start + pd.Timedelta(days=day, minutes=10 * n + k)
                rid = f"{user}-r{k}"
                rows.append((at, "recommend", user, "1", "model", False, False, 5,
                             ["i1", "i2"], [1.0, 0.5], None, None, rid))
                if rng.random() < P_CLICK:
                    clicked_lists[user] += 1
                    events.append((f"e-{rid}", user, "i1", "click",
                                   at + pd.Timedelta(seconds=20), rid))
        frame = pd.DataFrame(rows, columns=SCHEMA.names)
        lake.write_table(f"{ZONE}/date={(start + pd.Timedelta(days=day)).date()}/part.parquet",
                         pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False))
    clicks = pd.DataFrame(events, columns=["event_id", "user_id", "item_id", "event_type",
                                           "timestamp", "recommendation_id"])
    frame = conform_events(clicks.assign(session_id="s"), "test")
    append_partitioned(lake, RAW_ZONE, frame, "event_id", RAW_EVENT_SCHEMA)
    return lake, pd.Series(clicked_lists)


def definition(lift: float, **changes) -> ExperimentDefinition:
    return ExperimentDefinition(**{
        "name": "plan-test", "target_lift": lift, "minimum_users": 1,
        "secondary_metrics": (), "variants": parse_variants(
            "control=popularity:30,a=champion:35,b=challenger:35"), **changes})


def expected_users_per_variant(clicked: pd.Series, lift: float) -> int:
    """Every user saw 10 lists, so the delta-method variance of CTR is that of clicked/10;
    two comparisons (a and b against the control) share alpha 0.05."""
    ctr = clicked.to_numpy() / LISTS
    z = stats.norm.ppf(1 - 0.05 / 2 / 2) + stats.norm.ppf(0.8)
    return math.ceil(2 * ctr.var(ddof=1) * (z / (ctr.mean() * lift)) ** 2)


def test_the_plan_matches_the_closed_form_within_and_beyond_the_history(history):
    lake, clicked = history
    for lift in (0.3, 0.05):
        planned = plan_from_lake(lake, definition(lift), NOW.to_pydatetime(), DAYS)
        ctr = planned["metrics"]["ctr"]
        assert planned["history"]["users"] == DAYS * NEW_PER_DAY
        assert planned["history"]["served_lists"] == DAYS * NEW_PER_DAY * LISTS
        assert planned["history"]["new_users_per_day_at_end"] == NEW_PER_DAY
        assert ctr["baseline"] == pytest.approx(clicked.sum() / (len(clicked) * LISTS))
        assert planned["comparisons"] == 2 and planned["smallest_share"] == pytest.approx(0.3)
        per_variant = expected_users_per_variant(clicked, lift)
        assert ctr["users_per_variant"] == per_variant
        in_all = math.ceil(per_variant / 0.3)
        assert ctr["users_in_all"] == in_all
        if in_all <= DAYS * NEW_PER_DAY:  # reached inside the history: its own arrivals
            expected_days = math.ceil(in_all / NEW_PER_DAY)
        else:  # beyond it, at the last day's rate of new users
            expected_days = DAYS + math.ceil((in_all - DAYS * NEW_PER_DAY) / NEW_PER_DAY)
        assert planned["days_for_primary"] == ctr["days"] == expected_days
    assert plan_from_lake(lake, definition(0.3), NOW.to_pydatetime(), DAYS)[
        "days_for_primary"] < DAYS < planned["days_for_primary"]


def test_the_minimum_users_and_thinner_arms_lengthen_the_plan(history):
    lake, _ = history
    base = plan_from_lake(lake, definition(0.3), NOW.to_pydatetime(), DAYS)["metrics"]["ctr"]
    floored = plan_from_lake(lake, definition(0.3, minimum_users=1000), NOW.to_pydatetime(),
                             DAYS)["metrics"]["ctr"]
    assert base["users_per_variant"] < 1000 == floored["users_per_variant"]
    assert floored["users_in_all"] == math.ceil(1000 / 0.3)
    half_covered = plan_from_lake(lake, definition(0.3, coverage=0.5), NOW.to_pydatetime(),
                                  DAYS)
    assert half_covered["smallest_share"] == pytest.approx(0.15)
    assert half_covered["metrics"]["ctr"]["users_in_all"] == \
        math.ceil(base["users_per_variant"] / 0.15)


def test_no_served_lists_is_a_clear_refusal_not_a_plan(history, tmp_path, monkeypatch, caplog):
    lake, _ = history
    with pytest.raises(NoHistoryError, match="no served lists"):
        plan_from_lake(lake, definition(0.05), (NOW + pd.Timedelta(days=60)).to_pydatetime(),
                       DAYS)
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    assert main(["experiment", "plan", "empty", "--variants",
                 "control=popularity:50,b=champion:50"]) == 2
    assert "no served lists in the request log" in caplog.text
