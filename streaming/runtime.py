"""Builds the real-time parts from Settings (the edge: CLI, `make stream`, benchmarks)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import redis

from recsys.core.data.lake import Lake
from recsys.core.errors import ConfigError
from recsys.core.online.bearer_keys import (
    BearerKeys,
    a_surface_key,
    configured_keys,
    metrics_keys,
    surface_keys,
)
from recsys.core.settings import Settings
from recsys.streaming.access import KEY_FILE_NAME
from recsys.streaming.bus import BusUnavailable, EventBus
from recsys.streaming.collector import CollectorAccess
from recsys.streaming.durability import DurabilityGuard, require_durable
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.partitions import EVERYTHING, Membership
from recsys.streaming.processor import ProcessorConfig, SessionProcessor
from recsys.streaming.quarantine_sink import QuarantineSink, QuarantineSinkConfig
from recsys.streaming.supervisor import Supervisor
from recsys.streaming.user_binding import NO_BINDING, UserBinding

if TYPE_CHECKING:
    from recsys.streaming.kafka_bus import KafkaClientConfig

log = logging.getLogger(__name__)


def build_bus(settings: Settings, member: Membership = EVERYTHING,
              durability: DurabilityGuard | None = None) -> EventBus:
    """The bus as `member` of its worker group sees it (the collector: every partition);
    `durability`: check the Redis keeps what it acknowledges before each write."""
    if settings.event_bus == "redis":
        from recsys.streaming.redis_bus import RedisStreamBus

        return RedisStreamBus(settings.bus_url, stream=settings.event_stream,
                              max_length=settings.bus_max_length,
                              dedup_seconds=settings.bus_dedup_seconds,
                              dead_letter_length=settings.bus_dead_letter_max_length,
                              socket_timeout=settings.bus_socket_timeout_seconds,
                              partitions=settings.bus_partitions, member=member,
                              durability=durability)
    if settings.event_bus == "kafka":
        _kafka_bootstrap(settings)
        if member != EVERYTHING:  # Kafka's consumer group shares the partitions
            log.warning("--member %s is not used on Kafka: the consumer group shares the "
                        "topic's partitions among its members (give each a --consumer)",
                        member)
        return build_kafka_bus(settings)
    raise ConfigError(f"unknown event_bus {settings.event_bus!r}; allowed: redis, kafka")


def _kafka_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ConfigError("event_bus is 'kafka' but RECSYS_KAFKA_BOOTSTRAP is not set")
    return settings.kafka_bootstrap


def kafka_client_config(settings: Settings) -> KafkaClientConfig:
    """The Kafka clients' address and credentials (the SASL password read from its file)."""
    from recsys.streaming.kafka_bus import KafkaClientConfig

    password = None
    if settings.kafka_password_file is not None:
        password = settings.kafka_password_file.read_text().strip()
    return KafkaClientConfig(
        _kafka_bootstrap(settings), settings.kafka_security_protocol,
        settings.kafka_sasl_mechanism, settings.kafka_username, password,
        str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)


def kafka_topic(settings: Settings) -> str:
    return settings.event_stream.replace(":", ".")


def build_kafka_bus(settings: Settings) -> EventBus:
    """The Kafka bus, after its topics were created when missing or checked
    (`kafka_topics`): a topic that differs from the settings is a ConfigError."""
    from recsys.streaming.kafka_bus import KafkaBus
    from recsys.streaming.kafka_topics import ensure_topics, event_topics

    client = kafka_client_config(settings)
    specs = event_topics(kafka_topic(settings), settings.kafka_partitions,
                         settings.kafka_replication_factor, settings.kafka_retention_ms,
                         settings.kafka_cleanup_policy)
    try:
        ensure_topics(specs, client.bootstrap, client.options(),
                      create=settings.kafka_topics == "create",
                      timeout_seconds=settings.bus_socket_timeout_seconds)
    except ConfigError:
        raise
    except Exception as exc:  # no broker: NoBrokersAvailable, timeouts
        raise BusUnavailable(f"Kafka at {client.bootstrap} unavailable: {exc}") from exc
    return KafkaBus(client, topic=kafka_topic(settings),
                    dedup_seconds=settings.bus_dedup_seconds,
                    timeout_seconds=settings.bus_socket_timeout_seconds,
                    session_timeout_ms=int(settings.kafka_session_timeout_seconds * 1000),
                    idempotent=settings.kafka_idempotent_producer)


