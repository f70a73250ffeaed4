import pandas as pd
import pytest
import redis

from recsys.core.online.catalogue import Catalogue
from recsys.core.online.fail_fast_redis import fail_fast_client
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.requests import RequestError
from recsys.serving.service import RecommendationService
from tests.serving.conftest import CATEGORIES, FrameReader


def test_known_user_gets_model_answer_without_seen_items(make_service):
    service = make_service()
    result = service.recommend(service.parse("u1", 2))
    assert not result.fallback and result.path == "model"
    assert result.item_ids[0] in {"c", "d"}  # what u1's look-alike u2 also took
    assert not {"a", "b"} & set(result.item_ids)
    assert result.model_version.endswith("model")


def test_session_re_rank_prefers_the_current_category(make_service):
    plain = make_service().recommend(make_service().parse("u1", 2))
    boosted_service = make_service(FrameReader({"u1": {"recent": ["d"], "category": "hats",
                                                       "ts": "t1"}}), category_boost=5.0)
    boosted = boosted_service.recommend(boosted_service.parse("u1", 1))
    assert boosted.item_ids == ["d"]
    assert set(plain.item_ids) == {"c", "d"}


def test_unknown_user_gets_popularity_by_session_category(make_service):
    service = make_service(FrameReader({"new": {"recent": ["c"], "category": "hats"}}))
    result = service.recommend(service.parse("new", 2))
    assert result.fallback and result.path == "popularity_by_category"
    assert set(result.item_ids) <= {"d", "f"}
    anonymous = service.recommend(service.parse("other", 1))
    assert anonymous.path == "popularity" and anonymous.item_ids == ["e"]


def test_business_rules_exclude_and_category(make_service):
    service = make_service()
    service.catalogue = Catalogue(service.catalogue.categories, unavailable={"c"})
    result = service.recommend(service.parse("u1", 3, exclude=["d"]))
    assert not {"c", "d"} & set(result.item_ids)
    only_books = service.recommend(service.parse("u1", 3, category="books"))
    assert only_books.item_ids == ["e"]  # a, b seen; e is the only other book


def test_similar_items_known_and_unknown(make_service):
    service = make_service()
    assert service.similar("a", 1).item_ids == ["b"]
    unknown = service.similar("zzz", 2)
    assert unknown.fallback and unknown.item_ids[0] == "e"


@pytest.mark.parametrize("kwargs,message", [
    ({"user_id": ""}, "user_id must be a non-empty string"),
    ({"user_id": None}, "user_id must be a non-empty string"),
    ({"user_id": "u", "k": 0}, "k must be from 1 to 100, got 0"),
    ({"user_id": "u", "k": 101}, "k must be from 1 to 100, got 101"),
    ({"user_id": "u", "k": "5"}, "k must be an integer from 1 to 100"),
    ({"user_id": "u", "exclude": "a,b"}, "exclude must be a list of item id strings"),
    ({"user_id": "x" * 300}, "user_id must be at most 256 characters"),
])
def test_bad_requests_name_the_field(make_service, kwargs, message):
    with pytest.raises(RequestError) as info:
        make_service().parse(**kwargs)
    assert message in str(info.value) and info.value.status_code == 400


def test_a_down_online_store_degrades(make_service):
    service = make_service(FrameReader(fail=True))
    result = service.recommend(service.parse("u1", 2))
    assert result.path == "model"
    assert service.metrics.degraded.labels("online_store")._value.get() == 1


@pytest.mark.integration
def test_redis_cache_hits_and_a_new_session_event_misses(make_service):
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    reader = FrameReader({"u1": {"recent": ["a"], "category": None}})
    service = make_service(reader, RecommendationCache(client, 60))
    first = service.recommend(service.parse("u1", 2))
    second = service.recommend(service.parse("u1", 2))
    assert (first.cached, second.cached) == (False, True)
    assert second.item_ids == first.item_ids
    reader.sessions["u1"]["recent"] = ["a", "c"]  # a new session event
    assert not service.recommend(service.parse("u1", 2)).cached
    reader.sessions["u1"]["category"] = "hats"  # one that only moves the top category
    assert not service.recommend(service.parse("u1", 2)).cached
    assert service.recommend(service.parse("u1", 2)).cached
    assert service.cache.flush()
    assert 0 < client.ttl(next(iter(client.scan_iter("recsys:events:recs:*")))) <= 60
    # another replica (its own, empty local tier) finds the lists in the shared Redis
    replica = make_service(reader, RecommendationCache(client, 60))
    assert replica.recommend(replica.parse("u1", 2)).cached
    client.flushdb()


