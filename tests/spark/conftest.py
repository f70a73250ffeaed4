import os

import pytest

from recsys.core.settings import Settings

# One JVM serves every Spark session of the test process, and its Python workers inherit
# the environment it was started with: the S3 test's moto server takes these placeholder
# credentials, so they are set when the tests are collected, before any test (Feast's
# Spark offline store's, say) starts the JVM. A cluster's pods get real ones from a Secret.
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                      ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def spark():
    from recsys.core.data.spark.session import spark_session

    session = spark_session(Settings(spark_master="local[2]", spark_shuffle_partitions=4,
                                     spark_driver_memory="1g"))
    yield session
    session.stop()
