"""Items newer than a model's training data, reached by content: a user whose items share
a new item's category and brand is shown it; the offline measure on a holdout."""
import numpy as np
import pandas as pd
import pytest

from recsys.core.models.new_items import (
    attach_new_items,
    new_item_metrics,
    new_item_scores,
    new_item_slots,
)
from recsys.core.models.storage import load_model, save_model
from recsys.core.models.zoo import build_model

TRAIN = pd.DataFrame([("u1", "shoe-1"), ("u1", "shoe-2"), ("u2", "hat-1"), ("u2", "hat-2"),
                      ("u3", "shoe-1"), ("u3", "hat-1")], columns=["user_id", "item_id"]
                     ).assign(weight=1.0)
CATALOGUE = pd.DataFrame({
    "item_id": ["shoe-1", "shoe-2", "hat-1", "hat-2", "shoe-new", "hat-new", "lamp-new"],
    "category": ["fashion.shoes", "fashion.shoes", "fashion.hats", "fashion.hats",
                 "fashion.shoes", "fashion.hats", "home.lamps"],
    "brand": ["run", "run", "cap", "cap", "run", "cap", "glow"]})


@pytest.fixture
def model():
    fitted = build_model("item_knn").fit(TRAIN)
    assert attach_new_items(fitted, CATALOGUE) == 3
    return fitted


def test_new_items_are_scored_by_the_content_of_the_users_items(model):
    assert list(model.new_item_ids) == ["hat-new", "lamp-new", "shoe-new"]
    shoes = dict(zip(model.new_item_ids, new_item_scores(model, "u1")))
    assert shoes["shoe-new"] > 0.9 and shoes["lamp-new"] == 0.0
    assert shoes["shoe-new"] > shoes["hat-new"] > 0  # "fashion" is shared
    session = dict(zip(model.new_item_ids, new_item_scores(model, None, ["hat-2"])))
    assert max(session, key=session.get) == "hat-new"
    assert new_item_scores(model, "nobody").tolist() == [0.0, 0.0, 0.0]
    assert new_item_slots(10, 0.2) == 2 and new_item_slots(4, 0.2) == 0


def test_new_items_are_stored_with_the_model(model, tmp_path):
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert list(loaded.new_item_ids) == list(model.new_item_ids)
    assert np.allclose(new_item_scores(loaded, "u1"), new_item_scores(model, "u1"))


def test_the_offline_measure_counts_users_shown_a_new_item_they_took(model):
    holdout = pd.DataFrame([("u1", "shoe-new"), ("u2", "lamp-new"), ("u9", "hat-new")],
                           columns=["user_id", "item_id"]).assign(weight=1.0)
    metrics = new_item_metrics(model, holdout, k=5, share=0.2)  # one slot
    # u1 is shown shoe-new (taken); u2 is shown hat-new, not the lamp; u9 is unknown
    assert metrics["new_item_users"] == 2.0 and metrics["new_items"] == 3.0
    assert metrics["new_item_hit_rate_at_5"] == 0.5
    assert metrics["new_item_recall_at_5"] == 0.5
    assert metrics["new_item_hit_rate_at_5_random"] == pytest.approx(1 / 3)
