"""The code of every logged recsys model (MLflow models-from-code): MLflow runs this file
when something loads the model through `mlflow.pyfunc.load_model`; the fitted model itself
is the data-only `recommender` artifact."""
from mlflow.models import set_model

from recsys.core.lifecycle.pyfunc import RecommenderPyfunc

set_model(RecommenderPyfunc())
