"""Serving inside an experiment: each user's variant answers, every answer says which, and
the list shown is logged as an exposure."""
import time

import pandas as pd
import pytest
import redis

from recsys.core.data.lake import Lake
from recsys.core.models.zoo import build_model
from recsys.core.online.catalogue import Catalogue
from recsys.core.online.request_log import RequestLog, read_request_log
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition, Variant
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.experiment_router import ExperimentRouter
from recsys.serving.model_source import LoadedModel, ModelSource, ModelUnhealthy
from recsys.serving.service import RecommendationService
from tests.serving.conftest import CATEGORIES, ROWS

USERS = [f"u{i}" for i in range(1, 6)] + [f"visitor-{i}" for i in range(200)]


def loaded(kind: str, version: str) -> LoadedModel:
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    return LoadedModel(build_model(kind).fit(frame), version, f"models:/m/{version}")


def definition(**changes) -> ExperimentDefinition:
    variants = (Variant(label="control", target="popularity", weight=30),
                Variant(label="a", target="champion", weight=35, version="1"),
                Variant(label="b", target="2", weight=35, version="2"))
    return ExperimentDefinition(**{"name": "ab-1", "variants": variants, **changes})


class Registry:
    """What the router reads: the running experiment and the registered versions."""

    def __init__(self, versions: dict[str, LoadedModel]):
        self.versions, self.running, self.loads = versions, definition(), []

    def load(self, version: str) -> LoadedModel:
        self.loads.append(version)
        if version not in self.versions:
            raise ModelUnhealthy(f"cannot load version {version}")
        return self.versions[version]


@pytest.fixture
def setup(model_path, tmp_path):
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=model_path,
                         model_version="1")
    source.load()
    registry = Registry({"2": loaded("ease", "2")})
    router = ExperimentRouter(lambda: registry.running, registry.load, lambda: source.current)
    lake = Lake(str(tmp_path / "lake"))
    service = RecommendationService(ServiceConfig(log_requests=False), source,
                                    Catalogue(dict(CATEGORIES), set()), None,
                                    request_log=RequestLog(lake, batch_size=10_000),
                                    experiments=router)
    return service, router, registry, lake


def test_each_user_is_answered_by_its_variant_and_the_answer_says_so(setup):
    service, router, registry, lake = setup
    assert router.refresh() is True
    assert registry.loads == ["2"]  # the champion's version is shared, not loaded again
    assigner = Assigner(registry.running)
    seen = {}
    for user in USERS:
        result = service.recommend(service.parse(user, 3))
        expected = assigner.assign(user).variant
        assert (result.experiment, result.variant) == ("ab-1", expected)
        version = {"control": "strategy:popularity", "a": "1", "b": "2"}[expected]
        assert result.model_version == version
        if expected == "control":
            assert result.path.startswith("popularity") and result.fallback is False
        seen[expected] = seen.get(expected, 0) + 1
        assert len(result.recommendation_id) == 32
    assert set(seen) == {"control", "a", "b"}
    # the exposures reach the lake with what was shown (though log_requests is off)
    assert service.request_log.flush() == len(USERS)
    log = read_request_log(lake)
    assert len(log) == len(USERS) and log["recommendation_id"].is_unique
    assert log.groupby("variant").size().to_dict() == seen
    assert (log["experiment"] == "ab-1").all()
    assert all(len(items) > 0 for items in log["item_ids"])
    assert service.metrics.exposures.labels("ab-1", "b")._value.get() == seen["b"]


def test_a_stopped_experiment_serves_the_champion_to_everyone(setup):
    service, router, registry, _ = setup
    router.refresh()
    registry.running = None
    assert router.refresh() is True
    for user in USERS[:50]:
        result = service.recommend(service.parse(user, 3))
        assert (result.experiment, result.variant) == (None, None)
        assert result.model_version == "1" and result.recommendation_id


def test_a_variant_that_cannot_load_keeps_the_whole_experiment_off(setup):
    service, router, registry, _ = setup
    registry.running = definition(variants=(
        Variant(label="a", target="champion", weight=1, version="1"),
        Variant(label="b", target="9", weight=1, version="9")))
    router.refresh()
    assert router.active is None and "version 9" in router.error
    assert {service.recommend(service.parse(u, 3)).variant for u in USERS} == {None}
    # the watcher retries the same definition; it applies once the version loads
    registry.versions["9"] = loaded("ease", "9")
    assert router.refresh() is True and router.error is None
    assert {service.recommend(service.parse(u, 3)).variant for u in USERS} == {"a", "b"}


@pytest.mark.integration
def test_a_cached_answer_is_the_variant_s_own_and_gets_a_new_recommendation_id(setup):
    service, router, _, _ = setup
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    service.cache = RecommendationCache(client, 60)
    router.refresh()
    for user in USERS[:40]:
        first = service.recommend(service.parse(user, 3))
        second = service.recommend(service.parse(user, 3))
        assert (first.cached, second.cached) == (False, True)
        assert (second.variant, second.model_version, second.item_ids) == \
            (first.variant, first.model_version, first.item_ids)
        assert second.recommendation_id != first.recommendation_id
    client.flushdb()


def test_model_memory_is_stated_per_variant(setup):
    _, router, _, _ = setup
    router.refresh()
    sizes = router.active.model_bytes
    assert set(sizes) == {"a", "b"} and all(size > 0 for size in sizes.values())


def test_exposures_of_a_quiet_service_reach_the_lake_without_another_request(setup):
    """The last lists before traffic stops are written once they are `flush_seconds` old,
    not left in memory until a next request (MLServer stops without unloading)."""
    service, router, _, lake = setup
    service.request_log.flush_seconds = 0.2
    router.refresh()
    for user in USERS[:7]:
        service.recommend(service.parse(user, 3))
    deadline = time.monotonic() + 5
    while len(read_request_log(lake)) < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read_request_log(lake)) == 7
