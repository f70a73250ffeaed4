"""A real cluster's security settings reach every Kafka client (the confluent-kafka producer,
the kafka-python consumers and admin):
security protocol, SASL mechanism and user, the password read from its file, the CA file."""
import pytest

from recsys.core.settings import Settings
from recsys.streaming.kafka_bus import KafkaBus, KafkaClientConfig
from recsys.streaming.runtime import kafka_client_config


@pytest.fixture
def secured(tmp_path):
    (tmp_path / "kafka_password").write_text("s3cret-from-file\n")
    return Settings(event_bus="kafka", kafka_bootstrap="broker-1:9093,broker-2:9093",
                    kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                    kafka_username="recsys", kafka_password_file=tmp_path / "kafka_password",
                    kafka_ssl_cafile=tmp_path / "ca.pem")


def test_security_settings_become_the_clients_options(secured, tmp_path):
    client = kafka_client_config(secured)
    assert client.bootstrap == "broker-1:9093,broker-2:9093"
    assert client.options() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "recsys", "sasl_plain_password": "s3cret-from-file",
        "ssl_cafile": str(tmp_path / "ca.pem")}
    assert client.librdkafka_options() == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "recsys", "sasl.password": "s3cret-from-file",
        "ssl.ca.location": str(tmp_path / "ca.pem")}
    assert "s3cret" not in repr(client)
    assert KafkaClientConfig("b:9092").options() == {"security_protocol": "PLAINTEXT"}
    assert KafkaClientConfig("b:9092").librdkafka_options() == {
        "security.protocol": "PLAINTEXT"}


def test_the_bus_passes_them_to_its_producer_and_consumers(secured, monkeypatch):
    """The producer and the consumers are confluent-kafka's (librdkafka keys)."""
    made = []

    class Producer:
        def __init__(self, config):
            made.append(("Producer", config))

        def list_topics(self, topic, timeout):  # the bus's start asks for metadata
            return None

    class Consumer:
        def __init__(self, config):
            made.append(("Consumer", config))

        def subscribe(self, topics, on_assign=None, on_revoke=None):
            made.append(("subscribe", {"topics": topics}))

    import confluent_kafka

    from recsys.streaming import kafka_producer

    monkeypatch.setattr(kafka_producer, "Producer", Producer)
    monkeypatch.setattr(confluent_kafka, "Consumer", Consumer)
    bus = KafkaBus(kafka_client_config(secured), topic="t", idempotent=True)
    bus._consumer("g", "c")
    assert [name for name, _ in made] == ["Producer", "Consumer", "subscribe"]
    assert made.pop() == ("subscribe", {"topics": ["t"]})
    (_, producer), (_, consumer) = made
    assert producer["bootstrap.servers"] == "broker-1:9093,broker-2:9093"
    assert (producer["security.protocol"], producer["sasl.mechanism"],
            producer["sasl.username"], producer["sasl.password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "recsys", "s3cret-from-file")
    assert producer["ssl.ca.location"].endswith("ca.pem")
    assert (producer["acks"], producer["enable.idempotence"]) == ("all", True)
    assert producer["allow.auto.create.topics"] is False
    assert consumer["bootstrap.servers"] == "broker-1:9093,broker-2:9093"
    assert (consumer["security.protocol"], consumer["sasl.mechanism"],
            consumer["sasl.username"], consumer["sasl.password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "recsys", "s3cret-from-file")
    assert consumer["ssl.ca.location"].endswith("ca.pem")
    assert (consumer["enable.auto.commit"], consumer["allow.auto.create.topics"]) == (
        False, False)