def test_a_down_cache_degrades():
    cache = RecommendationCache(fail_fast_client("redis://127.0.0.1:1/0", 0.2), 60)
    assert cache.get("k") is None
    cache.set("k", {"x": 1})
    assert cache.flush()
    assert cache.errors == 2
    assert cache.get("k") == {"x": 1}  # the local tier still answers


@pytest.mark.integration
def test_warm_up_runs_the_paths_without_caching_counting_or_logging(make_service):
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    reader = FrameReader({"u1": {"recent": ["a"], "category": "books"}})
    service = make_service(reader, RecommendationCache(client, 60))
    counters = (service.metrics.cache.labels("miss")._value,
                service.metrics.latency.labels("recommend")._sum)
    before = [c.get() for c in counters]  # (multiprocess mode shares values across tests)
    service.warm_up()
    assert client.dbsize() == 0
    assert [c.get() for c in counters] == before
    first = service.recommend(service.parse("u1", 2))  # and requests answer as before
    assert not first.cached and first.path == "model"
    client.flushdb()


def test_the_popularity_baseline_answers_every_path(tmp_path):
    from recsys.core.models.popularity import popularity_from_item_stats
    from recsys.serving.model_source import BASELINE_VERSION

    stats = pd.DataFrame({"item_id": list(CATEGORIES), "popularity_score": [6, 5, 4, 3, 2, 1],
                          "category": list(CATEGORIES.values())})
    source = ModelSource(f"sqlite:///{tmp_path / 'empty.db'}", "recs",
                         baseline=lambda: popularity_from_item_stats(stats))
    assert source.load().version == BASELINE_VERSION  # an empty registry: no champion yet
    service = RecommendationService(ServiceConfig(), source, Catalogue(dict(CATEGORIES), set()),
                                    FrameReader({"u1": {"category": "hats"}}))
    service.warm_up()
    hats = service.recommend(service.parse("u1", 2))
    assert hats.item_ids == ["d", "f"] and hats.path == "popularity_by_category"
    assert hats.fallback and hats.model_version == BASELINE_VERSION
    assert service.recommend(service.parse("u9", 3)).item_ids == ["a", "b", "c"]
    similar = service.similar("a", 2)
    assert similar.item_ids == ["b", "e"] and similar.path == "model"  # same category first


def test_the_live_session_price_reaches_a_model_that_ranks_by_it(tmp_path):
    """A re-ranker champion gets the session's average viewed price (Feast's
    avg_view_price_10m): browsing dear items brings dearer recommendations."""
    import numpy as np

    from recsys.core.models.storage import save_model
    from recsys.core.models.zoo import build_model
    from tests.core.models.test_reranker import price_driven_shop

    train, _, metadata = price_driven_shop()
    save_model(build_model("reranked").fit(train, metadata), tmp_path / "model")
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=str(tmp_path / "model"))
    source.load()
    price = metadata.set_index("item_id")["avg_price"]

    def mean_log_price(session: dict | None) -> float:
        reader = FrameReader({"u7": session} if session else {})
        service = RecommendationService(ServiceConfig(category_boost=0.0, recent_boost=0.0,
                                                      new_items_share=0.0),
                                        source, Catalogue({}, set()), reader)
        answer = service.recommend(service.parse("u7", 10))
        assert answer.path == "model"
        return float(np.log(price[answer.item_ids]).mean())

    usual = mean_log_price(None)
    assert mean_log_price({"recent": [], "price": 400.0}) > usual
    assert mean_log_price({"recent": [], "price": 6.0}) < usual


def test_similar_items_boost_the_category_from_one_array_per_model_and_catalogue(
        make_service):
    service = make_service(category_boost=5.0)
    model = service.source.current.recommender
    first = service.answers.pool_categories(model)
    assert list(first) == [CATEGORIES.get(str(i)) for i in model.items]
    assert service.answers.pool_categories(model) is first  # built once
    assert service.similar("d", 1).item_ids == ["f"]  # the other hat, boosted over c, a, b
    service.catalogue = Catalogue({str(i): "one" for i in model.items})  # a new catalogue
    assert set(service.answers.pool_categories(model)) == {"one"}
