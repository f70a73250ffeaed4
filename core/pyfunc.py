"""The MLflow `pyfunc` face of a Recommender: what the registry stores and serving loads."""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from recsys.core.columns import Columns
from recsys.core.models.base import Recommender

C = Columns
ARTIFACT_KEY = "recommender"
DEFAULT_PARAMS = {"k": 10, "exclude_seen": True}


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """predict(DataFrame[user_id], params={k, exclude_seen}) -> top-k rows per user."""

    def load_context(self, context) -> None:
        self.recommender = Recommender.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        params = {**DEFAULT_PARAMS, **(params or {})}
        return self.recommender.recommend(model_input[C.user_id].astype(str).tolist(),
                                          k=int(params["k"]),
                                          exclude_seen=bool(params["exclude_seen"]))


def signature_for(model: Recommender):
    """Input: a user_id column; output: the recommendation frame; params: k, exclude_seen."""
    example = pd.DataFrame({C.user_id: [str(model.users[0])]})
    output = model.recommend(example[C.user_id], k=2)
    return infer_signature(example, output, params=DEFAULT_PARAMS), example


def load_recommender(model_uri: str) -> Recommender:
    """The Recommender inside a logged pyfunc model (e.g. `models:/name@champion`)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().recommender
