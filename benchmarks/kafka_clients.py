"""The two Kafka clients, kafka-python and confluent-kafka (librdkafka, what the bus uses),
on the same broker. Consume: each reads every partition of a topic from its beginning
(assigned, no group join) and turns every record into the bus's `Message` (JSON decoded),
as `KafkaBus.read` does; timed from its first fetch to the last record. Publish: each sends
batches of 100 events of the topic's kind, keyed by user, acks=all, and waits for every
acknowledgement of a batch before the next, as the collector does per request, from
PUBLISH_THREADS threads sharing one producer."""
from __future__ import annotations

import time

import orjson

from recsys.streaming.bus import Message
from recsys.streaming.kafka_bus import FETCH_MAX_BYTES, RECEIVE_MAX_BYTES

TIMEOUT_SECONDS = 120.0
PUBLISH_THREADS = 4
PUBLISH_BATCH = 100


def consume_rates(bootstrap: str, topic: str, partitions: int, events: int) -> dict:
    return {"consume_kafka_python_events_per_second":
            round(_kafka_python(bootstrap, topic, partitions, events)),
            "consume_confluent_kafka_events_per_second":
            round(_confluent(bootstrap, topic, partitions, events))}


def publish_rates(bootstrap: str, topic: str, rows: list[bytes]) -> dict:
    """Events/s each client publishes `rows` (JSON values) to `topic` (a topic of its own)."""
    return {"publish_kafka_python_events_per_second":
            round(_publish(_kafka_python_sender(bootstrap, topic), rows)),
            "publish_confluent_kafka_events_per_second":
            round(_publish(_confluent_sender(bootstrap, topic), rows))}


def _publish(sender, rows: list[bytes]) -> float:
    from concurrent.futures import ThreadPoolExecutor

    send, close = sender
    batches = [rows[i:i + PUBLISH_BATCH] for i in range(0, len(rows), PUBLISH_BATCH)]
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            list(pool.map(send, batches))
    finally:
        close()
    return len(rows) / (time.perf_counter() - started)


def _kafka_python_sender(bootstrap: str, topic: str):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)

    def send(batch: list[bytes]) -> None:
        futures = [producer.send(topic, value=row, key=_key(row))
                   for row in batch]
        for future in futures:
            future.get(timeout=30)

    return send, producer.close


def _confluent_sender(bootstrap: str, topic: str):
    from recsys.streaming.kafka_producer import AcknowledgedProducer

    producer = AcknowledgedProducer(bootstrap, {}, timeout_seconds=30, idempotent=False)

    def send(batch: list[bytes]) -> None:
        producer.send(topic, [(_key(row), row, None) for row in batch])

    return send, producer.close


def _key(row: bytes) -> bytes:
    return str(orjson.loads(row).get("user_id") or "").encode()


def _kafka_python(bootstrap: str, topic: str, partitions: int, events: int) -> float:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             fetch_max_bytes=FETCH_MAX_BYTES,
                             receive_message_max_bytes=RECEIVE_MAX_BYTES)
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    read, started = 0, time.perf_counter()
    try:
        while read < events and time.perf_counter() - started < TIMEOUT_SECONDS:
            batches = consumer.poll(timeout_ms=500, max_records=10_000)
            read += len([Message(f"{r.topic}:{r.partition}:{r.offset}", orjson.loads(r.value),
                                 str(r.partition))
                         for batch in batches.values() for r in batch])
    finally:
        consumer.close(autocommit=False)
    return _rate(read, events, started, "kafka-python")


def _confluent(bootstrap: str, topic: str, partitions: int, events: int) -> float:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "recsys-bench-unused",
                         "enable.auto.commit": False, "fetch.max.bytes": FETCH_MAX_BYTES})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    read, started = 0, time.perf_counter()
    try:
        while read < events and time.perf_counter() - started < TIMEOUT_SECONDS:
            records = consumer.consume(num_messages=10_000, timeout=0.5)
            read += len([Message(f"{r.topic()}:{r.partition()}:{r.offset()}",
                                 orjson.loads(r.value()), str(r.partition()))
                         for r in records if r.error() is None])
    finally:
        consumer.close()
    return _rate(read, events, started, "confluent-kafka")


def _rate(read: int, events: int, started: float, client: str) -> float:
    if read < events:
        raise RuntimeError(f"{client} read {read} of {events} events within "
                           f"{TIMEOUT_SECONDS:.0f} s")
    return events / (time.perf_counter() - started)
