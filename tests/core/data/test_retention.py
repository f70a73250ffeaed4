"""Lake retention: whole date partitions older than each zone's policy go; today's, the
policy's window, undated objects and everything outside the zone stay."""
import json
from datetime import date, timedelta

import pytest

from recsys.cli.main import main
from recsys.core.data.lake import Lake
from recsys.core.data.retention import (
    ZONES,
    expired,
    lake_sizes,
    partitions,
    policies_from_settings,
    retain,
)
from recsys.core.online.request_log import ZONE as REQUEST_LOG_ZONE
from recsys.core.settings import Settings
from recsys.monitoring.workspace import REPORTS_PREFIX

TODAY = date(2026, 11, 10)


def day(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


def lake_with_history(lake: Lake) -> dict[str, list[str]]:
    """Objects of every zone at today, 7, 8 and 30 days back (raw: also tomorrow, as a
    future-dated event lands), and objects each policy must never touch."""
    keys = {
        "raw": [f"raw/events/event_date={day(o)}/part-a.parquet" for o in (-1, 0, 7, 8, 30)]
        + [f"raw/events/event_date={day(30)}/hour=04/part-b.parquet"],  # the stream sink's
        "clean": [f"clean/events/event_date={day(o)}/part-a.parquet" for o in (0, 8)],
        "quarantine": [f"quarantine/events/event_date={day(o)}/part-a.parquet" for o in (0, 8)]
        + [f"quarantine/replayed/event_date={day(8)}/part-r.parquet"],
        "request_log": [f"serving/requests/date={day(o)}/part-1-x.parquet" for o in (0, 3, 4)],
        "reports": [f"reports/drift/date={day(o)}/010203/summary.json" for o in (0, 40)],
        "kept": [
            "quarantine/events/event_date=unknown/part-u.parquet",  # rows with no time
            "raw/events/event_date=not-a-day/part-x.parquet",
            f"raw/events2/event_date={day(30)}/part-x.parquet",  # a sibling prefix
            f"raw/events/part-event_date={day(30)}.parquet",  # a file's name, no partition
            f"processed/{day(30)}/matrix.npz",
            f"corrupt/raw/events/event_date={day(30)}/part-c.parquet",
        ],
    }
    for group in keys.values():
        for key in group:
            lake.write_bytes(key, b"x" * 10)
    return keys


POLICY = {"raw": 7, "clean": 0, "quarantine": 7, "request_log": 3, "reports": None}


def test_retain_deletes_only_partitions_older_than_each_policy(lake):
    keys = lake_with_history(lake)
    everything = set(lake.list(""))

    report = retain(lake, POLICY, today=TODAY)

    gone = {f"raw/events/event_date={day(8)}/part-a.parquet",
            f"raw/events/event_date={day(30)}/part-a.parquet",
            f"raw/events/event_date={day(30)}/hour=04/part-b.parquet",
            f"quarantine/events/event_date={day(8)}/part-a.parquet",
            f"quarantine/replayed/event_date={day(8)}/part-r.parquet",
            f"serving/requests/date={day(4)}/part-1-x.parquet"}
    assert set(lake.list("")) == everything - gone
    assert set(keys["kept"]) <= set(lake.list(""))
    zones = report["zones"]
    assert zones["raw"]["partitions"] == [f"raw/events/event_date={day(30)}",
                                          f"raw/events/event_date={day(8)}"]
    assert (zones["raw"]["objects"], zones["raw"]["bytes"]) == (3, 30)
    assert zones["raw"]["oldest_kept"] == day(7)
    assert zones["quarantine"]["partitions"] == [f"quarantine/events/event_date={day(8)}",
                                                 f"quarantine/replayed/event_date={day(8)}"]
    assert zones["request_log"]["partitions"] == [f"serving/requests/date={day(4)}"]
    assert zones["clean"]["partitions"] == zones["reports"]["partitions"] == []  # forever
    # a local lake loses the folders of deleted partitions too
    assert not (lake_path(lake) / f"raw/events/event_date={day(30)}").exists()
    assert (lake_path(lake) / f"raw/events/event_date={day(7)}").is_dir()


def lake_path(lake: Lake):
    from pathlib import Path

    return Path(lake.uri)


def test_a_one_day_policy_keeps_today_and_yesterday_never_today(lake):
    lake_with_history(lake)
    assert [p.day for p in expired(lake, ZONES[0], 1, TODAY)] == [
        TODAY - timedelta(days=30), TODAY - timedelta(days=8), TODAY - timedelta(days=7)]
    assert expired(lake, ZONES[0], 0, TODAY) == expired(lake, ZONES[0], None, TODAY) == []


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(lake):
    lake_with_history(lake)
    before = lake.describe("")

    dry = retain(lake, POLICY, today=TODAY, dry_run=True)

    assert lake.describe("") == before
    real = retain(lake, POLICY, today=TODAY)
    assert {z: v["partitions"] for z, v in dry["zones"].items()} == \
        {z: v["partitions"] for z, v in real["zones"].items()}
    assert dry["dry_run"] and not real["dry_run"]
    assert retain(lake, POLICY, today=TODAY)["zones"]["raw"]["partitions"] == []  # done


def test_sizes_per_zone_cover_the_whole_lake(lake):
    lake_with_history(lake)
    sizes = lake_sizes(lake)
    assert {z: s["objects"] for z, s in sizes.items()} == {
        "raw": 8, "clean": 2, "quarantine": 4, "request_log": 3, "reports": 2, "other": 3}
    assert sum(s["bytes"] for s in sizes.values()) == 10 * 22


def test_zones_match_the_writers_prefixes():
    by_name = {zone.name: zone for zone in ZONES}
    assert by_name["request_log"].prefix == REQUEST_LOG_ZONE
    assert REPORTS_PREFIX.startswith(by_name["reports"].prefix + "/")
    assert [p.path for p in partitions(Lake("/nonexistent"), by_name["raw"])] == []


def test_policies_come_from_settings(monkeypatch):
    monkeypatch.setenv("RECSYS_RETENTION_RAW_DAYS", "90")
    monkeypatch.setenv("RECSYS_RETENTION_QUARANTINE_DAYS", "0")
    assert policies_from_settings(Settings()) == {
        "raw": 90, "clean": None, "quarantine": None, "request_log": None, "reports": None}
    monkeypatch.setenv("RECSYS_RETENTION_CLEAN_DAYS", "-1")
    with pytest.raises(ValueError):
        Settings()
    with pytest.raises(ValueError, match="no lake zone named features"):
        retain(Lake("/nonexistent"), {"features": 3})


def test_cli_retain_lists_on_a_dry_run_then_deletes_by_the_real_date(lake, capsys,
                                                                      monkeypatch):
    real_today = date.today()
    old = (real_today - timedelta(days=40)).isoformat()
    lake.write_bytes(f"reports/drift/date={old}/010203/summary.json", b"{}")
    lake.write_bytes(f"reports/drift/date={real_today.isoformat()}/010203/summary.json", b"{}")
    monkeypatch.setenv("RECSYS_RETENTION_REPORTS_DAYS", "30")
    monkeypatch.delenv("RECSYS_PUSHGATEWAY_URL", raising=False)
    before = lake.describe("")

    assert main(["lake", "retain", "--lake", lake.uri, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["zones"]["reports"]["partitions"] == [f"reports/drift/date={old}"]
    assert lake.describe("") == before

    assert main(["lake", "retain", "--lake", lake.uri]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["zones"]["reports"]["partitions"] == [f"reports/drift/date={old}"]
    assert lake.list("reports") == [
        f"reports/drift/date={real_today.isoformat()}/010203/summary.json"]
    assert report["sizes"]["reports"]["objects"] == 1


@pytest.mark.integration
def test_retention_on_an_s3_lake(s3_lake):
    """The same partitions go on S3 (no folders there); a sibling prefix stays."""
    keys = lake_with_history(s3_lake)
    report = retain(s3_lake, POLICY, today=TODAY)
    assert report["zones"]["raw"]["objects"] == 3
    assert set(keys["kept"]) <= set(s3_lake.list(""))
    assert not s3_lake.list(f"raw/events/event_date={day(8)}")
    assert s3_lake.list(f"raw/events/event_date={day(7)}")
    assert report["sizes"]["raw"]["objects"] == 5
