"""Replay after a fix: quarantined rows and dead letters judged again with today's rules; what
passes lands in the raw zone once, is recorded, and is never replayed twice."""
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recsys.components.replay.replay as replay_module
from recsys.cli.main import main
from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.replay.replay import (
    REPLAYED_SCHEMA,
    REPLAYED_ZONE,
    ReplayRules,
    parse_reason,
    parse_since,
    reason_code,
    reason_matches,
    replay,
)
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.event_store import (
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    read_event_files,
)
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import quarantine_lines, write_quarantine
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import ConfigError
from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.quarantine_sink import quarantine_frame
from recsys.streaming.user_binding import UserBinding, sign_user

FAST = settings(max_examples=200, derandomize=True, deadline=None)
DAY_MS = 86_400_000
NOW = pd.Timestamp("2026-11-01T12:00:00Z")
T0 = int(pd.Timestamp("2026-10-30T10:00:00Z").value // 1_000_000)  # events' time (ms)


def event(n, **overrides) -> dict:
    body = {"event_id": f"e{n}", "user_id": f"u{n}", "event_type": "view", "timestamp": T0 + n,
            "properties": {"product_id": f"p{n}"}}
    body.update(overrides)
    return body


def dead_letter(body, reason, received_ms=T0 + 60_000) -> dict:
    """A record as the collector dead-letters it (what the quarantine sink lands)."""
    return {"reason": reason, "errors": [], "received_at": received_ms, "raw": body}


def landed(lake: Lake, zone: str = RAW_ZONE, schema=RAW_EVENT_SCHEMA) -> pd.DataFrame:
    return read_event_files(lake, lake.list(zone), schema).to_pandas()


@pytest.fixture
def fixed_lake(tmp_path) -> Lake:
    """A lake whose quarantine holds every kind of row, refused by rules since fixed or not:
    - batch: e1 (price 2000, refused when the price cap was 1000: passes today), e2 (an
      unknown event type: still refused), e3 clean; a JSON line no reader read (still
      malformed) and a CSV row of the wrong width (cannot be read without its header);
    - a line an older reader refused that today's reads (e20);
    - dead letters: e10 (a view, refused by an older collector: passes today), e11 (no product:
      still refused), e12 (8 days old when received: still refused), e13 (passes, and its
      event_id is quarantined twice: two rows, one event)."""
    lake = Lake(str(tmp_path / "lake"))
    source = tmp_path / "events.jsonl"
    lines = [event(1, properties={"product_id": "p1", "price": 2000}),
             event(2, event_type="teleport"), event(3)]
    source.write_text("\n".join(json.dumps(e) for e in lines) + '\n{"event_id": "e4", broken\n')
    extract(ExtractConfig(source=str(source)), lake)
    validate_window(lake, ValidationConfig(max_price=1000, max_bad_ratio=0.9), now=NOW)
    write_quarantine(lake, quarantine_lines(pd.DataFrame({
        "raw": ["1,2,3", json.dumps(event(20))],
        "reason": ["malformed row: expected 5 fields, got 3 (row 1 refused in shop.csv)",
                   "malformed JSON: an older reader's refusal"]})))
    write_quarantine(lake, quarantine_frame([
        dead_letter(event(10), "event_type: unknown event_type 'view' (an older collector)"),
        dead_letter(event(11, properties={}), "properties.product_id: a view event needs the "
                                              "product"),
        dead_letter(event(12), "timestamp: too old", received_ms=T0 + 12 + 8 * DAY_MS),
        dead_letter(event(13), "event_type: an older collector"),
        dead_letter(event(13), "properties: an older collector again"),
    ]))
    return lake


TODAY = ReplayRules(now=NOW)
STILL = {"collector: properties.product_id": 1, "collector: timestamp": 1,
         "malformed JSON": 1, "malformed row": 1, "unknown event_type": 1}


def test_replay_after_a_rule_fix_moves_what_passes_and_leaves_the_rest(fixed_lake):
    quarantined_before = landed(fixed_lake, QUARANTINE_ZONE, QUARANTINE_SCHEMA)
    assert len(quarantined_before) == 10

    summary = replay(fixed_lake, rules=TODAY)

    assert (summary.examined, summary.replayed, summary.written, summary.already_present) \
        == (10, 5, 3, 2)  # e1 was in the raw zone already; e13 is one event of two rows
    assert summary.still_quarantined == STILL
    raw = landed(fixed_lake)
    assert sorted(raw["event_id"]) == ["e1", "e10", "e13", "e2", "e20", "e3"]
    assert raw["event_id"].is_unique
    e10 = raw.set_index("event_id").loc["e10"]
    assert (e10["user_id"], e10["item_id"], e10["timestamp"]) == (
        "u10", "p10", pd.Timestamp(T0 + 10, unit="ms", tz="UTC"))
    # the rows themselves stay as they were; the replayed ones are recorded
    after = landed(fixed_lake, QUARANTINE_ZONE, QUARANTINE_SCHEMA)
    pd.testing.assert_frame_equal(after.sort_values("quarantine_id").reset_index(drop=True),
                                  quarantined_before.sort_values("quarantine_id")
                                  .reset_index(drop=True))
    record = landed(fixed_lake, REPLAYED_ZONE, REPLAYED_SCHEMA)
    assert sorted(record["event_id"]) == ["e1", "e10", "e13", "e13", "e20"]
    assert set(record["quarantine_id"]) <= set(after["quarantine_id"])


def test_a_second_replay_replays_nothing_again(fixed_lake):
    replay(fixed_lake, rules=TODAY)
    files = fixed_lake.describe(RAW_ZONE)

    again = replay(fixed_lake, rules=TODAY)

    assert (again.examined, again.replayed, again.written, again.already_present) == (5, 0, 0, 0)
    assert again.previously_replayed == 5 and again.still_quarantined == STILL
    assert fixed_lake.describe(RAW_ZONE) == files  # not one file more
    assert len(landed(fixed_lake, REPLAYED_ZONE, REPLAYED_SCHEMA)) == 5


def test_a_crash_between_the_raw_write_and_the_record_doubles_nothing(fixed_lake, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("killed after the raw zone was written")

    monkeypatch.setattr(replay_module, "record_replayed", crash)
    with pytest.raises(RuntimeError):
        replay(fixed_lake, rules=TODAY)
    assert sorted(landed(fixed_lake)["event_id"]) == ["e1", "e10", "e13", "e2", "e20", "e3"]
    assert fixed_lake.list(REPLAYED_ZONE) == []  # nothing recorded: nothing lost either
    monkeypatch.undo()

    summary = replay(fixed_lake, rules=TODAY)

    assert (summary.examined, summary.replayed, summary.written, summary.already_present) \
        == (10, 5, 0, 5)
    raw = landed(fixed_lake)
    assert raw["event_id"].is_unique and len(raw) == 6
    assert replay(fixed_lake, rules=TODAY).replayed == 0


def test_a_dry_run_writes_nothing_and_counts_what_a_run_does(fixed_lake):
    broken = f"{QUARANTINE_ZONE}/event_date=2026-10-30/part-cut-short.parquet"
    fixed_lake.write_bytes(broken, b"PAR1 and then the crash")
    before = fixed_lake.describe("")

    dry = replay(fixed_lake, dry_run=True, rules=TODAY)

    assert fixed_lake.describe("") == before  # no row, no record, no file set aside
    assert dry.dry_run and dry.corrupt_files == [broken]
    real = replay(fixed_lake, rules=TODAY)
    fields = ("examined", "replayed", "written", "already_present", "still_quarantined")
    assert {f: getattr(dry, f) for f in fields} == {f: getattr(real, f) for f in fields}
    assert (real.written, real.already_present) == (3, 2)
    assert fixed_lake.set_aside_keys == [broken] and real.corrupt_files == [broken]


def test_the_reason_and_since_filters_pick_the_rows(fixed_lake):
    dead = replay(fixed_lake, reasons=("Collector: EVENT_TYPE",), dry_run=True, rules=TODAY)
    assert (dead.examined, dead.replayed, dead.still_quarantined) == (2, 2, {})
    price = replay(fixed_lake, reasons=("price out of range", "unknown event_type"),
                   dry_run=True, rules=TODAY)
    assert (price.examined, price.replayed) == (2, 1)
    # rows of a time at or after --since: the dead letters' receipt, e12's 8 days later
    late = replay(fixed_lake, since=pd.Timestamp(T0 + 5 * DAY_MS, unit="ms", tz="UTC"),
                  dry_run=True, rules=TODAY)
    assert (late.examined, late.still_quarantined) == (1, {"collector: timestamp": 1})


def test_a_dead_letter_is_judged_with_the_binding_at_its_receipt(tmp_path):
    """A signature valid when the collector received the event is valid at replay, even once
    it has expired; an unsigned event stays refused under `require`."""
    lake = Lake(str(tmp_path / "lake"))
    keys = BearerKeys(["signing-key"], None, what="test keys")
    expires = (T0 + 3_600_000) // 1000  # an hour after the event: long past at replay
    signed = event(30, user_signature=sign_user("signing-key", "u30", expires))
    write_quarantine(lake, quarantine_frame([
        dead_letter(signed, "user_signature: checked by an older collector"),
        dead_letter(event(31), "event_type: an older collector")]))
    rules = ReplayRules(binding=UserBinding("require", keys), now=NOW)

    summary = replay(lake, rules=rules)

    assert (summary.replayed, summary.still_quarantined) == (1, {"collector: user_signature": 1})
    assert landed(lake)["event_id"].tolist() == ["e30"]


def test_cli_replay_prints_the_summary(fixed_lake, capsys):
    assert main(["quarantine", "replay", "--lake", fixed_lake.uri, "--dry-run",
                 "--reason", "collector"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["examined"], summary["dry_run"]) == (5, True)
    assert main(["quarantine", "replay", "--lake", fixed_lake.uri, "--since", "yesterday?"]) \
        == 2  # refused naming the input, nothing read


@pytest.mark.parametrize(("reason", "code"), [
    ("collector: event_type: unknown event_type 'x'; properties: y", "collector: event_type"),
    ("collector: refused", "collector"),
    ("unknown event_type: teleport; price out of range: -1", "unknown event_type"),
    ("timestamp missing", "timestamp missing"),
])
def test_reason_codes(reason, code):
    assert reason_code(reason) == code


@FAST
@given(st.text(max_size=300))
def test_any_reason_filter_is_refused_or_matches_every_reason_it_starts(text):
    try:
        wanted = parse_reason(text)
    except ConfigError:
        stripped = text.strip()
        assert not stripped or len(stripped) > 256 or any(
            ord(c) < 32 or ord(c) == 127 for c in stripped)
        return
    assert wanted == text.strip() and wanted
    assert reason_matches(wanted + ": the rest", (wanted,))
    assert not reason_matches("x" + wanted, (wanted,)) or wanted.startswith("x") or \
        ";" in wanted
    if ";" not in wanted and wanted.swapcase().casefold() == wanted.casefold():
        # a part of a '; '-joined reason, in any case
        assert reason_matches("missing user_id; " + wanted.swapcase(), (wanted,))


@FAST
@given(st.one_of(st.text(max_size=40), st.integers(min_value=-10**22, max_value=10**22).map(str),
                 st.datetimes(timezones=st.just(None)).map(lambda d: d.isoformat()),
                 st.sampled_from(["NaT", "nan", "", " ", "2026-02-30", "1e400"])))
def test_any_since_is_a_utc_time_or_refused_naming_it(text):
    try:
        moment = parse_since(text)
    except ConfigError as exc:
        assert "--since" in str(exc)
        return
    assert moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0
    assert not pd.isna(moment)


def test_since_reads_dates_datetimes_and_epoch_milliseconds():
    assert parse_since("2026-10-30") == pd.Timestamp("2026-10-30", tz="UTC")
    assert parse_since("2026-10-30T10:00:00+02:00") == pd.Timestamp("2026-10-30T08:00Z")
    assert parse_since(str(T0)) == pd.Timestamp(T0, unit="ms", tz="UTC")


@pytest.mark.integration
def test_replay_on_an_s3_lake(s3_lake):
    write_quarantine(s3_lake, quarantine_frame([
        dead_letter(event(10), "event_type: an older collector"),
        dead_letter(event(11, properties={}), "properties.product_id: needs the product")]))

    first = replay(s3_lake, rules=TODAY)
    again = replay(s3_lake, rules=TODAY)

    assert (first.replayed, first.written, first.still_quarantined) == (
        1, 1, {"collector: properties.product_id": 1})
    assert (again.replayed, again.previously_replayed) == (0, 1)
    assert landed(s3_lake)["event_id"].tolist() == ["e10"]
