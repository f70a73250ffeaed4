"""KFP wrapper of features (not cached: it refreshes the online store)."""
from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def features_op(processed: Input[Dataset], lake_uri: str, s3_endpoint_url: str, state_dir: str,
                feast_profile: str, report: Output[Dataset] = None):
    """Feature tables to the lake, Feast apply, incremental materialization. The online
    store's and the registry's URLs (credentials) come from the environment:
    RECSYS_REDIS_URL and RECSYS_FEAST_REGISTRY_URL, from Secrets on a cluster."""
    import json

    from recsys.components.features.features import publish_features
    from recsys.core.data.lake import Lake
    from recsys.core.data.processed import FEATURE_TABLES_FILE, read_processed
    from recsys.core.progress import configure_logging
    from recsys.core.settings import Settings

    configure_logging()
    settings = Settings(state_dir=state_dir, lake_uri=lake_uri, feast_profile=feast_profile,
                        s3_endpoint_url=s3_endpoint_url or None)
    handed_on = Lake(processed.path)
    written = handed_on.read_json(FEATURE_TABLES_FILE) \
        if handed_on.exists(FEATURE_TABLES_FILE) else None
    result = publish_features(read_processed(handed_on), settings, tables_written=written)
    with open(report.path, "w") as handle:
        json.dump(result, handle, indent=2)
