"""Topics as code on a real broker (Tansu, `kafka_bootstrap`): the events and dead-letter
topics are created with the settings' partitions, retention and cleanup policy, and the app
refuses a topic that differs, naming both values."""
import logging
import uuid

import pytest

from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.streaming.kafka_topics import TopicSpec, _differences, ensure_topics, event_topics
from recsys.streaming.runtime import build_bus


def test_differences_name_the_brokers_value_and_the_settings():
    spec = TopicSpec("t", 4, 1, 3_600_000, "delete")
    assert _differences(spec, {0, 1, 2, 3}, spec.configs()) == []
    found = _differences(spec, {0, 1, 2}, {"retention.ms": "60000", "cleanup.policy": "delete"})
    assert found == ["t has 3 partitions, the settings say 4",
                     "t has retention.ms=60000, the settings say 3600000"]


def topic_name():
    return f"test.{uuid.uuid4().hex[:8]}"


def described(bootstrap, topic):
    from kafka.admin import KafkaAdminClient

    from recsys.streaming.kafka_topics import _described_configs

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return _described_configs(admin, topic)
    finally:
        admin.close()


def partitions_of(bootstrap, topic):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.partitions_for_topic(topic)
    finally:
        consumer.close()


@pytest.mark.integration
def test_missing_topics_are_created_as_the_settings_say(kafka_bootstrap):
    topic = topic_name()
    specs = event_topics(topic, 4, 1, 7_200_000, "delete")
    assert ensure_topics(specs, kafka_bootstrap, {}) == [topic, f"{topic}.dead"]
    assert partitions_of(kafka_bootstrap, topic) == {0, 1, 2, 3}
    assert partitions_of(kafka_bootstrap, f"{topic}.dead") == {0}
    assert described(kafka_bootstrap, topic) == {"retention.ms": "7200000",
                                                 "cleanup.policy": "delete"}
    assert ensure_topics(specs, kafka_bootstrap, {}) == []  # a second start: checked only


@pytest.mark.integration
def test_check_only_refuses_missing_topics(kafka_bootstrap):
    topic = topic_name()
    with pytest.raises(ConfigError, match=rf"topics missing: {topic}, {topic}\.dead"):
        ensure_topics(event_topics(topic, 2, 1, 60_000, "delete"), kafka_bootstrap, {},
                      create=False)
    assert not partitions_of(kafka_bootstrap, topic)  # nothing was created


@pytest.mark.integration
def test_a_topic_that_differs_from_the_settings_is_refused(kafka_bootstrap):
    topic = topic_name()
    ensure_topics(event_topics(topic, 3, 1, 60_000, "delete"), kafka_bootstrap, {})
    with pytest.raises(ConfigError) as refused:
        ensure_topics(event_topics(topic, 4, 1, 120_000, "delete"), kafka_bootstrap, {},
                      create=False)
    assert str(refused.value) == (
        f"Kafka topics differ from the settings: {topic} has 3 partitions, the settings say "
        f"4; {topic} has retention.ms=60000, the settings say 120000; {topic}.dead has "
        "retention.ms=60000, the settings say 120000")


@pytest.mark.integration
def test_a_config_the_broker_does_not_report_is_left_unchecked(kafka_bootstrap, caplog):
    """Tansu 0.6 reports only the configs a topic was created with: a topic made by hand
    without them has its partitions checked, its retention not (a warning says so)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = topic_name()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    with caplog.at_level(logging.WARNING, logger="recsys.streaming.kafka_topics"):
        ensure_topics([TopicSpec(topic, 2, 1, 60_000, "delete")], kafka_bootstrap, {},
                      create=False)
    assert f"Kafka topic {topic}: the broker does not report retention.ms: not checked" \
        in caplog.text


@pytest.mark.integration
def test_the_app_does_not_start_on_a_topic_with_other_partitions(kafka_bootstrap):
    topic = topic_name()
    ensure_topics(event_topics(topic, 2, 1, 3_600_000, "delete"), kafka_bootstrap, {})
    settings = Settings(event_bus="kafka", kafka_bootstrap=kafka_bootstrap, event_stream=topic,
                        kafka_partitions=6, kafka_replication_factor=1,
                        kafka_retention_ms=3_600_000, kafka_idempotent_producer=False)
    with pytest.raises(ConfigError, match=f"{topic} has 2 partitions, the settings say 6"):
        build_bus(settings)
    bus = build_bus(settings.model_copy(update={"kafka_partitions": 2}))
    assert bus.publish([{"event_id": "e1", "user_id": "u1"}]).accepted == 1
    bus.close()
