"""The service lets every collaborator go on close (the runtime's unload): the request log
writes what it holds, the pollers stop, the cache sends what it queued for Redis."""
import threading

from recsys.core.online.catalogue import Catalogue
from recsys.serving.cache import RecommendationCache
from recsys.serving.collaborators import FlushedOnClose, KeptOpen
from recsys.serving.config import ServiceConfig
from recsys.serving.live_rules import NO_RULES
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecommendationService
from tests.serving.conftest import CATEGORIES, FrameReader


class SlowRedis:
    """Takes the cache's pipelined SETs a moment after they are sent."""

    def __init__(self):
        self.stored = {}
        self.sent = threading.Event()

    def pipeline(self, transaction=True):
        redis = self

        class Pipe:
            def __init__(self):
                self.sets = {}

            def set(self, key, value, ex=None):
                self.sets[key] = value

            def execute(self):
                redis.sent.wait(5)  # held until the test has queued its write
                redis.stored.update(self.sets)

        return Pipe()


class Log:
    def __init__(self):
        self.rows, self.written = [], []

    def record(self, endpoint, subject, result, k):
        self.rows.append((endpoint, subject, result.recommendation_id, k))

    def flush(self):
        self.written, self.rows = self.written + self.rows, []
        return len(self.written)


class Poller:
    def __init__(self):
        self.current = NO_RULES
        self.closed = 0

    def route(self, user_id):
        return None

    def close(self):
        self.closed += 1


def test_close_writes_the_request_log_stops_the_pollers_and_sends_queued_lists(model_path):
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=model_path)
    source.load()
    redis = SlowRedis()
    cache = RecommendationCache(redis, ttl_seconds=60)
    log, experiments, rules = Log(), Poller(), Poller()
    service = RecommendationService(
        ServiceConfig(), source, Catalogue(dict(CATEGORIES), set()),
        KeptOpen(FrameReader({"u1": {"recent": ["a"]}})), cache,
        request_log=FlushedOnClose(log), experiments=experiments, rules=rules)
    answer = service.recommend(service.parse("u1", 2))
    assert log.rows == [("recommend", "u1", answer.recommendation_id, 2)] and not log.written
    assert redis.stored == {}  # queued for the writer thread, not sent yet

    threading.Timer(0.2, redis.sent.set).start()  # Redis answers while close() waits
    service.close()
    assert log.written == [("recommend", "u1", answer.recommendation_id, 2)]
    assert source._stop.is_set()  # the champion watcher ends
    assert (experiments.closed, rules.closed) == (1, 1)
    assert len(redis.stored) == 1  # the answered list reached Redis before close returned
