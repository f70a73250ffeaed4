"""One local Spark session for the module's tests (its JVM starts once: ~5 s)."""
import pytest

from recsys.core.settings import Settings


@pytest.fixture(scope="session")
def spark():
    """Its Python workers inherit the environment of its start: the S3 test's moto server
    takes these placeholder credentials (a cluster's pods get real ones from a Secret)."""
    import os

    from recsys.core.spark.session import spark_session

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    session = spark_session(Settings(spark_master="local[2]", spark_shuffle_partitions=4,
                                     spark_driver_memory="1g"))
    yield session
    session.stop()
