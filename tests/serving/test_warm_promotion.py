"""A promoted version answers warm: before the swap the service computes the lists of the
recently active users into the cache under the new version, while the old one answers."""
import pandas as pd

from recsys.core.lifecycle.registry import promote
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.core.online.catalogue import Catalogue
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecentUsers, RecommendationService
from tests.factories import register_trained
from tests.serving.conftest import CATEGORIES, ROWS, FrameReader


def test_recent_users_keeps_the_newest_within_its_bound():
    recent = RecentUsers(3)
    recent.seed([("from-log-newest", 10), ("from-log-older", 5)])
    for user, k in (("a", 1), ("b", 2), ("a", 3)):
        recent.note(user, k)
    assert recent.newest_first() == [("a", 3), ("b", 2), ("from-log-newest", 10)]
    off = RecentUsers(0)
    off.note("a", 1)
    assert off.newest_first() == []


def test_a_promoted_version_is_warmed_before_it_answers(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    first = register_trained(uri, "recs", frame, "popularity")
    source = ModelSource(uri, "recs")
    source.load()
    cache = RecommendationCache(None, 3600, local_entries=1000)
    reader = FrameReader({"u1": {"recent": ["e"]}, "visitor": {"recent": ["a", "b"]}})
    service = RecommendationService(ServiceConfig(), source, Catalogue(dict(CATEGORIES), set()),
                                    reader, cache)
    seen_at_swap = []

    def warm(loaded):
        seen_at_swap.append(source.current.version)  # the old version still answers
        return service.warm_version(loaded)

    source.before_swap = warm
    for user, k in (("u1", 3), ("visitor", 2), ("u2", 4)):
        service.recommend(service.parse(user, k))
    second = register_trained(uri, "recs", frame, "item_knn", champion=False)
    promote(client_for(uri), "recs", second, "better", compared_with=first,
            lock=registry_lock(uri, "recs"))
    assert source.refresh() is True and seen_at_swap == [first]
    assert source.current.version == second
    for user, k in (("u1", 3), ("visitor", 2), ("u2", 4)):
        warm_answer = service.recommend(service.parse(user, k))
        assert warm_answer.cached and warm_answer.model_version == second, user
        # what was cached is what the new version computes for that user now
        cold = RecommendationService(ServiceConfig(), source,
                                     Catalogue(dict(CATEGORIES), set()), reader)
        assert warm_answer.item_ids == cold.recommend(cold.parse(user, k)).item_ids
    assert not service.recommend(service.parse("u3", 2)).cached  # not recently active

    # bounded: two users at most, the newest first (u3, then visitor); a failure while
    # warming only means the next version answers cold
    bounded = RecommendationService(ServiceConfig(warm_users=2), source,
                                    Catalogue(dict(CATEGORIES), set()), reader,
                                    RecommendationCache(None, 3600, local_entries=1000))
    for user in ("u1", "visitor", "u3"):
        bounded.recommend(bounded.parse(user, 2))
    assert bounded.warm_version(source.load_version(first)) == 2

    def broken(loaded):
        raise RuntimeError("warming broke")

    source.before_swap = broken
    promote(client_for(uri), "recs", first, "back", compared_with=second,
            lock=registry_lock(uri, "recs"))
    assert source.refresh() is True and source.current.version == first


def test_a_start_warms_who_asked_lately_in_the_request_log(tmp_path):
    from recsys.core.data.lake import Lake
    from recsys.core.online.request_log import RequestLog, recently_active_users
    from recsys.serving.answers import Recommendation

    lake = Lake(str(tmp_path))
    log = RequestLog(lake, batch_size=100, flush_seconds=3600)
    answer = Recommendation(["a"], [1.0], "7", False, "model")
    for user, k in (("u1", 5), ("u2", 3), ("u1", 8), ("u3", 2)):
        log.record("recommend", user, answer, k)
    log.record("similar", "item-9", answer, 4)
    log.flush()
    assert recently_active_users(lake, 2) == [("u3", 2), ("u1", 8)]
    assert recently_active_users(lake, 10) == [("u3", 2), ("u1", 8), ("u2", 3)]
    two_days_on = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)
    assert recently_active_users(lake, 10, now=two_days_on) == []  # only today and yesterday
    assert recently_active_users(Lake(str(tmp_path / "empty")), 10) == []