def build_collector_bus(settings: Settings) -> EventBus:
    """The bus the collector publishes to, refusing a Redis that would lose what the
    collector acknowledges (unless `allow_volatile_bus`): at start (ConfigError), then on
    every new connection and every `bus_durability_check_seconds` (503 while it is not)."""
    if settings.event_bus != "redis":
        return build_bus(settings)
    with redis.Redis.from_url(settings.bus_url,
                              socket_timeout=settings.bus_socket_timeout_seconds) as probe:
        require_durable(probe, settings.allow_volatile_bus)
    guard = None if settings.allow_volatile_bus \
        else DurabilityGuard(settings.bus_durability_check_seconds)
    return build_bus(settings, durability=guard)


def collector_access(settings: Settings) -> CollectorAccess:
    """The collector's write keys (settings, a watched key file, or the embedded default's
    generated key), allowed origins and rate."""
    keys = surface_keys(settings.collector_write_keys, settings.collector_write_keys_file,
                        settings.state_dir, KEY_FILE_NAME,
                        "the collector's write keys (RECSYS_COLLECTOR_WRITE_KEYS or "
                        "RECSYS_COLLECTOR_WRITE_KEYS_FILE)")
    origins = tuple(o.strip() for o in settings.collector_allowed_origins.split(",")
                    if o.strip())
    return CollectorAccess(keys, origins, settings.collector_rate_per_second,
                           client_rate_per_second=settings.collector_client_rate_per_second,
                           binding=user_binding(settings),
                           metrics_keys=metrics_keys(settings.metrics_token,
                                                     settings.metrics_token_file,
                                                     settings.state_dir))


def user_binding(settings: Settings) -> UserBinding:
    """The collector's user binding (off unless RECSYS_COLLECTOR_USER_BINDING says)."""
    if settings.collector_user_binding == "off":
        return NO_BINDING
    keys = None
    if settings.collector_user_signing_keys or settings.collector_user_signing_keys_file:
        keys = BearerKeys(configured_keys(settings.collector_user_signing_keys),
                          settings.collector_user_signing_keys_file,
                          what="user signing keys (RECSYS_COLLECTOR_USER_SIGNING_KEYS or "
                               "RECSYS_COLLECTOR_USER_SIGNING_KEYS_FILE)")
    return UserBinding(settings.collector_user_binding, keys)


def a_write_key(settings: Settings) -> str:
    """A key local tools (`recsys stream replay`) send: the first configured one."""
    return a_surface_key(settings.collector_write_keys, settings.collector_write_keys_file,
                         settings.state_dir, KEY_FILE_NAME)


def feast_push(settings: Settings) -> Callable[[pd.DataFrame], int]:
    """Write session features to the `user_session` view's online store (Feast's own
    online_write_batch, protos built directly: see feature_repo/features/session_writer.py)."""
    from recsys.feature_repo.features.session_writer import SessionFeatureWriter
    from recsys.feature_repo.features.store import apply_repo, open_store

    store, repo = open_store(settings)
    apply_repo(store, repo)
    return SessionFeatureWriter(store).write


def catalogue_categories(settings: Settings) -> dict[str, str]:
    from recsys.core.online.catalogue import Catalogue

    return Catalogue.from_lake(Lake(settings.lake, settings.s3_endpoint_url)).categories


