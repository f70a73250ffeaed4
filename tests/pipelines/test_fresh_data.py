"""Scheduled runs see new data: the source's listing keys extract's cache."""
import logging
import os

import boto3
import pandas as pd
import pytest
from kfp import dsl, local

from recsys.components.extract.component import extract_op, fingerprint_op
from recsys.components.extract.extract import fingerprint_source
from recsys.core.data.lake import Lake
from tests.components.extract.test_extract import rich, write_jsonl


def events(prefix: str, count: int) -> list[dict]:
    now_ms = int(pd.Timestamp.now(tz="UTC").value // 10**6)
    return [rich(f"{prefix}{i}", user=f"u{i % 5}", item=f"i{i % 7}",
                 ts=now_ms - (count - i) * 60_000) for i in range(count)]


def test_a_local_source_fingerprint_follows_its_files(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    write_jsonl(folder / "day1.jsonl", events("a", 5))
    lake = Lake(str(tmp_path / "lake"))
    first = fingerprint_source(str(folder), lake)
    assert fingerprint_source(str(folder), lake) == first  # same data, same key
    write_jsonl(folder / "day2.jsonl", events("b", 5))
    second = fingerprint_source(str(folder), lake)
    assert second != first
    stamp = os.stat(folder / "day2.jsonl").st_mtime_ns
    write_jsonl(folder / "day2.jsonl", events("c", 5))  # rewritten in place
    os.utime(folder / "day2.jsonl", ns=(stamp + 10**9, stamp + 10**9))
    assert fingerprint_source(str(folder), lake) not in (first, second)


def test_the_lake_source_fingerprint_follows_the_raw_zone(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    empty = fingerprint_source("lake", lake)
    lake.write_bytes("raw/events/event_date=2026-12-01/hour=10/part-a.parquet", b"x")
    assert fingerprint_source("lake", lake) != empty


@dsl.pipeline(name="extract-fresh")
def extract_fresh(source: str, lake_uri: str, s3_endpoint_url: str):
    fingerprint = fingerprint_op(source=source, lake_uri=lake_uri,
                                 s3_endpoint_url=s3_endpoint_url, source_sha256="")
    fingerprint.set_caching_options(False)
    extract_op(source=source, lake_uri=lake_uri, s3_endpoint_url=s3_endpoint_url,
               source_sha256=fingerprint.output)


@pytest.mark.integration
@pytest.mark.slow
def test_a_recurring_run_re_extracts_new_s3_data_and_reuses_the_same(tmp_path, s3_server,
                                                                    caplog):
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="fresh-data")  # moto's state outlives one test: own bucket
    write_jsonl(tmp_path / "day1.jsonl", events("a", 20))
    client.upload_file(str(tmp_path / "day1.jsonl"), "fresh-data", "incoming/day1.jsonl")
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "root"), enable_caching=True)
    lake_uri = str(tmp_path / "lake")
    params = {"source": "s3://fresh-data/incoming/", "lake_uri": lake_uri,
              "s3_endpoint_url": s3_server}

    def run() -> bool:
        """Run the steps; True when extract came from the cache."""
        caplog.clear()
        with caplog.at_level(logging.INFO):
            extract_fresh(**params)
        return any("extract-op cache hit" in r.getMessage() for r in caplog.records)

    def raw_ids() -> set[str]:
        lake = Lake(lake_uri)
        frames = [lake.read_table(k, columns=["event_id"]).to_pandas()
                  for k in lake.list("raw/events")]
        return set(pd.concat(frames)["event_id"])

    assert run() is False
    assert raw_ids() == {f"a{i}" for i in range(20)}
    assert run() is True  # the same objects: the cached extract is reused
    write_jsonl(tmp_path / "day2.jsonl", events("b", 10))
    client.upload_file(str(tmp_path / "day2.jsonl"), "fresh-data", "incoming/day2.jsonl")
    assert run() is False  # a new object: extracted again
    assert raw_ids() == {f"a{i}" for i in range(20)} | {f"b{i}" for i in range(10)}
