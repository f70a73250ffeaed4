"""How each path builds its list: the model's candidates re-ranked by the live session,
the session rules for unknown visitors, popularity (within a category), items newer than
the model in the last slots, and the business rules (`ranking.py`) on every list, with
what they changed. Plain functions of one request and the model answering it;
`RecommendationService` (`service.py`) routes, caches, counts and logs around them."""
from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import WithJsonSchema

from recsys.core.models.new_items import has_new_items, new_item_scores, new_item_slots
from recsys.core.models.session_blend import blend_scores, blend_weight_of
from recsys.core.models.session_scoring import (
    NO_SCORER,
    scorer_of,
    session_affinity,
    session_candidates,
)
from recsys.core.online.business_rules import ActiveRules
from recsys.core.online.catalogue import Catalogue
from recsys.feature_repo.features.live_session import LiveSession
from recsys.serving.config import ServiceConfig
from recsys.serving.live_rules import NO_RULES
from recsys.serving.ranking import RuleApplied, rank
from recsys.serving.requests import RecommendRequest

if TYPE_CHECKING:
    from recsys.core.models.base import LiveFeatures, Recommender
    from recsys.serving.collaborators import ListAnswer, RulesInForce
    from recsys.serving.model_source import LoadedModel

MODEL, POPULARITY, POPULARITY_BY_CATEGORY = "model", "popularity", "popularity_by_category"
SESSION = "session"
DEFAULT_RECENT_BOOST = 0.3
"""A known user's session weight for a model with no tuned one (trained before tuning)."""


@dataclass
class Recommendation:
    item_ids: list[str]
    scores: list[float]
    model_version: str
    fallback: bool
    path: str
    cached: bool = False
    experiment: str | None = None
    variant: str | None = None
    recommendation_id: str | None = None
    """Unique per answer: clicks name it (`properties.recommendation_id`)."""
    # the published OpenAPI document (docs/openapi/serving.json) leaves an entry's shape open
    rules_applied: list[Annotated[RuleApplied, WithJsonSchema({})]] | None = None
    """What stock and promotions changed in this list (`serving/ranking.py`); answers carry
    it when the request asks (`explain`)."""
    scorer: str | None = None
    """What scored the list (`explain`): `model`, `model+<session scorer>` (a known user's
    long-term model blended with the live session), `session_model:<name>` or
    `session_rules` (a visitor answered from the session alone), or the popularity path."""

    def as_dict(self) -> ListAnswer:
        out: ListAnswer = {
            "item_ids": self.item_ids, "scores": self.scores,
            "model_version": self.model_version, "fallback": self.fallback,
            "path": self.path, "cached": self.cached, "experiment": self.experiment,
            "variant": self.variant, "recommendation_id": self.recommendation_id}
        if self.rules_applied is not None:
            out["rules_applied"] = self.rules_applied
        if self.scorer is not None:
            out["scorer"] = self.scorer
        return out


def live_features(session: LiveSession) -> LiveFeatures | None:
    """What models that rank by live features (`Recommender.top_items`) get of the session."""
    if session.avg_view_price is None and session.top_category is None:
        return None
    return {"price": session.avg_view_price, "category": session.top_category}


