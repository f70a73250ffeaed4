"""The recommendation service core: request checks, experiment routing, the live session,
the cache, metrics and the request log around the answer paths (`answers.py`). Plain
Python; the MLServer and seldon runtimes wrap it. Its collaborators are taken by what they
do (`collaborators.py`)."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import replace

from recsys.core.online.catalogue import Catalogue
from recsys.core.online.fail_fast_redis import CircuitOpen
from recsys.feature_repo.features.live_session import NO_SESSION, LiveSession
from recsys.serving.answers import Answers, Recommendation
from recsys.serving.cache import RecommendationCache
from recsys.serving.collaborators import (
    ExperimentRoutes,
    ListCache,
    ModelProvider,
    RequestRecorder,
    RulesInForce,
    SessionSource,
)
from recsys.serving.config import ServiceConfig
from recsys.serving.experiment_router import ArmElsewhere
from recsys.serving.metrics import ServiceMetrics
from recsys.serving.model_source import LoadedModel
from recsys.serving.ranking import RuleApplied
from recsys.serving.requests import (
    RecommendRequest,
    check_category,
    check_exclude,
    check_flag,
    check_id,
    check_k,
)

log = logging.getLogger(__name__)


class RecentUsers:
    """The `capacity` users who asked most recently, with the k they asked for (bounded:
    the oldest goes first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._users: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def seed(self, users: list[tuple[str, int]]) -> None:
        """Users known from before this process started (the request log), newest first."""
        for user_id, k in reversed(users):
            self.note(user_id, k)

    def note(self, user_id: str, k: int) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._users[user_id] = k
            self._users.move_to_end(user_id)
            while len(self._users) > self.capacity:
                self._users.popitem(last=False)

    def newest_first(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(reversed(self._users.items()))


class RecommendationService:
    def __init__(self, config: ServiceConfig, source: ModelProvider, catalogue: Catalogue,
                 session_reader: SessionSource | None = None, cache: ListCache | None = None,
                 metrics: ServiceMetrics | None = None,
                 request_log: RequestRecorder | None = None,
                 experiments: ExperimentRoutes | None = None,
                 rules: RulesInForce | None = None) -> None:
        self.answers = Answers(config, catalogue, rules)
        self.source = source
        self.sessions = session_reader
        self.cache: ListCache = cache or RecommendationCache(None, 0)
        self.metrics = metrics or ServiceMetrics()
        self.request_log = request_log
        self.experiments = experiments
        self.recent_users = RecentUsers(config.warm_users)
        """Who asked lately, and for how many items: whose lists a new version warms."""

    @property
    def config(self) -> ServiceConfig:
        return self.answers.config

    @property
    def catalogue(self) -> Catalogue:
        return self.answers.catalogue

    @catalogue.setter
    def catalogue(self, catalogue: Catalogue) -> None:
        self.answers.catalogue = catalogue

    @property
    def rules(self) -> RulesInForce | None:
        """The stock and promotions in force (None: none)."""
        return self.answers.rules

    @rules.setter
    def rules(self, rules: RulesInForce | None) -> None:
        self.answers.rules = rules

    def close(self) -> None:
        """Let every collaborator go (the runtime's unload): the request log writes what it
        holds, the champion, experiment and rules pollers stop, the cache sends what it has
        queued."""
        if self.request_log is not None:
            self.request_log.close()
        self.source.close()
        if self.experiments is not None:
            self.experiments.close()
        if self.rules is not None:
            self.rules.close()
        self.cache.close()
        if self.sessions is not None:
            self.sessions.close()

    # ---- requests ----------------------------------------------------------------------
    def parse(self, user_id: object, k: object = None, exclude: object = None,
              category: object = None, explain: object = False) -> RecommendRequest:
        """The checked request; raises RequestError naming the field at fault."""
        return RecommendRequest(
            user_id=check_id(user_id, "user_id"),
            k=self.config.default_k if k is None else check_k(k, self.config.max_k),
            exclude=check_exclude(exclude, self.config.max_exclude),
            category=check_category(category), explain=check_flag(explain, "explain"))

    def recommend(self, request: RecommendRequest) -> Recommendation:
        started = time.perf_counter()
        self.recent_users.note(request.user_id, request.k)
        arm = self.experiments.route(request.user_id) if self.experiments else None
        if arm is not None and arm.remote:
            raise ArmElsewhere(arm)  # one arm's server: the runtime forwards the request
        loaded = self.source.current if arm is None or arm.loaded is None else arm.loaded
        session = self._session(request.user_id)
        rules = self.answers.rules_in_force()
        version = (loaded.version if arm is None else arm.cache_version) + f"+{rules.version}"
        key = self.cache.key(version, request.user_id, request.k, session.key(),
                             request.exclude, request.category)
        hit = self.cache.get(key)
        if hit is not None:
            self.metrics.cache.labels("hit").inc()
            result = Recommendation(**hit)
            result.cached = True
        else:
            self.metrics.cache.labels("miss").inc()
            audit: list[RuleApplied] = []
            if arm is not None and arm.strategy is not None:
                result = self.answers.strategy(request, session, loaded, rules, audit)
            else:
                result = self.answers.for_user(request, session, loaded, rules, audit)
            result = replace(result, rules_applied=audit)
            self.cache.set(key, {**result.as_dict(), "cached": False})
        result = replace(result, recommendation_id=uuid.uuid4().hex,
                         experiment=arm.experiment if arm else None,
                         variant=arm.variant if arm else None,
                         rules_applied=result.rules_applied if request.explain else None,
                         scorer=result.scorer if request.explain else None)
        if result.fallback:
            self.metrics.fallbacks.labels(result.path).inc()
        self.metrics.observe_list(result.item_ids, self.catalogue.categories)
        if arm is not None:
            self.metrics.exposures.labels(arm.experiment, arm.variant).inc()
        if self.request_log is not None and (self.config.log_requests or arm is not None):
            self.request_log.record("recommend", request.user_id, result, request.k)
        self.metrics.latency.labels("recommend").observe(time.perf_counter() - started)
        return result

    def similar(self, item_id: object, k: object = None) -> Recommendation:
        started = time.perf_counter()
        item_id = check_id(item_id, "item_id")
        k = self.config.default_k if k is None else check_k(k, self.config.max_k)
        result = self.answers.similar(item_id, k, self.source.current)
        if result.fallback:
            self.metrics.fallbacks.labels(result.path).inc()
        self.metrics.latency.labels("similar").observe(time.perf_counter() - started)
        return replace(result, recommendation_id=uuid.uuid4().hex)

    def warm_up(self) -> None:
        """Warm the model loaded at start (`warm_version`) before the server is ready:
        ~300 ms were measured on the first second of traffic without it."""
        self.warm_version(self.source.current)

    def warm_version(self, loaded: LoadedModel) -> int:
        """Make `loaded` fast from its first request (at start, and for a promoted version
        before the watcher swaps it in, while the current one keeps answering): every
        request path run once on it (session read, cache lookup, scoring and re-rank for a
        known user, the fallback, similar items: connections and lazily built structures),
        then the lists of the recently active users computed into the cache under its
        version, as `recommend` would. Nothing is counted or logged as served. Returns the
        lists written."""
        model = loaded.recommender
        recent = LiveSession([str(i) for i in model.items[:3]], None)  # exercises the re-rank
        known = [str(model.users[0])] if len(model.users) else []  # none in the baseline
        for user in (*known, "warm-up-unknown-user"):
            session = self._session(user)
            self.cache.get(self.cache.key(loaded.version, user, self.config.default_k,
                                          session.key(), (), None))
            self.answers.for_user(RecommendRequest(user, self.config.default_k), recent, loaded)
        self.answers.similar(str(model.items[0]), self.config.default_k, loaded)
        return self.warm_lists(loaded)

    def warm_lists(self, loaded: LoadedModel) -> int:
        """The lists of the recently active users (newest first, at most `warm_users`,
        within `warm_seconds`) computed into the cache under `loaded`'s version with each
        user's live session; users an experiment routes, and lists already cached, are
        skipped. Nothing is counted or logged as served. Returns the lists written."""
        deadline = time.monotonic() + self.config.warm_seconds
        rules = self.answers.rules_in_force()
        version = f"{loaded.version}+{rules.version}"
        written = 0
        for user_id, k in self.recent_users.newest_first():
            if time.monotonic() > deadline:
                log.info("warming version %s stopped at its %.0f s limit", loaded.version,
                         self.config.warm_seconds)
                break
            if self.experiments is not None and self.experiments.route(user_id) is not None:
                continue
            session = self._session(user_id)
            key = self.cache.key(version, user_id, k, session.key(), (), None)
            if self.cache.get(key) is not None:
                continue
            audit: list[RuleApplied] = []
            result = self.answers.for_user(RecommendRequest(user_id, k), session, loaded,
                                           rules, audit)
            self.cache.set(key, {**replace(result, rules_applied=audit).as_dict(),
                                 "cached": False})
            written += 1
        if written:
            log.info("warmed version %s: %d lists of recently active users", loaded.version,
                     written)
        return written

    # ---- internals ---------------------------------------------------------------------
    def _session(self, user_id: str) -> LiveSession:
        if self.sessions is None:
            return NO_SESSION
        try:
            session = self.sessions.read(user_id)
        except Exception as exc:  # a missing online store degrades, never fails a request
            self.metrics.degraded.labels("online_store").inc()
            if not isinstance(exc, CircuitOpen):  # skipped: the breaker logged why
                log.warning("online features unavailable: %s", exc)
            return NO_SESSION
        return NO_SESSION if session is None else session
