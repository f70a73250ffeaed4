"""The shop the container runs of test_container_pipeline and test_compiled_pipeline train
on, and the in-process run they are compared with: run once per session.

Both modules import these fixtures from here, and an imported fixture is a fixture of its
own in each module, so session scope alone would run it twice; the memo below is shared
because this module, unlike a test module (`--import-mode=importlib` names those after
the checkout's folder), is imported once under its own name."""
from pathlib import Path

import pytest

from recsys.components.gate.report import latest_decision
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from recsys.pipelines.local_runner import run_training_locally

MODEL = "recs-in-containers"
SHOP = ShopConfig(events=20_000, seed=11)
_MEMO: dict = {}


@pytest.fixture(scope="session")
def shop_source(tmp_path_factory) -> Path:
    """SHOP as a JSONL file."""
    if "source" not in _MEMO:
        source = tmp_path_factory.mktemp("shop") / "shop.jsonl"
        write_shop(generate_shop(SHOP), "jsonl", source, SHOP)
        _MEMO["source"] = source
    return _MEMO["source"]


@pytest.fixture(scope="session")
def in_process_run(shop_source, tmp_path_factory) -> dict:
    """The subprocess runner on `shop_source` (SQLite MLflow, a local lake): the gate's
    decision and the registry's aliases."""
    if "in_process" not in _MEMO:
        work = tmp_path_factory.mktemp("in-process")
        tracking = f"sqlite:///{work / 'mlflow.db'}"
        run_training_locally(work / "kfp", caching=False, source=str(shop_source),
                             lake_uri=str(work / "lake"), tracking_uri=tracking,
                             registered_model=MODEL, state_dir=str(work / "state"))
        _MEMO["in_process"] = {"decision": latest_decision(tracking, MODEL),
                               "aliases": aliases(client_for(tracking), MODEL)}
    return _MEMO["in_process"]
