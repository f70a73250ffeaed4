"""Kafka as the event bus, behind the same interface as Redis Streams: the collector's
producer and the workers' consumers are confluent-kafka (librdkafka, `kafka_producer.py`;
it reads about 5x faster than kafka-python on this machine, which capped the processors and
sinks: `recsys bench streaming --bus kafka`), the lag probe and the admin client
kafka-python.

- `publish` sends every row keyed by user_id to partition blake2b(user_id) % partitions
  (`partitions.partition_of`, the Redis bus's rule: one user's events stay in one partition,
  in order, and the processor's per-partition watermark and cart timers are the Kafka
  partition's) and waits for the broker's acknowledgement (acks=all) before returning.
  Event ids are de-duplicated within `dedup_seconds` by this collector process only (Kafka
  has no per-message dedup window); an event posted to two collectors is stored twice and
  made one downstream: the processor's state and the lake sink (one write per event id and
  date partition) both drop a repeated event id, and both copies are in one partition.
- Consumer groups are Kafka's own, named `<topic>.<group>` (`kafka_group_id`): a Kafka group is
  the cluster's, not the topic's, so a bare `lake-sink` would be one group with every
  other deployment or topic on the cluster that uses the name, and their members' joins
  would rebalance (and flush) each other; on Redis a group belongs to its stream anyway.
  N processors (or sinks) in one group share the
  partitions, and the group coordinator hands a dead member's partitions to the live ones
  after `session_timeout_ms`. `ack` commits, per partition, the offset after the highest
  acknowledged message (at-least-once); a commit refused because a rebalance moved the
  partition is dropped: the new owner reads those messages again (idempotent writes).
  `reclaim` has nothing to do.
- `lag(group)`: the topic's events the group has not committed, summed over partitions (end
  offset minus the group's committed offset, or minus the beginning offset where the group
  never committed), for `recsys_stream_lag` and `/health`. The end offset is not taken from
  ListOffsets(latest) alone: Tansu 0.6 answers it with the last record batch's base offset +
  1, not the last record's. A probe consumer of the group (manual assignment, never joins,
  never commits) fetches from that offset - 1 and takes the fetch's high watermark (and the
  last record it got): right on Tansu and on Kafka, and it reads one batch per partition,
  not the topic.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import orjson

from recsys.streaming.bus import BusOutcomeUnknown, BusUnavailable, Message, PublishResult
from recsys.streaming.kafka_producer import AcknowledgedProducer, TopicUnavailable
from recsys.streaming.partitions import partition_of

if TYPE_CHECKING:
    from confluent_kafka import Consumer
    from kafka import KafkaConsumer

log = logging.getLogger(__name__)

FETCH_MAX_BYTES = 16 * 2**20
"""The most a consumer asks for in one fetch (all partitions together)."""
RECEIVE_MAX_BYTES = FETCH_MAX_BYTES + 2**20
"""The largest answer a kafka-python client (the lag probe) accepts: a fetch answer plus its
headers. Its default (1 MB) is below its own fetch size, and a broker that fills a fetch
(Tansu does, ~0.75 MB a partition) would have its answer refused and the connection closed."""


def kafka_group_id(topic: str, group: str) -> str:
    """The Kafka group id of a worker group (`lake-sink`) reading `topic`."""
    return f"{topic}.{group}"


@dataclass(frozen=True)
class KafkaClientConfig:
    """How the Kafka clients reach and authenticate to the brokers."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def options(self) -> dict:
        """kafka-python keyword arguments (producer, consumer and admin alike), bootstrap
        excepted."""
        options: dict = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options.update(sasl_mechanism=self.sasl_mechanism,
                           sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options

    def librdkafka_options(self) -> dict[str, str]:
        """The same settings as confluent-kafka (librdkafka) configuration keys."""
        options = {"security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            options.update({"sasl.mechanism": self.sasl_mechanism,
                            "sasl.username": self.username or "",
                            "sasl.password": self.password or ""})
        if self.ssl_cafile:
            options["ssl.ca.location"] = self.ssl_cafile
        return options


