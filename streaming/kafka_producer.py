"""The collector's Kafka producer: confluent-kafka (librdkafka), every send waited for until
the broker acknowledged it (acks=all) or the deadline passed.

Measured on Tansu 0.6 (the tests' broker), batches of 100 events with delivery confirmed
before the answer: about 2.3 times kafka-python's rate (docs/streaming.md). librdkafka's
idempotent producer gets a producer id from Tansu 0.6, where kafka-python's got UnknownError.

Several request threads publish through one producer: each waits for the delivery reports
of its own messages, serving the producer's callbacks (`poll`) while it waits (librdkafka
runs a callback in whichever thread polls).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)


class TopicUnavailable(Exception):
    """No metadata of the topic within the timeout (broker down) or the topic is missing:
    nothing was sent."""


class NotAcknowledged(Exception):
    """Sent (in part) and not acknowledged in time or refused by the broker: some of the
    records may be stored."""


@dataclass
class _Deliveries:
    """The delivery reports one publish waits for."""

    expected: int
    errors: list[KafkaError] = field(default_factory=list)
    reported: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, error: KafkaError | None, _message: Message | None) -> None:
        with self.lock:  # two polling threads may run callbacks at once
            if error is not None:
                self.errors.append(error)
            self.reported += 1
            if self.reported >= self.expected:
                self.done.set()


_FENCED = {KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def _needs_new_producer(error: KafkaError) -> bool:
    """An idempotent producer the broker fenced stays fenced: every later send fails the
    same way. Tansu 0.6 fences librdkafka's producer after a send timed out (broker down
    or restarted), and a fatal error (librdkafka's word) ends a producer anyway."""
    return error.fatal() or error.code() in _FENCED


class AcknowledgedProducer:
    """`send` returns once the broker acknowledged every record with acks=all, else raises
    within `timeout_seconds` (+1 s): `TopicUnavailable` before anything was sent,
    `NotAcknowledged` after."""

    def __init__(self, bootstrap: str, options: dict[str, str], timeout_seconds: float,
                 idempotent: bool):
        timeout_ms = int(timeout_seconds * 1000)
        self.timeout_seconds = timeout_seconds
        self._closed = False
        self._config = {
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
            "enable.idempotence": idempotent,
            # a missing topic is an error, never one the broker makes with its own
            # partitions (the workers create topics as the settings say)
            "allow.auto.create.topics": False,
            # a record not acknowledged in time fails (the collector answers 503) instead
            # of being retried for librdkafka's default five minutes
            "message.timeout.ms": timeout_ms, "request.timeout.ms": timeout_ms,
            "socket.timeout.ms": timeout_ms,
            # librdkafka's own lines (a refused connection each second while the broker
            # is down) go to this logger, not to stderr
            "logger": log,
            **options}
        self._producer = Producer(self._config)
        self._renewing = threading.Lock()

    def partitions(self, topic: str) -> int:
        """The topic's partition count from the cluster's metadata."""
        try:
            metadata = self._producer.list_topics(topic, timeout=self.timeout_seconds)
        except KafkaException as exc:
            raise TopicUnavailable(str(exc)) from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise TopicUnavailable(f"no partitions ({found.error if found else 'no topic'})")
        return len(found.partitions)

    def send(self, topic: str, records: list[tuple[bytes | None, bytes, int | None]]) -> None:
        """Sends (key, value, partition) records and waits for every acknowledgement."""
        if not records:
            return
        deliveries = _Deliveries(len(records))
        producer = self._producer  # the one that reports these records, even if renewed
        try:
            for key, value, partition in records:
                if partition is None:  # the producer's partitioner chooses
                    producer.produce(topic, value=value, key=key,
                                     on_delivery=deliveries.report)
                else:
                    producer.produce(topic, value=value, key=key, partition=partition,
                                     on_delivery=deliveries.report)
        except (BufferError, KafkaException) as exc:  # the earlier records are sent
            raise NotAcknowledged(str(exc)) from exc
        deadline = time.monotonic() + self.timeout_seconds + 1
        while not deliveries.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotAcknowledged(f"{len(records) - deliveries.reported} of "
                                      f"{len(records)} records unacknowledged after "
                                      f"{self.timeout_seconds + 1} s")
            producer.poll(min(left, 0.05))
        if deliveries.errors:
            if any(_needs_new_producer(error) for error in deliveries.errors):
                self._renew(producer)
            raise NotAcknowledged(f"{len(deliveries.errors)} of {len(records)} records "
                                  f"refused: {deliveries.errors[0]}")

    def _renew(self, failed: Producer) -> None:
        """A new producer (a new producer id) in place of one the broker fenced; the failed
        one is dropped once the requests still waiting on it are done."""
        with self._renewing:
            if self._producer is failed and not self._closed:
                log.warning("Kafka producer fenced by the broker: starting a new one")
                self._producer = Producer(self._config)

    def ping(self, topic: str, timeout_seconds: float) -> bool:
        """Whether a broker answers a metadata request within `timeout_seconds`."""
        try:
            self._producer.list_topics(topic, timeout=timeout_seconds)
        except KafkaException:
            return False
        return True

    def close(self) -> None:
        """Waits up to the timeout for what is still queued, then stops librdkafka's
        threads (a producer left open keeps reconnecting to a broker that went away). A
        second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(self.timeout_seconds)
        self._producer.close()
