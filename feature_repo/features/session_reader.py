"""One user's live session row, read the way serving needs it on every request.

Serving needs two things from the `user_session` view per request: the recent items and the
top category (they also key the recommendation cache, feature_repo/features/live_session.py).
`online_features` builds a typed DataFrame of both user views (~1.5 ms, most of a request);
this reads only the session row: on a plain Redis online store one HMGET in Feast's format
(feature_repo/features/redis_rows.py), elsewhere Feast's `get_online_features` for the session
features alone.
"""
from __future__ import annotations

from feast import FeatureStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from recsys.core.data.columns import Columns
from recsys.feature_repo.features.definitions import SESSION_VIEW, USER_SESSION_SCHEMA
from recsys.feature_repo.features.live_session import LiveSession
from recsys.feature_repo.features.redis_rows import redis_row_reader

C = Columns
SESSION_FEATURES = [f"{SESSION_VIEW}:{f.name}" for f in USER_SESSION_SCHEMA]
PRESENT = 1  # FieldStatus.PRESENT in Feast's serving protos


class SessionReader:
    """`read(user_id)`: the user's LiveSession, or None when the user has no session row."""

    def __init__(self, store: FeatureStore):
        self.store = store
        self.rows = redis_row_reader(store, store.get_feature_view(SESSION_VIEW))

    def read(self, user_id: str) -> LiveSession | None:
        if self.rows is not None:
            key = EntityKeyProto(join_keys=[C.user_id],
                                 entity_values=[ValueProto(string_val=str(user_id))])
            found = self.rows.read(key)
            return None if found is None else _live_session(found[1])
        return self._read_through_feast(str(user_id))

    def _read_through_feast(self, user_id: str) -> LiveSession | None:
        response = self.store.get_online_features(
            features=SESSION_FEATURES, entity_rows=[{C.user_id: user_id}],
            full_feature_names=False).proto
        names = list(response.metadata.feature_names.val)
        values = {name: vector.values[0] for name, vector in zip(names, response.results)
                  if name != C.user_id and vector.statuses[0] == PRESENT}
        return _live_session(values) if values else None


def _live_session(values: dict[str, ValueProto]) -> LiveSession:
    recent = values.get("recent_items")
    category = values.get("top_category_30m")
    price = values.get("avg_view_price_10m")
    return LiveSession(
        recent_items=list(recent.string_list_val.val) if recent is not None else [],
        top_category=category.string_val or None
        if category is not None and category.WhichOneof("val") == "string_val" else None,
        avg_view_price=price.double_val
        if price is not None and price.WhichOneof("val") == "double_val" else None)