class KafkaBus:
    def __init__(self, bootstrap: str | KafkaClientConfig, topic: str = "recsys.events",
                 dedup_seconds: int = 86_400, dedup_capacity: int = 1_000_000,
                 timeout_seconds: float = 10.0, session_timeout_ms: int = 10_000,
                 idempotent: bool = False):

        self.client = bootstrap if isinstance(bootstrap, KafkaClientConfig) \
            else KafkaClientConfig(bootstrap)
        self.bootstrap = self.client.bootstrap
        self.session_timeout_ms = session_timeout_ms
        self._partitions: int | None = None
        self.topic = topic
        self.dead_topic = f"{topic}.dead"
        self.dedup_seconds = dedup_seconds
        self.dedup_capacity = dedup_capacity
        self.timeout_seconds = timeout_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._consumers: dict[tuple[str, str], Consumer] = {}
        self._on_revoke: dict[str, Callable[[], object]] = {}
        self._assignments: dict[tuple[str, str], _Assignment] = {}
        self._lag_probes: dict[str, KafkaConsumer] = {}
        self._lag_lock = threading.Lock()  # metrics and /health ask from their own threads
        self.producer = AcknowledgedProducer(self.bootstrap, self.client.librdkafka_options(),
                                             timeout_seconds, idempotent)
        if not self.producer.ping(topic, timeout_seconds):  # librdkafka connects lazily
            self.producer.close()
            raise BusUnavailable(f"Kafka at {bootstrap} unavailable: no broker answered "
                                 f"within {timeout_seconds} s")

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
            partitions = self._topic_partitions()
        except TopicUnavailable as exc:  # no metadata within the timeout: nothing was sent
            raise BusUnavailable(f"Kafka topic {self.topic} unavailable: {exc}") from exc
        try:  # acks=all: every in-sync replica has each one before send returns
            self.producer.send(self.topic, [
                (str(row["user_id"]).encode(), orjson.dumps(row),
                 partition_of(row["user_id"], partitions)) for row in unique])
        except Exception as exc:  # sent, not acknowledged: some may be stored (a retry is
            # safe: downstream, the processor and the lake sink keep an event id once)
            raise BusOutcomeUnknown(f"Kafka topic {self.topic} did not acknowledge: "
                                    f"{exc}") from exc
        for row in unique:
            self._seen[row["event_id"]] = now
        while len(self._seen) > self.dedup_capacity:
            self._seen.popitem(last=False)
        return PublishResult(len(unique), len(rows) - len(unique))

    def _topic_partitions(self) -> int:
        if self._partitions is None:
            self._partitions = self.producer.partitions(self.topic)  # waits the timeout
        return self._partitions

    def dead_letter(self, records: list[dict]) -> None:
        try:
            self.producer.send(self.dead_topic, [
                (None, orjson.dumps(record, default=str), None) for record in records])
        except Exception as exc:
            raise BusUnavailable(f"Kafka topic {self.dead_topic} unavailable: {exc}") from exc

    def _consumer(self, group: str, consumer: str) -> Consumer:
        from confluent_kafka import Consumer

        key = (group, consumer)
        if key not in self._consumers:
            made = Consumer({
                "bootstrap.servers": self.bootstrap,
                "group.id": kafka_group_id(self.topic, group), "client.id": consumer,
                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                "allow.auto.create.topics": False,
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(100, self.session_timeout_ms // 4),
                "fetch.max.bytes": FETCH_MAX_BYTES,
                **self.client.librdkafka_options()})
            assignment = _Assignment(group, consumer, lambda: self._on_revoke.get(group))
            self._assignments[key] = assignment
            made.subscribe([self.topic], on_assign=assignment.on_assign,
                           on_revoke=assignment.on_revoke)
            self._consumers[key] = made
        return self._consumers[key]

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        """New messages of the partitions the group gives this consumer. The first read of a
        consumer joins the group (the broker waits for other members to join: a few seconds
        on Tansu) and may return nothing."""
        try:
            records = self._consumer(group, consumer).consume(num_messages=count,
                                                              timeout=block_ms / 1000)
        except Exception as exc:
            raise BusUnavailable(f"Kafka topic {self.topic} unreadable: {exc}") from exc
        messages, errors = [], []
        for r in records:
            error = r.error()
            if error is None:
                messages.append(Message(f"{r.topic()}:{r.partition()}:{r.offset()}",
                                        orjson.loads(cast(bytes, r.value())),
                                        str(r.partition())))
            else:
                errors.append(error)
        if errors:  # librdkafka retries by itself; a fatal error ends this consumer
            if any(error.fatal() for error in errors):
                raise BusUnavailable(f"Kafka topic {self.topic} unreadable: {errors[0]}")
            log.warning("Kafka consumer %s of group %s: %s", consumer, group, errors[0])
        return messages

    def on_revoke(self, group: str, callback: Callable[[], object]) -> None:
        """Run `callback` (a worker's flush: write what it holds, then ack) when a rebalance
        is about to take partitions from this process's consumer of `group`, so that the
        new owner starts after everything this one read."""
        self._on_revoke[group] = callback

    def owned_partitions(self, group: str) -> tuple[int, ...] | None:
        """The events topic's partitions the group currently gives this process's consumers
        (None before any consumer of the group was made)."""
        assignments = [a for (g, _), a in self._assignments.items() if g == group]
        if not assignments:
            return None
        return tuple(sorted({p for a in assignments for p in a.partitions}))

    def ack(self, group: str, messages: list[Message]) -> None:
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        highest: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = message.id.rsplit(":", 2)
            key = (topic, int(partition))
            highest[key] = max(highest.get(key, -1), int(offset))
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
        moved = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                 KafkaError.UNKNOWN_MEMBER_ID, KafkaError._NO_OFFSET}
        for (g, _), consumer in self._consumers.items():
            if g == group and offsets:
                try:
                    consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    if exc.args[0].code() not in moved:
                        raise BusUnavailable(f"Kafka commit of group {group} failed: "
                                             f"{exc}") from exc
                    # the partition moved to another member
                    log.warning("Kafka commit of group %s refused (rebalance): %s; the new "
                                "owner reads those messages again", group, exc)
                return

    def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Message]:
        return []

    def lag(self, group: str) -> int:
        """Events of the topic `group` has not committed yet, over all its partitions (a
        partition it never committed counts from its beginning offset)."""
        from kafka import TopicPartition

        with self._lag_lock:
            try:
                probe = self._lag_probe(group)
                found = probe.partitions_for_topic(self.topic)
                if not found:
                    raise BusUnavailable(f"Kafka topic {self.topic} has no partitions")
                parts = [TopicPartition(self.topic, p) for p in sorted(found)]
                if set(probe.assignment()) != set(parts):
                    probe.assign(parts)
                begins = probe.beginning_offsets(parts)
                ends = self._end_offsets(probe, parts, begins)
                total = 0
                timeout_ms = int(self.timeout_seconds * 1000)
                for tp in parts:
                    committed = probe.committed(tp, timeout_ms=timeout_ms)
                    start = begins[tp] if committed is None else max(committed, begins[tp])
                    total += max(0, ends[tp] - start)
                return total
            except BusUnavailable:
                raise
            except Exception as exc:
                raise BusUnavailable(f"Kafka lag of group {group} unreadable: {exc}") from exc

    def _lag_probe(self, group: str) -> KafkaConsumer:
        from kafka import KafkaConsumer

        if group not in self._lag_probes:
            timeout_ms = int(self.timeout_seconds * 1000)
            self._lag_probes[group] = KafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=kafka_group_id(self.topic, group),
                client_id=f"lag-{group}", enable_auto_commit=False,
                # kafka-python's checks: heartbeat < session timeout < request timeout
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=max(100, self.session_timeout_ms // 4),
                request_timeout_ms=max(timeout_ms, self.session_timeout_ms + 1000),
                fetch_max_wait_ms=100, fetch_max_bytes=FETCH_MAX_BYTES,
                receive_message_max_bytes=RECEIVE_MAX_BYTES,
                **self.client.options())
        return self._lag_probes[group]

    def _end_offsets(self, probe: KafkaConsumer, parts: list, begins: dict) -> dict:
        """Each partition's end offset (the next record's offset): ListOffsets(latest), then,
        for a partition with records, a fetch from that offset - 1, whose high watermark (and
        last record) is the end on a broker where ListOffsets is behind (Tansu 0.6)."""
        ends = dict(probe.end_offsets(parts))
        waiting = {tp for tp in parts if ends[tp] > begins[tp]}
        for tp in parts:
            probe.seek(tp, max(ends[tp] - 1, begins[tp]))
        deadline = time.monotonic() + self.timeout_seconds
        while waiting:
            if time.monotonic() > deadline:
                raise BusUnavailable(f"Kafka topic {self.topic}: the last records of "
                                     f"partitions {sorted(tp.partition for tp in waiting)} "
                                     f"did not arrive within {self.timeout_seconds} s")
            for tp, records in probe.poll(timeout_ms=100, max_records=100_000).items():
                ends[tp] = max(ends[tp], records[-1].offset + 1, probe.highwater(tp) or 0)
                waiting.discard(tp)
        return ends

    def trim(self) -> int:
        """Kafka keeps a topic for its configured retention; committed offsets are progress."""
        return 0

    def ping(self, timeout_seconds: float = 1.0) -> bool:
        """Whether a broker answers a metadata request within `timeout_seconds`: an open
        connection alone says nothing of a broker that stopped answering (frozen)."""
        return self.producer.ping(self.topic, timeout_seconds)

    def close(self) -> None:
        """Leaves the groups (their partitions go to the other members at once) without
        running the revoke callbacks: a worker flushes before it closes its bus."""
        self._on_revoke.clear()
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()
        self._assignments.clear()
        for probe in self._lag_probes.values():
            probe.close(autocommit=False)
        self._lag_probes.clear()
        self.producer.close()


