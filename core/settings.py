"""Runtime settings from the environment (prefix `RECSYS_`).

The embedded default keeps everything under one state directory; production swaps
each location for a URI by setting an environment variable. Nothing else changes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_EVENT_STREAM = "recsys:events"
DEFAULT_REGISTERED_MODEL = "recsys-recommender"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_IMAGE = "localhost/recsys:0.2.0"


class Settings(BaseSettings):
    """Where the project's state lives and which services it talks to."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore",
                                      populate_by_name=True, use_attribute_docstrings=True)

    image: str = DEFAULT_IMAGE
    """The project image (`make image` builds it under this tag): every pipeline
    component's `base_image` when the pipeline is compiled."""

    state_dir: Path = Field(default=Path(".recsys"))
    """Local state directory holding the lake, MLflow store, Feast files and reports."""

    lake_uri: str | None = None
    """Data lake root: a local folder or `s3://bucket/prefix`; default `<state_dir>/lake`."""

    mlflow_tracking_uri: str | None = Field(default=None, validation_alias=AliasChoices(
        "RECSYS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"))
    """MLflow tracking + registry URI (RECSYS_MLFLOW_TRACKING_URI; MLflow's own
    MLFLOW_TRACKING_URI is read when it is not set, and then MLFLOW_REGISTRY_URI, when set,
    names the registry); default a SQLite file in the state directory."""

    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, moto, ...); None means AWS itself or AWS_ENDPOINT_URL."""

    benchmark_data: Path | None = None
    """Folder of the public data sets `recsys bench models` reads by default
    (`<folder>/movielens-small`); `make bench` sets it to `../shared/data`."""

    engine: Literal["pandas", "spark"] = "pandas"
    """Engine of the batch data path (extract, validate, preprocess, feature tables):
    `pandas` in this process (the embedded default, fastest up to a few million events) or
    `spark` (Apache Spark at `spark_master`; docs/spark.md)."""

    spark_master: str = "local[*]"
    """Spark master of the `spark` engine: `local[*]` (every core of this machine), or a
    cluster's (`k8s://https://...`, `spark://host:7077`)."""

    spark_driver_memory: str = "2g"
    """JVM heap of the Spark driver (in local mode the driver is also the executor)."""

    spark_shuffle_partitions: int = Field(default=16, gt=0)
    """`spark.sql.shuffle.partitions`: how many groups a keyed step is split into (more
    partitions: less memory per Python task)."""

    spark_split_mb: int = Field(default=128, gt=0)
    """The spark engine reads a JSONL source file larger than this with one task per this
    many MB (line-aligned byte ranges); smaller files, and other layouts, one task each."""

    spark_image: str | None = None
    """The Spark image (`make image` builds it: the project image plus a Java runtime,
    PySpark and Spark's container entrypoint): the image of the pipeline's spark-data step
    and of a SparkApplication's driver and executors; default the project image's name
    with `-spark` (`localhost/recsys-spark:<version>`)."""

    registered_model_name: str = DEFAULT_REGISTERED_MODEL
    """Name of the MLflow registered model the gate promotes."""

    registry_lock_url: str | None = None
    """What serialises alias moves across machines: the registry's PostgreSQL
    (`postgresql://...`) or a lock file path; default derived from the tracking URI (an
    advisory lock on a PostgreSQL backend, a file beside a SQLite one). Needed with an
    HTTP tracking server."""

    redis_url: str = Field(default=DEFAULT_REDIS_URL,
                           validation_alias=AliasChoices("RECSYS_REDIS_URL", "REDIS_URL"))
    """Redis used by the event bus, the cache and the production online store
    (RECSYS_REDIS_URL; the conventional REDIS_URL is read when it is not set)."""

    feast_profile: str = "local"
    """Feast profile: `local` (SQLite online store, file registry) or `production`."""

    feast_registry_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/feast"
    """SQL registry of the production Feast profile."""

    feast_offline_store: Literal["file", "spark"] = "file"
    """Feast's offline store: `file` (Parquet read by Feast in this process) or `spark`
    (Feast's Spark offline store for `get_historical_features` and its Spark compute engine
    for materialization, on `spark_master`)."""

    feast_key_ttl_seconds: int = 7 * 86_400
    """Seconds a user's online features live in Redis without an update (production)."""

    event_bus: str = "redis"
    """Event bus of the real-time path: `redis` (Redis Streams at redis_url) or `kafka`."""

    event_stream: str = DEFAULT_EVENT_STREAM
    """Redis stream key (or Kafka topic) carrying collected events; every other Redis key of
    the project (session state, recent items, cache) is namespaced under it."""

    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers (host:port,...) when event_bus is `kafka`."""

    kafka_partitions: int = Field(default=12, ge=1, le=1024)
    """Partitions of the events topic: the most processors (and sinks) that share the work;
    a user's events all go to partition blake2b(user_id) % this (docs/streaming.md)."""

    kafka_replication_factor: int = Field(default=3, ge=1)
    """Replicas of each topic partition the app creates (a single-broker test: 1)."""

    kafka_retention_ms: int = Field(default=7 * 86_400_000, gt=0)
    """`retention.ms` of the events and dead-letter topics: how long the broker keeps events
    (the lake sink lands them well within it)."""

    kafka_cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    """`cleanup.policy` of the events and dead-letter topics (events are not compactable:
    `delete`)."""

    kafka_topics: Literal["create", "check"] = "create"
    """`create`: create the events and dead-letter topics when missing; `check`: only check
    them (a managed Kafka where the app may not create topics). Either way the app refuses to
    start on a topic whose partitions, retention or cleanup policy differ from the settings."""

    kafka_session_timeout_seconds: float = Field(default=10.0, ge=1.0)
    """A consumer not heard of for this long leaves its group: its partitions go to the
    live members (Kafka's `session.timeout.ms`)."""

    kafka_idempotent_producer: bool = True
    """The collector's producer is idempotent (`enable.idempotence`: a retried send is not
    stored twice). On Tansu 0.6 it publishes, and after a timed-out send the broker fences
    the producer: the collector answers that request 503 and starts a new producer."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = \
        "PLAINTEXT"
    """How the Kafka clients talk to the brokers (`security.protocol`)."""

    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism with a SASL_* security protocol."""

    kafka_username: str | None = None
    """SASL user name."""

    kafka_password_file: Path | None = None
    """A file holding the SASL password (one line; read at start)."""

    kafka_ssl_cafile: Path | None = None
    """CA certificate file the brokers' TLS certificates are checked against (SSL, SASL_SSL);
    default the system's."""

    bus_redis_url: str | None = None
    """Redis of the event bus and the stream processor's state, when it is not redis_url:
    a durable one (infra/redis/bus.conf; `make stream` starts it on port 6380)."""

    bus_max_length: int = Field(default=1_000_000, gt=0)
    """Back-pressure bound: the collector answers 503 when the slowest consumer group has
    this many events not yet acknowledged."""

    bus_dedup_seconds: int = Field(default=86_400, gt=0)
    """An event_id seen again within this window is a duplicate (one small Redis key per id
    for the window: memory grows with events per window, not with time)."""

    bus_partitions: int = Field(default=1, ge=1, le=1024)
    """Redis streams the events are spread over by a hash of user_id (one user's events
    always in one). N processors (and sinks) share them, member K owning the partitions
    p % N == K (`--member K/N`). Change it only with every group's lag at 0."""

    collector_write_keys: str | None = None
    """Comma-separated keys the collector accepts (`Authorization: Bearer <key>`)."""

    collector_write_keys_file: Path | None = None
    """A file of write keys, one a line, read again when it changes (rotation without a
    restart). With neither set, the key in `<state_dir>/secrets/collector_write_key` (created
    on first start)."""

    collector_allowed_origins: str = ""
    """Comma-separated shop origins (`https://shop.example`) whose pages may post events from
    the browser (CORS); none by default."""

    collector_rate_per_second: float = Field(default=2_000.0, gt=0)
    """Events a second one write key may send, all its shoppers together (burst: 5 s worth;
    a request takes one token per event); a batch over it gets 429 with Retry-After, nothing
    of it stored."""

    collector_client_rate_per_second: float = Field(default=100.0, gt=0)
    """Events a second one client address may send (burst: 5 s worth), well below the
    key's so that one client cannot use up every shopper's budget; raise it for a backend
    that posts for many visitors, or for `recsys stream replay`."""

    collector_forwarded_allow_ips: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices(
            "RECSYS_COLLECTOR_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"))
    """Comma-separated addresses or networks (CIDR) of the proxies whose `X-Forwarded-For`
    names the client the collector rate-limits (the ingress); from other peers the header is
    ignored. Never `*` on a port clients reach directly (FORWARDED_ALLOW_IPS is read too)."""

    collector_user_binding: Literal["off", "require", "anonymous"] = "off"
    """`require`: events must carry the shop backend's HMAC signature of their user id
    (`user_signature`), else 422; `anonymous`: unsigned events are kept under an anonymous
    id, never attributed to the user they name; `off`: not checked."""

    collector_user_signing_keys: str | None = None
    """Comma-separated HMAC keys the shop's backend signs user ids with (user binding)."""

    collector_user_signing_keys_file: Path | None = None
    """A file of signing keys, one a line, read again when it changes (rotation)."""

    allow_volatile_bus: bool = False
    """Let the collector run against a Redis that can lose acknowledged events (no AOF with
    fsync on every write, or evicting keys): tests and throwaway demos only."""

    bus_dead_letter_max_length: int = Field(default=100_000, gt=0)
    """Back-pressure bound of the dead-letter stream: the collector answers 503 rather than
    drop refused events the quarantine sink has not landed yet."""

    bus_socket_timeout_seconds: float = Field(default=5.0, gt=0)
    """Seconds a bus Redis call may take; past it the collector answers 503 saying the
    outcome is unknown (retry with the same event ids: never stored twice)."""

    bus_durability_check_seconds: float = Field(default=5.0, gt=0)
    """How often the collector checks again that the bus Redis is durable (also on every new
    connection); while it is not, 503 and `/health` says why."""

    stream_retry_first_seconds: float = Field(default=1.0, gt=0)
    """First back-off of a stream worker after a passing failure (bus or lake unreachable,
    disk full) under `recsys stream up`; it doubles up to `stream_retry_max_seconds`."""

    stream_retry_max_seconds: float = Field(default=30.0, gt=0)
    """Longest back-off between a stream worker's retries: passing failures are retried as
    long as they last."""

    stream_worker_max_failures: int = Field(default=5, gt=0)
    """Failures in a row of a kind no retry mends (a bug: TypeError, KeyError ...) after
    which a stream worker is stopped; the collector keeps serving and `/health` names it."""

    log_level: str = "INFO"
    """Log level of the project's loggers (DEBUG, INFO, WARNING, ...)."""

    no_progress: bool = False
    """Turn progress bars off (they are also off when stderr is not a terminal)."""

    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    """Largest request body serving accepts: REST (413 above it) and each gRPC message
    (RESOURCE_EXHAUSTED)."""

    http_max_header_bytes: int = Field(default=65_536, gt=0)
    """Largest request head (request line and headers) the HTTP servers read: serving's
    REST and metrics ports, the collector, the stream workers, the Evidently UI (431 and
    the connection closed above it)."""

    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    """Time a client has to send a whole request head, counted from its first byte (or
    the connection's opening) on the same servers (408 and closed after it)."""

    monitor_ui_secret: str | None = None
    """Comma-separated secrets `recsys monitor ui` requires for writes (header
    `evidently-secret`, as Evidently's `RemoteWorkspace` sends it); reading needs none."""

    monitor_ui_secret_file: Path | None = None
    """A file of UI secrets, one a line; with neither set,
    `<state_dir>/secrets/monitor_ui_secret` (created on first start)."""

    monitor_ui_hosts: str = ""
    """Comma-separated host names `recsys monitor ui` answers as besides 127.0.0.1,
    localhost and ::1 (e.g. the authenticating proxy's); other `Host` headers get 403."""

    serving_token: str | None = None
    """Comma-separated service tokens serving accepts on inference routes, REST
    (`Authorization: Bearer <token>`) and gRPC (`authorization` metadata)."""

    serving_token_file: Path | None = None
    """A file of service tokens, one a line, read again when it changes. With neither set,
    the token in `<state_dir>/secrets/serving_token` (created on first start)."""

    serving_admin_token: str | None = None
    """Comma-separated admin tokens for MLServer's model repository API (`/v2/repository/*`,
    load/unload), which is off unless `serving_repository_api` is set."""

    serving_admin_token_file: Path | None = None
    """A file of admin tokens; with neither set (and the repository API on), the token in
    `<state_dir>/secrets/serving_admin_token`."""

    serving_repository_api: bool = False
    """Turn on MLServer's model repository API (load/unload), admin token required."""

    metrics_token: str | None = None
    """Comma-separated tokens Prometheus sends to scrape `/metrics` (collector) and
    `/recsys/metrics` (serving; a service token works there too)."""

    metrics_token_file: Path | None = None
    """A file of metrics tokens; with neither set, `<state_dir>/secrets/metrics_token`."""

    pushgateway_url: str | None = None
    """Prometheus Pushgateway every pipeline run pushes its outcome to (status, step
    durations, the gate's decision), e.g. `http://pushgateway:9091`; unset: nothing is
    pushed. On a cluster the exit handler reads it from the ConfigMap
    `recsys-pipeline-outcome` (key `pushgateway_url`)."""

    retention_raw_days: int | None = Field(default=None, ge=0)
    """Days of the lake's raw zone (`raw/events/`) that `recsys lake retain` (a step of the
    monitoring pipeline) keeps: whole date partitions older than this are deleted, today's
    never; unset or 0: kept forever. Keep it above the longest training window (lookback
    plus holdout: 97 days for the weekly retrain)."""

    retention_clean_days: int | None = Field(default=None, ge=0)
    """Days of the clean zone (`clean/events/`) kept, like the raw zone's: monitoring reads
    the champion's training window from it."""

    retention_quarantine_days: int | None = Field(default=None, ge=0)
    """Days of the quarantine zone (`quarantine/`: refused rows and dead letters, and the
    record of those replayed) kept, by the day of the row (the event's time; a dead letter's
    receipt). Rows with no time (the `unknown` partition) are kept."""

    retention_request_log_days: int | None = Field(default=None, ge=0)
    """Days of serving's request log (`serving/requests/`) kept; prediction drift and served
    quality read the last 8 days of it."""

    retention_reports_days: int | None = Field(default=None, ge=0)
    """Days of the monitoring reports (`reports/`) kept; reports already in the Evidently
    workspace (`<state_dir>/evidently`) stay there."""

    serving_max_users_per_request: int = Field(default=100, gt=0)
    """Most users one seldon-core v1 batch request may ask for (400 above it)."""

    model_path: str | None = None
    """Exported champion folder (`recsys registry export`) the seldon-core v1 wrapper serves."""

    model_sha256: str | None = None
    """SHA-256 that export printed for that folder; the wrapper refuses other files."""

    @property
    def lake(self) -> str:
        """The resolved lake URI."""
        return self.lake_uri or str((self.state_dir / "lake").resolve())

    @property
    def bus_url(self) -> str:
        """The resolved Redis URL of the event bus."""
        return self.bus_redis_url or self.redis_url

    @property
    def spark_image_tag(self) -> str:
        """The resolved Spark image."""
        if self.spark_image:
            return self.spark_image
        name, _, tag = self.image.rpartition(":")
        if not name or "/" in tag:  # no tag, or a registry port: `host:5000/recsys`
            name, tag = self.image, "latest"
        return f"{name}-spark:{tag}"

    @property
    def tracking_uri(self) -> str:
        """The resolved MLflow tracking URI."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"


def load_settings() -> Settings:
    """Read settings from the environment; call once at the edge and pass down."""
    return Settings()
