"""The training pipeline under kfp.local with engine=spark promotes the same champion with
the same metrics as with engine=pandas on the same data."""
import pandas as pd
import pytest

from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from recsys.pipelines.local_runner import run_training_locally

pytestmark = pytest.mark.slow
MODEL = "recs-engines"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "shop.jsonl"
    end = pd.Timestamp.now(tz="UTC").floor("D")
    config = ShopConfig(events=12_000, seed=21, end=end.to_pydatetime(),
                        dirt=DirtConfig(duplicates=0.01, missing_price=0.02, malformed=0.002))
    write_shop(generate_shop(config), "jsonl", path, config)
    return path


def champion_of(root, shop, engine: str) -> tuple[dict, dict, dict]:
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    run_training_locally(root / "kfp", caching=False, source=str(shop),
                         lake_uri=str(root / "lake"), tracking_uri=tracking,
                         registered_model=MODEL, state_dir=str(root / "state"),
                         models=["popularity", "item_knn", "ease"], engine=engine)
    client = client_for(tracking)
    version = client.get_model_version(MODEL, aliases(client, MODEL)["champion"])
    run = client.get_run(version.run_id).data
    data = {k: v for k, v in run.params.items() if k.startswith("data.")}
    return ({"version": version.version, "model": version.tags.get("model.name"),
             "decision": version.tags["gate.decision"]}, run.metrics, data)


def test_spark_engine_promotes_the_same_champion_as_pandas(tmp_path, shop):
    on_pandas = champion_of(tmp_path / "pandas", shop, "pandas")
    on_spark = champion_of(tmp_path / "spark", shop, "spark")
    assert on_spark[0] == on_pandas[0] and on_pandas[0]["decision"] == "approved"
    assert on_spark[2] == on_pandas[2]  # the same data summary: events, split, source hash
    assert on_spark[1].keys() == on_pandas[1].keys()
    timings = ("second", "latency", "duration", "time", "_ms")  # speeds of this machine
    compared = [name for name in on_pandas[1] if not any(t in name for t in timings)]
    assert {"ndcg_at_10", "recall_at_20", "coverage_at_10"} <= set(compared)
    for name in compared:
        assert on_spark[1][name] == pytest.approx(on_pandas[1][name], rel=1e-9), name
    assert on_pandas[1]["ndcg_at_10"] > 0