class _Assignment:
    """A consumer's rebalance callbacks (run by librdkafka inside `consume`, on the worker's
    thread): the group's revoke callback runs before its partitions go, and the log says
    which partitions the consumer owns after each rebalance. librdkafka assigns the
    partitions itself once the callback returns. `partitions` is what the consumer owns,
    readable from any thread (the client's own `assignment()` waits while another thread
    is in `consume`)."""

    def __init__(self, group: str, consumer: str,
                 callback: Callable[[], Callable[[], object] | None]):
        self.group, self.consumer, self.callback = group, consumer, callback
        self.partitions: tuple[int, ...] = ()

    def on_revoke(self, _consumer, revoked) -> None:
        callback = self.callback()
        if revoked and callback is not None:
            try:
                callback()  # the flush still sees the partitions it is flushing as owned
            except Exception:  # what a flush raises must not end the rebalance half-way
                log.exception("Kafka group %s: the flush before a rebalance failed; the new "
                              "owner reads what was not acknowledged again", self.group)
        self.partitions = ()  # eager assignors revoke everything, then assign anew

    def on_assign(self, _consumer, assigned) -> None:
        self.partitions = tuple(sorted(tp.partition for tp in assigned))
        log.info("Kafka group %s: consumer %s owns partitions %s", self.group, self.consumer,
                 sorted(tp.partition for tp in assigned))
