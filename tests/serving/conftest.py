"""A tiny fitted model on disk, a catalogue, and a session-feature reader over a frame."""
import pandas as pd
import pytest

from recsys.core.models.storage import save_model
from recsys.core.models.zoo import build_model
from recsys.core.online.catalogue import Catalogue
from recsys.feature_repo.features.live_session import LiveSession
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecommendationService

# u1 and u2 share a and b; u2 also took c (shoes) and d (hats); e is popular with others
ROWS = [("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0),
        ("u2", "c", 1.0), ("u2", "d", 1.0), ("u3", "e", 3.0), ("u4", "e", 3.0),
        ("u5", "f", 1.0), ("u5", "d", 1.0)]
CATEGORIES = {"a": "books", "b": "books", "c": "shoes", "d": "hats", "e": "books",
              "f": "hats"}


class FrameReader:
    """Session rows from a dict, answering like
    recsys.feature_repo.features.session_reader.SessionReader."""

    def __init__(self, sessions: dict | None = None, fail: bool = False):
        self.sessions = sessions or {}
        self.fail = fail

    def read(self, user_id):
        if self.fail:
            raise ConnectionError("online store down")
        session = self.sessions.get(user_id)
        if session is None:
            return None
        return LiveSession(session.get("recent", []), session.get("category"),
                           session.get("price"))


@pytest.fixture
def model_path(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    model = build_model("item_knn", shrinkage=0.0).fit(frame)
    path = tmp_path / "model"
    save_model(model, path)
    return str(path)


@pytest.fixture
def make_service(model_path):
    def make(reader=None, cache=None, **config):
        source = ModelSource("sqlite:///unused.db", "unused", model_uri=model_path)
        source.load()
        return RecommendationService(ServiceConfig(**config), source,
                                     Catalogue(dict(CATEGORIES), set()), reader, cache)
    return make