def build_processor(settings: Settings, config: ProcessorConfig | None = None,
                    push: Callable[[pd.DataFrame], int] | None = None) -> SessionProcessor:
    """The session processor; `config.member` says which partitions it owns."""
    config = config or ProcessorConfig()
    config.namespace = settings.event_stream
    config.partitions = settings.bus_partitions
    if settings.event_bus == "kafka":
        # the topic's partitions are the processor's: watermarks and cart timers per Kafka
        # partition, owned by whichever member the group gives it; no read-ahead, so that a
        # rebalance (which happens inside a read) never comes while a batch is in flight
        config.partitions = settings.kafka_partitions
        config.member = EVERYTHING
        config.read_ahead = False
    return SessionProcessor(build_bus(settings, config.member),
                            redis.Redis.from_url(settings.bus_url),
                            push or feast_push(settings), catalogue_categories(settings),
                            config)


def build_sink(settings: Settings, config: SinkConfig | None = None,
               member: Membership = EVERYTHING) -> LakeSink:
    return LakeSink(build_bus(settings, member), Lake(settings.lake, settings.s3_endpoint_url),
                    config)


def build_quarantine_sink(settings: Settings,
                          config: QuarantineSinkConfig | None = None) -> QuarantineSink | None:
    """The worker landing refused events in the lake's quarantine zone (Redis Streams; with
    Kafka the dead letters are a topic of their own, consumed by the shop's tooling)."""
    bus = build_bus(settings)
    if not hasattr(bus, "dead_letter_bus"):
        return None
    return QuarantineSink(bus.dead_letter_bus(), Lake(settings.lake, settings.s3_endpoint_url),
                          config)


@dataclass
class StreamWorkers:
    """The workers `recsys stream up` runs beside its collector, and their supervisor."""

    processor: SessionProcessor
    sink: LakeSink
    quarantine: QuarantineSink | None
    supervisor: Supervisor

    def health(self) -> tuple[bool, dict]:
        """For the collector's `/health`: whether all run, and each one's status and lag."""
        status = self.supervisor.status()
        groups = [("processor", self.processor.bus, self.processor.config.group),
                  ("sink", self.processor.bus, self.sink.config.group)]
        if self.quarantine is not None:
            groups.append(("quarantine", self.quarantine.bus, self.quarantine.config.group))
        for name, bus, group in groups:
            if not hasattr(bus, "lag"):  # Redis Streams and Kafka report it; another may not
                status[name]["lag"] = f"unknown: {type(bus).__name__} does not report it"
                continue
            try:
                status[name]["lag"] = bus.lag(group)
            except Exception as exc:  # health must answer even when the bus does not
                status[name]["lag"] = f"unknown: {exc}"
        return self.supervisor.healthy(), status


def build_stream_workers(settings: Settings, push: Callable[[pd.DataFrame], int] | None = None,
                         processor_config: ProcessorConfig | None = None,
                         sink_config: SinkConfig | None = None,
                         quarantine_config: QuarantineSinkConfig | None = None
                         ) -> StreamWorkers:
    """The processor, the lake sink and the quarantine sink under one supervisor, which
    retries passing failures as long as they last (`stream_retry_*` settings) and stops a
    worker after `stream_worker_max_failures` failures a retry does not mend."""
    processor = build_processor(settings, processor_config, push)
    sink = build_sink(settings, sink_config)
    quarantine = build_quarantine_sink(settings, quarantine_config)
    runs = {"processor": lambda stop: processor.run(stop=stop),
            "sink": lambda stop: sink.run(stop=stop)}
    if quarantine is not None:
        runs["quarantine"] = lambda stop: quarantine.run(stop=stop)
    return StreamWorkers(processor, sink, quarantine, supervise(settings, runs))


def supervise(settings: Settings, runs: dict[str, Callable],
              stop: threading.Event | None = None) -> Supervisor:
    """A supervisor of `runs` with the settings' back-off and failure limit (`stop`: the
    event that asks the workers to stop, e.g. set by SIGTERM)."""
    return Supervisor(runs, max_failures=settings.stream_worker_max_failures,
                      first_backoff=settings.stream_retry_first_seconds,
                      max_backoff=settings.stream_retry_max_seconds,
                      stop_event=stop or threading.Event())
