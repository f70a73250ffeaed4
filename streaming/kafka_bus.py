"""Kafka as the event bus, behind the same interface as Redis Streams (kafka-python).

- `publish` sends every row keyed by user_id (one user's events stay in one partition, in
  order) and waits for the broker's acknowledgement (acks=all) before returning; event ids
  are de-duplicated within `dedup_seconds` by this collector process (Kafka itself has no
  per-message dedup window), which is why the Redis bus is the default.
- Consumer groups are Kafka's own; `ack` commits, per partition, the offset after the
  highest acknowledged message (at-least-once). `reclaim` has nothing to do: the group
  coordinator hands a dead consumer's partitions to the live ones.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import orjson

from recsys.streaming.bus import BusUnavailable, Message, PublishResult


class KafkaBus:
    def __init__(self, bootstrap: str, topic: str = "recsys.events",
                 dedup_seconds: int = 86_400, dedup_capacity: int = 1_000_000,
                 timeout_seconds: float = 10.0):
        from kafka import KafkaProducer

        self.bootstrap = bootstrap
        self.topic = topic
        self.dead_topic = f"{topic}.dead"
        self.dedup_seconds = dedup_seconds
        self.dedup_capacity = dedup_capacity
        self.timeout_seconds = timeout_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._consumers: dict[tuple[str, str], object] = {}
        try:
            self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                          linger_ms=5, request_timeout_ms=int(
                                              timeout_seconds * 1000))
        except Exception as exc:  # kafka-python raises NoBrokersAvailable and friends
            raise BusUnavailable(f"Kafka at {bootstrap} unavailable: {exc}") from exc

    def _fresh(self, event_id: str, now: float) -> bool:
        while self._seen and next(iter(self._seen.values())) < now - self.dedup_seconds:
            self._seen.popitem(last=False)
        if event_id in self._seen:
            return False
        return True

    def publish(self, rows: list[dict]) -> PublishResult:
        now = time.time()
        fresh = [row for row in rows if self._fresh(row["event_id"], now)]
        unique = list({row["event_id"]: row for row in fresh}.values())
        try:
            futures = [self.producer.send(self.topic, key=str(row["user_id"]).encode(),
                                          value=orjson.dumps(row)) for row in unique]
            self.producer.flush(timeout=self.timeout_seconds)
            for future in futures:
                future.get(timeout=self.timeout_seconds)
        except Exception as exc:
            raise BusUnavailable(f"Kafka topic {self.topic} unavailable: {exc}") from exc
        for row in unique:
            self._seen[row["event_id"]] = now
        while len(self._seen) > self.dedup_capacity:
            self._seen.popitem(last=False)
        return PublishResult(len(unique), len(rows) - len(unique))

    def dead_letter(self, records: list[dict]) -> None:
        try:
            for record in records:
                self.producer.send(self.dead_topic, value=orjson.dumps(record, default=str))
            self.producer.flush(timeout=self.timeout_seconds)
        except Exception as exc:
            raise BusUnavailable(f"Kafka topic {self.dead_topic} unavailable: {exc}") from exc

    def _consumer(self, group: str, consumer: str):
        from kafka import KafkaConsumer

        key = (group, consumer)
        if key not in self._consumers:
            self._consumers[key] = KafkaConsumer(
                self.topic, bootstrap_servers=self.bootstrap, group_id=group,
                client_id=consumer, enable_auto_commit=False, auto_offset_reset="earliest")
        return self._consumers[key]

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        records = self._consumer(group, consumer).poll(timeout_ms=block_ms, max_records=count)
        return [Message(f"{r.topic}:{r.partition}:{r.offset}", orjson.loads(r.value))
                for batch in records.values() for r in batch]

    def ack(self, group: str, messages: list[Message]) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        highest: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = message.id.rsplit(":", 2)
            key = (topic, int(partition))
            highest[key] = max(highest.get(key, -1), int(offset))
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o + 1, "", -1)
                   for (t, p), o in highest.items()}
        for (g, _), consumer in self._consumers.items():
            if g == group and offsets:
                consumer.commit(offsets)
                return

    def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Message]:
        return []

    def trim(self) -> int:
        """Kafka keeps a topic for its configured retention; committed offsets are progress."""
        return 0

    def ping(self) -> bool:
        return bool(self.producer.bootstrap_connected())
