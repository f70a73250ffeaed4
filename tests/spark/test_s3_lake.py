"""The spark engine on an `s3://` lake (a real S3-speaking server: moto in server mode):
its tasks read and write the lake through boto3, in the same layout as the pandas engine."""
import pandas as pd
import pytest

from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.validate.rules import ValidationConfig
from recsys.core.data.lake import Lake
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from tests.spark.engines import assert_same_lakes, run_pandas, run_spark

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NOW = pd.Timestamp("2026-12-01", tz="UTC")


def test_spark_engine_lands_the_same_lake_on_s3(spark, s3_lake, tmp_path):
    config = ShopConfig(events=8_000, seed=9, end=NOW.to_pydatetime(),
                        dirt=DirtConfig(duplicates=0.01, malformed=0.005))
    source = tmp_path / "shop.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    on_pandas = Lake(s3_lake.uri + "-pandas", s3_lake.s3_endpoint_url)
    validation, preprocess = ValidationConfig(), PreprocessConfig()
    ran_a = run_pandas(str(source), on_pandas, NOW, validation, preprocess)
    ran_b = run_spark(spark, str(source), s3_lake, NOW, validation, preprocess)
    counts = assert_same_lakes(on_pandas, s3_lake, ran_a, ran_b)
    assert counts["raw/events"] > 7_900
    assert any(key.startswith("processed/") and "/events/part-" in key
               for key in s3_lake.list("processed/"))
