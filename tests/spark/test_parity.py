"""One definition, two engines: every sample of ../shared/data and a generated shop with
dirt give the same raw, clean and quarantine rows and reasons, the same processed snapshot
and the same feature tables on Spark as on pandas."""
import pandas as pd
import pytest

from recsys.components.extract.on_spark import DEFAULT_SPLIT_BYTES, read_tasks
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.validate.rules import ValidationConfig
from recsys.core.data.lake import Lake
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.errors import UnknownFormatError
from tests.spark.engines import assert_same_lakes, run_pandas, run_spark

pytestmark = pytest.mark.slow
NOW = pd.Timestamp("2026-12-01", tz="UTC")
VALIDATION = ValidationConfig(max_bad_ratio=0.2, max_age_days=20_000)  # samples from 1996 on
PREPROCESS = PreprocessConfig(lookback_days=None)


def both(spark, source, tmp_path, validation=VALIDATION, preprocess=PREPROCESS,
         start=None, split_bytes=DEFAULT_SPLIT_BYTES) -> dict:
    a, b = Lake(str(tmp_path / "pandas")), Lake(str(tmp_path / "spark"))
    ran_a = run_pandas(str(source), a, NOW, validation, preprocess, start)
    ran_b = run_spark(spark, str(source), b, NOW, validation, preprocess, start, split_bytes)
    return assert_same_lakes(a, b, ran_a, ran_b)


@pytest.mark.parametrize("sample, raw_rows, holdout_days, start", [
    ("diginetica", 12_391, 7.0, None),
    ("rees46", 17_429, 0.002, None),  # the rees46 sample spans 7 minutes
    # MovieLens' 100,836 ratings span 1996-2018, one lake file per day in each zone (~6,000
    # fsync'ed files a zone per engine): both read and count every row, land the last 309 days
    ("movielens-small", 10_134, 90.0, pd.Timestamp("2017-06-01", tz="UTC"))])
def test_every_shared_sample_is_the_same_on_both_engines(spark, shared_data, tmp_path, sample,
                                                         raw_rows, holdout_days, start):
    counts = both(spark, shared_data / sample, tmp_path,
                  preprocess=PreprocessConfig(lookback_days=None, holdout_days=holdout_days),
                  start=start)
    assert counts["raw/events"] == raw_rows
    assert counts["train"] > 1000


def test_a_sample_neither_engine_can_read_fails_the_same_way(spark, shared_data, tmp_path):
    # the retailrocket sample holds only its category tree: no events in any known layout
    for run in (lambda: run_pandas(str(shared_data / "retailrocket"), Lake(str(tmp_path / "a")),
                                   NOW, VALIDATION, PREPROCESS),
                lambda: run_spark(spark, str(shared_data / "retailrocket"),
                                  Lake(str(tmp_path / "b")), NOW, VALIDATION, PREPROCESS)):
        with pytest.raises(UnknownFormatError, match="category_tree.csv"):
            run()


def test_a_200k_generated_shop_with_dirt_is_the_same_on_both_engines(spark, tmp_path):
    config = ShopConfig(events=200_000, seed=5, end=NOW.to_pydatetime(), dirt=DirtConfig(
        duplicates=0.01, missing_price=0.02, missing_category=0.01, unknown_event_type=0.005,
        malformed=0.002, future_timestamp=0.002))
    source = tmp_path / "shop"
    source.mkdir()
    write_shop(generate_shop(config), "jsonl", source / "shop.jsonl", config)
    # one file, read by one Spark task per 16 MB range (the pandas engine reads it whole)
    split = 16 * 2**20
    tasks = read_tasks([(str(source / "shop.jsonl"), "jsonl", 0)], split)
    assert len(tasks) >= 5 and [t[3] for t in tasks] == list(range(len(tasks)))
    counts = both(spark, source, tmp_path, split_bytes=split)
    # every kind of dirt was refused by both, for the same reasons
    assert counts["quarantine/events"] > 1_000
    assert counts["clean/events"] > 190_000
