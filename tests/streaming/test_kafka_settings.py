"""A real cluster's security settings reach every Kafka client (producer, consumers, admin):
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
    assert "s3cret" not in repr(client)
    assert KafkaClientConfig("b:9092").options() == {"security_protocol": "PLAINTEXT"}


def test_the_bus_passes_them_to_its_producer_and_consumers(secured, monkeypatch):
    made = []

    class Recording:
        def __init__(self, *topics, **config):
            made.append((type(self).__name__, config))

    class KafkaProducer(Recording):
        pass

    class KafkaConsumer(Recording):
        def subscribe(self, topics, listener=None):
            made.append(("subscribe", {"topics": topics}))

    import kafka

    monkeypatch.setattr(kafka, "KafkaProducer", KafkaProducer)
    monkeypatch.setattr(kafka, "KafkaConsumer", KafkaConsumer)
    bus = KafkaBus(kafka_client_config(secured), topic="t", idempotent=True)
    bus._consumer("g", "c")
    assert [name for name, _ in made] == ["KafkaProducer", "KafkaConsumer", "subscribe"]
    assert made.pop() == ("subscribe", {"topics": ["t"]})
    for _, config in made:
        assert config["bootstrap_servers"] == "broker-1:9093,broker-2:9093"
        assert (config["security_protocol"], config["sasl_mechanism"],
                config["sasl_plain_username"], config["sasl_plain_password"]) == (
            "SASL_SSL", "SCRAM-SHA-512", "recsys", "s3cret-from-file")
        assert config["ssl_cafile"].endswith("ca.pem")
    producer = made[0][1]
    assert (producer["acks"], producer["enable_idempotence"]) == ("all", True)
