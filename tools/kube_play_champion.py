"""The champion `make kube-play` serves: trained on the host from a generated shop, its
features published where the pods read them (the lake on the S3 endpoint, Feast's registry
on the PostgreSQL the pods reach, the online store on the bus's Redis), registered and
promoted in a registry of its own, then exported as the Seldon `Model`'s artifact at its
`storageUri` (`recsys registry export --artifact`'s code)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
MODEL = "item_knn"


@dataclass(frozen=True)
class Champion:
    version: str
    sha256: str
    known_user: str
    """A user of the training data (what /recommend is asked for)."""
    item: str
    """An item of the catalogue (what posted events view)."""


def train_and_export(settings, storage_uri: str, events: int = 4_000, seed: int = 5
                     ) -> Champion:
    """`settings`: the host's view of the deployment (lake, S3 endpoint, Feast profile,
    registry and online store, a state folder for the registry)."""
    from recsys.components.features.features import publish_features
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.components.train.train import (
        TrainConfig,
        fingerprint_of,
        log_trained,
        train_models,
        training_sessions,
    )
    from recsys.core.data.schema import conform_events
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop
    from recsys.core.lifecycle.gate import Decision
    from recsys.core.lifecycle.pyfunc import load_recommender
    from recsys.core.lifecycle.registry import (
        CHAMPION,
        NO_CHAMPION,
        aliases,
        promote,
        register_with_decision,
    )
    from recsys.core.lifecycle.registry_lock import registry_lock
    from recsys.core.lifecycle.tracking import client_for
    from recsys.serving.artifact import write_artifact

    end = pd.Timestamp.now(tz="UTC").floor("D")
    shop = generate_shop(ShopConfig(events=events, seed=seed, end=end.to_pydatetime())).events
    shop["parse_error"] = None
    processed = preprocess(conform_events(shop, "kube-play", with_parse_error=False),
                           PreprocessConfig(holdout_days=3))
    publish_features(processed, settings)
    fitted = train_models(processed.train, TrainConfig(models={MODEL: {}}),
                          sessions=training_sessions(processed))[0]
    name = settings.registered_model_name
    log_trained(fitted, settings.tracking_uri, f"{name}-kube-play",
                fingerprint_of(processed.summary))
    client = client_for(settings.tracking_uri)
    current = aliases(client, name).get(CHAMPION, NO_CHAMPION)
    version = register_with_decision(client, name, fitted.model_uri, fitted.run_id,
                                     Decision(True, ["make kube-play"]), {}, {},
                                     compared_with=current)
    promote(client, name, version, "make kube-play", compared_with=current,
            lock=registry_lock(settings.tracking_uri, name, None))
    model = load_recommender(f"models:/{name}/{aliases(client, name)[CHAMPION]}")
    written = write_artifact(model, storage_uri, "recsys", version, settings.s3_endpoint_url)
    log.info("champion version %s exported to %s (sha256 %s)", version, storage_uri,
             written["sha256"])
    return Champion(version=str(version), sha256=written["sha256"],
                    known_user=str(processed.train["user_id"].iloc[0]),
                    item=str(processed.train["item_id"].iloc[0]))


def copy_artifact(storage_uri: str, s3_endpoint_url: str, folder: Path) -> list[str]:
    """What Seldon's agent does with a Model's storageUri: copy the artifact's files to a
    folder the server reads (readable by the pod's user). Returns the files' keys."""
    from recsys.core.data.lake import Lake

    store = Lake(storage_uri.rstrip("/"), s3_endpoint_url)
    keys = store.list("")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for key in keys:
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_bytes(key))
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return keys
