"""A Spark session configured from the project's settings.

Local mode (`local[*]`) needs only a JDK: PySpark's wheel carries Spark and the Hadoop
client. Python tasks run in this interpreter's environment, timestamps are UTC, the UI is
off and the lake is read and written by the tasks through `recsys.core.data.lake` (local folder
or `s3://` via boto3), so no Hadoop file-system connector is needed.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from recsys.core.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recsys.core.settings import Settings

log = logging.getLogger(__name__)
APP_NAME = "recsys-data"


LAUNCHER_KEYS = ("spark.master", "spark.driver.memory")
"""What `spark-submit` decides when it starts the driver (a SparkApplication's, say): a
session in a process it launched keeps them, never the local defaults of the settings."""


def launcher_conf() -> dict[str, str] | None:
    """The configuration `spark-submit` started this Python driver with (a SparkApplication's
    driver pod, say), or None when no launcher did: its JVM is already running and hands
    PySpark the gateway's port."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to the launcher's JVM
    return dict(SparkConf().getAll())


def spark_conf(settings: "Settings") -> dict[str, str]:
    """The Spark configuration the engine runs with (also what a SparkApplication gets)."""
    return {
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # a keyed task holds one group's rows: bound the Arrow batches a task receives
        "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
        # the driver collects the interactions (one row per user and item of the window)
        # for the matrix: allow more than Spark's 1g default of task results
        "spark.driver.maxResultSize": "4g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN",
    }


def python_workers_use_this_interpreter() -> None:
    """Spark's Python workers must run this interpreter: they unpickle functions of recsys
    (and Feast's) that only its environment can import. A SparkContext takes the variables
    when it starts, so anything that may start one (this engine, Feast's Spark offline
    store and compute engine) calls this first; a variable already set is kept."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def spark_session(settings: "Settings") -> "SparkSession":
    """The (one per process) Spark session for `settings`; raises ConfigError when PySpark
    is not installed (`pip install 'recsys[spark]'`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("the spark engine needs PySpark: pip install 'recsys[spark]'") from exc
    python_workers_use_this_interpreter()
    builder = SparkSession.builder.appName(APP_NAME)
    given = launcher_conf()
    launched = given is not None
    for key, value in spark_conf(settings).items():  # the launcher's own choices stand
        if given is None or (key not in given and key not in LAUNCHER_KEYS):
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    conf = session.sparkContext.getConf()
    log.info("spark: session on %s (driver memory %s, %s shuffle partitions%s)",
             session.sparkContext.master, conf.get("spark.driver.memory", "1g"),
             session.conf.get("spark.sql.shuffle.partitions"),
             ", launched by spark-submit" if launched else "")
    return session
