"""The Kafka topics as code: the events topic and its dead-letter topic, their partitions,
retention and cleanup policy from Settings; created when missing (`kafka_topics=create`) and
checked either way: the app refuses to start on a topic that differs from the settings.

Partitions are read from the cluster metadata, retention and cleanup policy with
DescribeConfigs. A broker that does not report a config (Tansu 0.6 reports only the
configs a topic was created with) leaves it unchecked, with a warning naming it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


def event_topics(topic: str, partitions: int, replication_factor: int, retention_ms: int,
                 cleanup_policy: str) -> list[TopicSpec]:
    """The events topic and its dead-letter topic (`<topic>.dead`, one partition: refused
    input has no order to keep and little volume)."""
    return [TopicSpec(topic, partitions, replication_factor, retention_ms, cleanup_policy),
            TopicSpec(f"{topic}.dead", 1, replication_factor, retention_ms, cleanup_policy)]


def ensure_topics(specs: list[TopicSpec], bootstrap: str, options: dict,
                  create: bool = True, timeout_seconds: float = 10.0) -> list[str]:
    """Create the missing topics (`create`) and check every one against its spec; returns
    the names created. Raises ConfigError naming each difference (setting vs broker)."""
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    timeout_ms = int(timeout_seconds * 1000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                             **options)
    metadata = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                             **options)
    try:
        existing = metadata.topics()
        missing = [spec for spec in specs if spec.name not in existing]
        if missing and not create:
            raise ConfigError(
                f"Kafka topics missing: {', '.join(s.name for s in missing)} "
                "(RECSYS_KAFKA_TOPICS=check: create them with the partitions, retention.ms "
                "and cleanup.policy of docs/streaming.md, or set RECSYS_KAFKA_TOPICS=create)")
        for spec in missing:
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions,
                                              spec.replication_factor,
                                              topic_configs=spec.configs())],
                                    timeout_ms=timeout_ms)
            except TopicAlreadyExistsError:  # another worker starting at the same time
                pass
            metadata.topics()  # refresh: the check below reads the new topics' partitions
        differences = []
        for spec in specs:
            differences += _differences(spec, metadata.partitions_for_topic(spec.name),
                                        _described_configs(admin, spec.name))
        if differences:
            raise ConfigError("Kafka topics differ from the settings: " +
                              "; ".join(differences))
        return [s.name for s in missing]
    finally:
        admin.close()
        metadata.close()


def _described_configs(admin, topic: str) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {entry[0]: entry[1] for response in responses
            for resource in response.resources for entry in resource[4]}


def _differences(spec: TopicSpec, partitions: set[int] | None,
                 described: dict[str, str]) -> list[str]:
    found = []
    if len(partitions or ()) != spec.partitions:
        found.append(f"{spec.name} has {len(partitions or ())} partitions, the settings "
                     f"say {spec.partitions}")
    for name, wanted in spec.configs().items():
        if name not in described:
            log.warning("Kafka topic %s: the broker does not report %s: not checked",
                        spec.name, name)
        elif described[name] != wanted:
            found.append(f"{spec.name} has {name}={described[name]}, the settings say "
                         f"{wanted}")
    return found