class Answers:
    """The answer paths over one configuration, catalogue and (live) business rules."""

    def __init__(self, config: ServiceConfig, catalogue: Catalogue,
                 rules: RulesInForce | None = None) -> None:
        self.config = config
        self.catalogue = catalogue
        self.rules = rules  # stock and promotions in force (None: none)
        self._pool_categories: weakref.WeakKeyDictionary[
            Recommender, tuple[dict[str, str], np.ndarray]] = weakref.WeakKeyDictionary()

    @property
    def use_session_model(self) -> bool:
        """Whether live sessions are scored by the model's session model (else its rules)."""
        return self.config.session_scorer == "model"

    def similar(self, item_id: str, k: int, loaded: LoadedModel) -> Recommendation:
        """Items like `item_id` by the model's item similarity, the same category boosted;
        an item the model does not know gets popularity (within its category)."""
        model = loaded.recommender
        category = self.catalogue.categories.get(item_id)
        if item_id in model.item_index:
            pool = model.items
            cf = model.item_similarity([item_id], pool)[0]
            same = self.pool_categories(model) == category
            scores = cf + self.config.category_boost * same * (category is not None)
            scores[model.item_index[item_id]] = -np.inf
            items, values = self.top(pool, scores, k, exclude=(item_id,))
            return Recommendation(items, values, loaded.version, False, MODEL)
        items, values, path = self.popular(k, category, exclude=(item_id,), model=model)
        return Recommendation(items, values, loaded.version, True, path)

    def pool_categories(self, model: Recommender) -> np.ndarray:
        """The catalogue's category of each of the model's items, in its order (None where
        unknown): built once per model and catalogue, so `/similar` compares one array
        instead of looking up every item per request."""
        categories = self.catalogue.categories
        known = self._pool_categories.get(model)
        if known is None or known[0] is not categories:
            known = (categories, np.array([categories.get(str(i)) for i in model.items],
                                          dtype=object))
            self._pool_categories[model] = known
        return known[1]

    def strategy(self, request: RecommendRequest, session: LiveSession, loaded: LoadedModel,
                 rules: ActiveRules, audit: list[RuleApplied]) -> Recommendation:
        """The `popularity` strategy of an experiment's control arm: what the shop would show
        without a model (popularity, within the session's category when there is one). Not a
        fallback: it is the variant's answer by design."""
        category = request.category or session.top_category
        items, scores, path = self.popular(request.k, category, request.exclude,
                                           strict=request.category is not None,
                                           model=loaded.recommender, rules=rules, audit=audit)
        return Recommendation(items, scores, "strategy:popularity", False, path)

    def for_user(self, request: RecommendRequest, session: LiveSession, loaded: LoadedModel,
                 rules: ActiveRules = NO_RULES, audit: list[RuleApplied] | None = None
                 ) -> Recommendation:
        model = loaded.recommender
        if request.user_id not in model.user_index:
            answer = self.from_session(request, session, loaded, rules, audit)
            if answer is not None:
                return answer
            category = request.category or session.top_category
            popular, values, path = self.popular(request.k, category, request.exclude,
                                                 strict=request.category is not None,
                                                 model=model, rules=rules, audit=audit)
            self.add_new_items(popular, values, request, model, session.recent_items, audit)
            return Recommendation(popular, values, loaded.version, True, path, scorer=path)
        pool = max(self.config.candidates, request.k)
        items, scores = model.top_items(request.user_id, min(pool, model.items.size),
                                        live_features(session))
        weight = self.blend_weight(model)
        blended = bool(session.recent_items and weight)
        session_scorer = scorer_of(model, self.use_session_model)
        scorer = f"{MODEL}+{session_scorer}" if blended and session_scorer != NO_SCORER \
            else MODEL
        if scores.size:
            affinity = self.session_scores(model, items, session) if blended \
                else np.zeros(items.size)
            scores = blend_scores(scores, affinity, weight)
            scores = scores + self.category_boost(items, session)
        top, values = self.top(items, scores, request.k, request.exclude, request.category,
                               rules, audit)
        row = model.seen[model.user_index[request.user_id]]
        self.complete(top, values, request, tuple(model.items[row.indices]), model)
        self.add_new_items(top, values, request, model, session.recent_items, audit)
        return Recommendation(top, values, loaded.version, False, MODEL, scorer=scorer)

    def from_session(self, request: RecommendRequest, session: LiveSession,
                     loaded: LoadedModel, rules: ActiveRules,
                     audit: list[RuleApplied] | None) -> Recommendation | None:
        """An unknown visitor with a live session: the model's session model (else its
        session rules) scores what tends to follow the recent items (`session_scoring`),
        the newest item (the page the visitor is on) excluded; recent items the model does
        not know are skipped. None when nothing scores the session (the caller falls back
        to popularity)."""
        if not (self.config.session_path and session.recent_items):
            return None
        model = loaded.recommender
        items, scores = session_candidates(
            model, session.recent_items, use_session_model=self.use_session_model,
            popularity_weight=self.config.session_popularity_weight)
        if items.size == 0:
            return None
        exclude = (*request.exclude, session.recent_items[-1])
        top, values = self.top(items, scores, request.k, exclude, request.category, rules,
                               audit)
        self.complete(top, values, replace(request, exclude=exclude), (), model)
        self.add_new_items(top, values, replace(request, exclude=exclude), model,
                           session.recent_items, audit)
        return Recommendation(top, values, loaded.version, False, SESSION,
                              scorer=scorer_of(model, self.use_session_model))

    def add_new_items(self, top: list[str], values: list[float], request: RecommendRequest,
                      model: Recommender, recent_items: list[str],
                      audit: list[RuleApplied] | None) -> None:
        """Give items newer than the model's training data the last `new_items_share` of
        the slots, the best by content similarity to the user's items and session (in place;
        only items with some similarity, under the same stock, exclude and category)."""
        slots = new_item_slots(request.k, self.config.new_items_share)
        new_ids = model.new_item_ids
        if slots == 0 or new_ids is None or not has_new_items(model):
            return
        scores = new_item_scores(model, request.user_id, recent_items)
        similar = np.flatnonzero(scores > 0)
        if similar.size == 0:
            return
        added, added_scores = self.top(new_ids[similar], scores[similar], slots,
                                       (*request.exclude, *top), request.category)
        if not added:
            return
        keep = request.k - len(added)
        del top[keep:], values[keep:]
        for item, score in zip(added, added_scores):
            top.append(item)
            values.append(score)
            if audit is not None:
                audit.append({"rule": "new_items", "item_id": item, "action": "added",
                              "rank": len(top)})

    def complete(self, top: list[str], values: list[float], request: RecommendRequest,
                 seen: tuple[str, ...], model: Recommender) -> None:
        """Rules removed too much: complete the list from popularity (in place)."""
        if len(top) >= request.k:
            return
        extra, _, _ = self.popular(request.k, request.category,
                                   tuple(request.exclude) + tuple(top) + seen,
                                   strict=request.category is not None, model=model)
        added = extra[: request.k - len(top)]
        top += added
        values += [0.0] * len(added)

    def blend_weight(self, model: Recommender) -> float:
        """Weight of the live session in a known user's list: the service option when set,
        else the model's tuned weight, else `DEFAULT_RECENT_BOOST`."""
        if self.config.recent_boost is not None:
            return self.config.recent_boost
        tuned = blend_weight_of(model)
        return DEFAULT_RECENT_BOOST if tuned is None else tuned

    def session_scores(self, model: Recommender, items: np.ndarray,
                       session: LiveSession) -> np.ndarray:
        """How strongly each candidate follows the live recent items, in [0, 1]."""
        if not session.recent_items:
            return np.zeros(items.size)
        return session_affinity(model, session.recent_items, items, self.use_session_model)

    def category_boost(self, items: np.ndarray, session: LiveSession) -> np.ndarray:
        """`category_boost` for the candidates in the session's current top category."""
        if not (session.top_category and self.config.category_boost):
            return np.zeros(items.size)
        same = np.array([self.catalogue.categories.get(i) == session.top_category
                         for i in items])
        return self.config.category_boost * same

    def top(self, items: Sequence[str] | np.ndarray, scores: Sequence[float] | np.ndarray,
            k: int, exclude: Iterable[str] = (), category: str | None = None,
            rules: ActiveRules | None = None, audit: list[RuleApplied] | None = None
            ) -> tuple[list[str], list[float]]:
        """The top k under stock, `exclude` and the category; with `rules`, promotions too;
        what the rules changed is added to `audit`."""
        exclude = set(exclude)
        categories = self.catalogue.categories
        unavailable = self.catalogue.unavailable
        live = (rules or self.rules_in_force()).unavailable

        def allowed(item: str) -> bool:
            return item not in exclude and (category is None or categories.get(item) == category)

        def out_of_stock(item: str) -> bool:
            return item in unavailable or item in live

        ranked = rank(items, scores, k, allowed, out_of_stock, rules,
                      self.config.max_promoted_share)
        if audit is not None:
            audit.extend(ranked.applied)
        return ranked.items, ranked.scores

    def rules_in_force(self) -> ActiveRules:
        return self.rules.current if self.rules is not None else NO_RULES

    def popular(self, k: int, category: str | None, exclude: Iterable[str] = (),
                strict: bool = False, *, model: Recommender, rules: ActiveRules | None = None,
                audit: list[RuleApplied] | None = None) -> tuple[list[str], list[float], str]:
        """The model's most popular items, within `category` when there is one (any
        category when it has none left, unless `strict`)."""
        if category is not None:
            found: list[RuleApplied] = []
            items, values = self.top(model.items, model.popularity, k, exclude, category,
                                     rules, found)
            if items or strict:
                if audit is not None:
                    audit.extend(found)
                return items, values, POPULARITY_BY_CATEGORY
        items, values = self.top(model.items, model.popularity, k, exclude, None, rules, audit)
        return items, values, POPULARITY
