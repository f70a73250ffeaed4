"""One local Spark session for the module's tests (its JVM starts once: ~5 s)."""
import pytest

from recsys.core.settings import Settings


@pytest.fixture(scope="session")
def spark():
    from recsys.core.spark.session import spark_session

    session = spark_session(Settings(spark_master="local[2]", spark_shuffle_partitions=4,
                                     spark_driver_memory="1g"))
    yield session
    session.stop()
