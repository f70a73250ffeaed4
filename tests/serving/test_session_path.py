"""Visitors the model does not know, with a live session: answered from the model's session
rules (`path: session`), with the business rules applied; known users' re-rank follows the
same rules."""
import pandas as pd
import pytest

from recsys.core.models.new_items import attach_new_items
from recsys.core.models.session_rules import fit_session_rules
from recsys.core.models.storage import save_model
from recsys.core.models.zoo import build_model
from recsys.core.online.catalogue import Catalogue
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecommendationService
from tests.serving.conftest import CATEGORIES, ROWS, FrameReader

# browsing sessions: after a and b, visitors go on to c (twice) or d; after e, to f
SESSIONS = {"s1": ["a", "b", "c"], "s2": ["a", "b", "c"], "s3": ["a", "b", "d"],
            "s4": ["e", "f"]}


def model_with_rules():
    """(item-kNN on ROWS with session rules learned from SESSIONS, those sessions' events)."""
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    model = build_model("item_knn", shrinkage=0.0).fit(frame)
    start = pd.Timestamp("2026-11-01T10:00:00Z")
    events = pd.DataFrame(
        [(s, item, start + pd.Timedelta(minutes=n)) for s, items in SESSIONS.items()
         for n, item in enumerate(items)], columns=["session_id", "item_id", "timestamp"])
    fit_session_rules(model, events)
    return model, events


def served(model, folder) -> ModelSource:
    save_model(model, folder)
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=str(folder))
    source.load()
    return source


@pytest.fixture
def service_with_rules(tmp_path):
    def make(reader, unavailable=(), **config):
        source = served(model_with_rules()[0], tmp_path / "model")
        return RecommendationService(ServiceConfig(**config), source,
                                     Catalogue(dict(CATEGORIES), set(unavailable)), reader)
    return make


def test_an_anonymous_visitor_with_recent_items_is_answered_from_the_session(
        service_with_rules):
    service = service_with_rules(FrameReader({"anonymous:1": {"recent": ["a", "b"]}}))
    result = service.recommend(service.parse("anonymous:1", 2))
    assert result.path == "session" and not result.fallback
    assert result.item_ids == ["c", "d"]  # what followed a, b; b (the page on) left out
    assert result.scores[0] > result.scores[1] > 0


def test_the_session_answer_keeps_the_business_rules_and_fills_the_list(service_with_rules):
    reader = FrameReader({"v": {"recent": ["a", "b"]}})
    service = service_with_rules(reader, unavailable={"c"})
    result = service.recommend(service.parse("v", 4, exclude=["d"]))
    assert result.path == "session"
    assert not {"b", "c", "d"} & set(result.item_ids)
    # the rules reach only b, c, d: what is left is ordered by popularity (e 6, a 2, f 1)
    assert result.item_ids == ["e", "a", "f"]
    hats = service.recommend(service.parse("v", 2, category="hats"))
    assert hats.item_ids == ["d", "f"]  # category is strict; d follows b


def test_without_a_session_or_with_the_path_off_visitors_get_popularity(service_with_rules):
    service = service_with_rules(FrameReader({"v": {"recent": ["a", "b"]}}))
    assert service.recommend(service.parse("nobody", 1)).path == "popularity"
    off = service_with_rules(FrameReader({"v": {"recent": ["a", "b"]}}), session_path=False)
    assert off.recommend(off.parse("v", 1)).path == "popularity"
    unknown_items = service_with_rules(FrameReader({"v": {"recent": ["zz"]}}))
    assert unknown_items.recommend(unknown_items.parse("v", 1)).path == "popularity"


def test_a_known_users_re_rank_follows_the_session_rules(service_with_rules, make_service):
    reader = FrameReader({"u1": {"recent": ["e"]}})
    # without rules, the re-rank uses item similarity: e shares no user with c, d or f
    without = make_service(reader, recent_boost=5.0)
    assert without.recommend(without.parse("u1", 1)).item_ids[0] in {"c", "d"}
    service = service_with_rules(reader, recent_boost=5.0)
    result = service.recommend(service.parse("u1", 1))
    assert result.path == "model" and result.item_ids == ["f"]  # visitors go from e to f


