"""The direct session writer stores exactly what Feast's push stores."""
import pandas as pd
import pytest

from recsys.core.errors import SchemaError
from recsys.feature_repo.features.online import online_features, push_session_features
from recsys.feature_repo.features.session_writer import SessionFeatureWriter
from recsys.streaming.processor import feature_frame

ROWS = [
    {"user_id": "a1", "recent_items": ["i1", "i2"], "avg_view_price_10m": 19.99,
     "top_category_30m": "electronics.phone", "cart_abandonment_risk": True,
     "comparing_products": False, "last_event_ts": 1_763_000_000_123},
    {"user_id": "a2", "recent_items": [], "avg_view_price_10m": None,
     "top_category_30m": None, "cart_abandonment_risk": False,
     "comparing_products": True, "last_event_ts": 1_763_000_005_999},
]


def test_writer_and_push_read_back_identically(local_store):
    store, _ = local_store
    pushed = feature_frame(ROWS)
    written = feature_frame([{**row, "user_id": row["user_id"].replace("a", "b")}
                             for row in ROWS])
    assert push_session_features(store, pushed) == 2
    assert SessionFeatureWriter(store).write(written) == 2
    users = online_features(store, ["a1", "a2", "b1", "b2"]).users.set_index("user_id")
    session = [c for c in users.columns if c.startswith("user_session__")] + ["session_missing"]
    via_push = users.loc[["a1", "a2"], session].reset_index(drop=True)
    via_writer = users.loc[["b1", "b2"], session].reset_index(drop=True)
    pd.testing.assert_frame_equal(via_push, via_writer)
    assert via_writer.loc[0, "user_session__recent_items"] == ["i1", "i2"]
    assert via_writer.loc[0, "user_session__avg_view_price_10m"] == pytest.approx(19.99)
    assert not via_writer["session_missing"].any()


def test_writer_names_missing_fields(local_store):
    store, _ = local_store
    with pytest.raises(SchemaError, match=r"missing field\(s\) \['top_category_30m'\]"):
        SessionFeatureWriter(store).write(feature_frame(ROWS).drop(columns="top_category_30m"))
