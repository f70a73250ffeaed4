"""Stock and promotions written to the lake while serving apply within the refresh period,
without a restart and through the cache, and the answer lists what they changed."""
import time

import pandas as pd
import pytest
import redis

from recsys.core.data.lake import Lake
from recsys.core.online.business_rules import write_promotion, write_stock
from recsys.serving.cache import RecommendationCache
from recsys.serving.live_rules import LiveRules

HOUR = pd.Timedelta(hours=1)


def eventually(check, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.mark.integration
def test_a_stock_change_and_a_promotion_apply_while_serving(make_service, tmp_path):
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    lake = Lake(str(tmp_path / "lake"))
    rules = LiveRules(lake, refresh_seconds=0.2)
    rules.refresh()
    rules.watch()
    service = make_service(None, RecommendationCache(client, 600), max_promoted_share=0.5)
    service.rules = rules
    try:
        before = service.recommend(service.parse("anyone", 2, explain=True))
        assert before.item_ids == ["e", "a"] and before.rules_applied == []  # popularity
        assert service.recommend(service.parse("anyone", 2)).cached

        now = pd.Timestamp.now(tz="UTC")
        write_stock(lake, ["e"], available=False)
        write_promotion(lake, "f", boost=10.0, starts_at=now - HOUR, ends_at=now + HOUR,
                        promotion_id="books-week")
        changed = eventually(lambda: service.recommend(
            service.parse("anyone", 2, explain=True)).item_ids != before.item_ids)
        assert changed
        after = service.recommend(service.parse("anyone", 2, explain=True))
        # e gone; f (popularity 1, boosted x10) takes the one slot of two it may take
        assert after.item_ids == ["f", "a"] and after.cached  # the audit is cached with it
        assert {(e["rule"], e["item_id"], e["action"]) for e in after.rules_applied} == {
            ("stock", "e", "removed"), ("promotion", "f", "boosted")}
        assert service.recommend(service.parse("anyone", 2)).rules_applied is None

        write_stock(lake, ["e"], available=True)  # back in stock
        assert eventually(lambda: "e" in service.recommend(
            service.parse("anyone", 2)).item_ids)
    finally:
        rules.stop()
        client.flushdb()


def test_an_unreadable_lake_keeps_the_rules_in_force(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_stock(lake, ["x"], available=False)
    errors = []
    rules = LiveRules(lake, refresh_seconds=0, on_error=errors.append)
    assert rules.refresh().unavailable == {"x"}
    bad = next((tmp_path / "lake" / "catalog" / "stock").glob("*.parquet"))
    bad.write_bytes(b"not parquet")
    assert rules.refresh().unavailable == {"x"} and len(errors) == 1