def test_a_new_item_reaches_users_whose_items_and_session_match_it(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    model = build_model("item_knn", shrinkage=0.0).fit(frame)
    metadata = pd.DataFrame({"item_id": [*CATEGORIES, "hat-new", "book-new"],
                             "category": [*CATEGORIES.values(), "hats", "books"]})
    attach_new_items(model, metadata)
    save_model(model, tmp_path / "model")
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=str(tmp_path / "model"))
    source.load()
    reader = FrameReader({"visitor": {"recent": ["f"]}})
    service = RecommendationService(ServiceConfig(), source, Catalogue(dict(CATEGORIES)), reader)
    hats = service.recommend(service.parse("u5", 5, explain=True))  # u5 took d and f (hats)
    assert hats.path == "model" and hats.item_ids[-1] == "hat-new" and len(hats.item_ids) == 5
    assert hats.rules_applied == [{"rule": "new_items", "item_id": "hat-new",
                                   "action": "added", "rank": 5}]
    books = service.recommend(service.parse("u1", 5))  # u1 took a and b (books)
    assert books.item_ids[-1] == "book-new"
    visitor = service.recommend(service.parse("visitor", 5))  # browsing hats, unknown
    assert visitor.item_ids[-1] == "hat-new"
    assert service.recommend(service.parse("u5", 4)).item_ids[-1] != "hat-new"  # 20% of 4: 0
    none = RecommendationService(ServiceConfig(new_items_share=0.0), source,
                                 Catalogue(dict(CATEGORIES)), reader)
    assert "hat-new" not in none.recommend(none.parse("u5", 5)).item_ids


def test_the_session_model_answers_visitors_and_explain_names_the_scorer(tmp_path):
    from recsys.core.models.session_scoring import fit_session_model

    model, events = model_with_rules()
    fit_session_model(model, events, "vsknn", {"repeat_boost": -5.0})
    source = served(model, tmp_path / "model")
    reader = FrameReader({"anonymous:1": {"recent": ["a", "zz-unknown", "b"]},
                          "u1": {"recent": ["e"]}})
    service = RecommendationService(ServiceConfig(recent_boost=5.0), source,
                                    Catalogue(dict(CATEGORIES), set()), reader)
    visitor = service.recommend(service.parse("anonymous:1", 2, explain=True))
    # the neighbours of (a, b): c in two sessions, d in one; the unknown item is skipped
    assert visitor.path == "session" and visitor.item_ids == ["c", "d"]
    assert visitor.scorer == "session_model:vsknn"
    assert visitor.as_dict()["scorer"] == "session_model:vsknn"
    plain = service.recommend(service.parse("anonymous:1", 2))
    assert plain.scorer is None and "scorer" not in plain.as_dict()
    known = service.recommend(service.parse("u1", 1, explain=True))
    assert known.path == "model" and known.scorer == "model+session_model:vsknn"
    assert known.item_ids == ["f"]  # the session model: visitors go from e to f
    nobody = service.recommend(service.parse("nobody", 1, explain=True))
    assert nobody.path == "popularity" and nobody.scorer == "popularity"
    rules = RecommendationService(ServiceConfig(recent_boost=5.0, session_scorer="rules"),
                                  source, Catalogue(dict(CATEGORIES), set()), reader)
    switched = rules.recommend(rules.parse("anonymous:1", 2, explain=True))
    assert switched.scorer == "session_rules" and switched.item_ids == ["c", "d"]
    assert rules.recommend(rules.parse("u1", 1, explain=True)).scorer == \
        "model+session_rules"


def test_a_known_users_session_weight_is_the_models_tuned_one_unless_the_service_sets_it(
        tmp_path):
    model, _ = model_with_rules()
    model.session_blend_weight = 0.0  # tuned: the session did not help these users
    source = served(model, tmp_path / "model")
    reader = FrameReader({"u1": {"recent": ["e"]}})
    catalogue = Catalogue(dict(CATEGORIES), set())
    tuned = RecommendationService(ServiceConfig(), source, catalogue, reader)
    plain = tuned.recommend(tuned.parse("u1", 1, explain=True))
    assert plain.scorer == "model" and plain.item_ids[0] in {"c", "d"}  # as with no session
    forced = RecommendationService(ServiceConfig(recent_boost=5.0), source, catalogue, reader)
    followed = forced.recommend(forced.parse("u1", 1, explain=True))
    assert followed.scorer == "model+session_rules" and followed.item_ids == ["f"]
