"""Stock and promotion logs in the lake: newest record wins, scheduled changes, early ends,
malformed rows skipped, compaction keeps what is in force."""
import pandas as pd
import pyarrow as pa
import pytest

from recsys.core.data.lake import Lake
from recsys.core.errors import ConfigError, NotFoundError
from recsys.core.online.business_rules import (
    LEGACY_UNAVAILABLE,
    PROMOTIONS_PREFIX,
    STOCK_PREFIX,
    compact,
    end_promotion,
    promotion_schema,
    read_rule_logs,
    write_promotion,
    write_stock,
)

NOW = pd.Timestamp.now(tz="UTC").floor("ms")
HOUR = pd.Timedelta(hours=1)


@pytest.fixture
def lake(tmp_path):
    return Lake(str(tmp_path / "lake"))


def test_the_newest_stock_change_in_force_wins(lake):
    write_stock(lake, ["a", "b"], available=False, changed_at=NOW - 2 * HOUR)
    write_stock(lake, ["b"], available=True, changed_at=NOW - HOUR)
    write_stock(lake, ["c"], available=False, changed_at=NOW + HOUR)  # scheduled
    logs = read_rule_logs(lake)
    assert logs.at(NOW).unavailable == {"a"}
    assert logs.at(NOW + 2 * HOUR).unavailable == {"a", "c"}
    assert logs.at(NOW - 90 * pd.Timedelta(minutes=1)).unavailable == {"a", "b"}


def test_the_legacy_unavailable_list_still_counts(lake):
    lake.write_table(LEGACY_UNAVAILABLE, pa.table({"item_id": ["old"]}))
    write_stock(lake, ["x"], available=False, changed_at=NOW - HOUR)
    assert read_rule_logs(lake).at(NOW).unavailable == {"old", "x"}


def test_promotions_run_between_start_and_end_and_can_end_early(lake):
    write_promotion(lake, "a", boost=2.0, starts_at=NOW - HOUR, ends_at=NOW + HOUR,
                    promotion_id="p1")
    write_promotion(lake, "b", pin_slot=1, starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR,
                    promotion_id="p2")
    logs = read_rule_logs(lake)
    now = logs.at(NOW)
    assert set(now.promotions) == {"a"} and now.promotions["a"].boost == 2.0
    later = logs.at(NOW + 90 * pd.Timedelta(minutes=1))
    assert set(later.promotions) == {"b"} and later.promotions["b"].pin_slot == 1
    assert now.version != later.version
    end_promotion(lake, "p1")
    assert read_rule_logs(lake).at(pd.Timestamp.now(tz="UTC")).promotions == {}
    with pytest.raises(NotFoundError):
        end_promotion(lake, "nope")


@pytest.mark.parametrize("kwargs, message", [
    ({"boost": 1.0}, "boosts"), ({"boost": 0.0, "pin_slot": 1}, "boost"),
    ({"pin_slot": 0}, "pin slot"), ({"boost": 2.0, "ends_at": NOW - HOUR}, "end after"),
])
def test_a_promotion_that_cannot_work_is_refused(lake, kwargs, message):
    arguments = {"ends_at": NOW + HOUR, **kwargs}
    with pytest.raises(ConfigError, match=message):
        write_promotion(lake, "a", **arguments)


def test_rows_a_feed_wrote_wrong_are_skipped_and_counted(lake):
    bad = pd.DataFrame({"promotion_id": ["ok", "neg", "pin", "order", None],
                        "item_id": ["a", "b", "c", "d", "e"],
                        "boost": [2.0, -1.0, 2.0, 2.0, 2.0],
                        "pin_slot": pd.array([None, None, 500, None, None], dtype="Int32"),
                        "starts_at": [NOW - HOUR] * 3 + [NOW + HOUR, NOW - HOUR],
                        "ends_at": [NOW + HOUR] * 3 + [NOW, NOW + HOUR],
                        "recorded_at": [NOW] * 5})
    lake.write_table(f"{PROMOTIONS_PREFIX}feed.parquet",
                     pa.Table.from_pandas(bad, schema=promotion_schema(), preserve_index=False))
    logs = read_rule_logs(lake)
    assert logs.skipped_rows == 4
    assert set(logs.at(NOW).promotions) == {"a"}


def test_compaction_folds_the_logs_and_keeps_what_is_in_force(lake):
    for item in ("a", "b", "c"):
        write_stock(lake, [item], available=False, changed_at=NOW - HOUR)
    write_stock(lake, ["b"], available=True, changed_at=NOW - HOUR / 2)
    write_promotion(lake, "a", 2.0, starts_at=NOW - 2 * HOUR, ends_at=NOW - HOUR,
                    promotion_id="over")
    write_promotion(lake, "c", 3.0, starts_at=NOW - HOUR, ends_at=NOW + HOUR,
                    promotion_id="running")
    before = read_rule_logs(lake).at(NOW)
    assert compact(lake, STOCK_PREFIX) == 4
    assert compact(lake, PROMOTIONS_PREFIX, keep_after=NOW) == 2
    assert len(lake.list(STOCK_PREFIX)) == 1 and len(lake.list(PROMOTIONS_PREFIX)) == 1
    after = read_rule_logs(lake)
    assert after.at(NOW) == before
    assert set(after.promotions["promotion_id"]) == {"running"}
    assert len(after.stock) == 3  # one row per item
