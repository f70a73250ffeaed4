"""The Kafka-protocol broker of the tests: Tansu, started by `recsys.tools.kafka_broker`
(shared with the benchmarks), and the tests' consumer session timeout."""
from __future__ import annotations

from recsys.tools.kafka_broker import TansuBroker, tansu_binary
from recsys.tools.local_services import free_port

__all__ = ["TEST_SESSION_TIMEOUT_MS", "TansuBroker", "free_port", "tansu_binary"]

# Tansu makes a new consumer group's first join wait about half the session timeout for
# more members: the tests' consumers use 2 s (join in ~1 s; Kafka's default is 45 s)
TEST_SESSION_TIMEOUT_MS = 2_000
