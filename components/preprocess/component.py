"""KFP wrapper of preprocess."""
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def preprocess_op(clean: Input[Dataset], holdout_days: float, lookback_days: float,
                  window_end: str,
                  processed: Output[Dataset] = None, metrics: Output[Metrics] = None):
    """Interactions, temporal split, feature tables and the matrix, as one Dataset folder."""
    import pandas as pd

    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.core.data.event_store import parse_moment
    from recsys.core.data.lake import Lake
    from recsys.core.data.processed import write_processed
    from recsys.core.progress import configure_logging, publish_metrics

    configure_logging()
    config = PreprocessConfig(holdout_days=holdout_days, lookback_days=lookback_days)
    result = preprocess(pd.read_parquet(clean.path), config, parse_moment(window_end))
    write_processed(result, Lake(processed.path))
    processed.metadata.update({k: v for k, v in result.summary.items() if k != "weights"})
    publish_metrics(metrics, {name: result.summary[name] for name in (
        "train_interactions", "holdout_interactions", "train_users", "train_items")})
