import numpy as np
import pandas as pd

from recsys.core.data.lake import Lake
from recsys.core.online.request_log import RequestLog, read_request_log
from recsys.monitoring.prediction_drift import run_prediction_drift
from recsys.serving.answers import Recommendation

CATEGORIES = {f"i{n}": ("books.fiction" if n < 50 else "home.decor") for n in range(100)}
PRICES = {f"i{n}": float(10 + n) for n in range(100)}


def log_rows(rng, lists, book_share, fallback_share):
    rows = []
    for _ in range(lists):
        fallback = rng.random() < fallback_share
        books = rng.random(10) < book_share
        items = [f"i{rng.integers(0, 50) if b else rng.integers(50, 100)}" for b in books]
        rows.append({"path": "popularity" if fallback else "model", "fallback": fallback,
                     "item_ids": items, "scores": list(np.sort(rng.random(10))[::-1])})
    return pd.DataFrame(rows)


def test_stable_serving_shows_no_prediction_drift():
    rng = np.random.default_rng(0)
    summary = run_prediction_drift(log_rows(rng, 400, 0.5, 0.1), log_rows(rng, 400, 0.5, 0.1),
                                   CATEGORIES, PRICES)
    assert summary["drift_detected"] is False
    assert summary["reference"]["lists"] == 400


def test_more_fallbacks_and_a_category_swing_are_reported():
    rng = np.random.default_rng(1)
    summary = run_prediction_drift(log_rows(rng, 400, 0.5, 0.1), log_rows(rng, 400, 0.9, 0.6),
                                   CATEGORIES, PRICES)
    drifted = {c for c, r in summary["columns"].items() if r["drifted"]}
    assert {"path", "rec_category", "rec_price"} <= drifted
    assert summary["current"]["fallback_ratio"] > 0.5 > summary["reference"]["fallback_ratio"]
    assert summary["current"]["coverage"] <= 1.0


def test_request_log_batches_to_the_lake(tmp_path):
    lake = Lake(str(tmp_path))
    log = RequestLog(lake, batch_size=3, flush_seconds=3600)
    answer = Recommendation(["a", "b"], [0.9, 0.5], "7", False, "model")
    for user in ("u1", "u2", "u3", "u4"):
        log.record("recommend", user, answer, 2)
    assert log.flush() == 1  # the first batch of 3 went to the background writer
    assert len(lake.list("serving/requests")) == 2
    back = read_request_log(lake)
    assert back["user_id"].tolist() == ["u1", "u2", "u3", "u4"]
    assert back["item_ids"].iloc[0].tolist() == ["a", "b"]
    assert back["model_version"].unique().tolist() == ["7"]


def test_a_failing_lake_keeps_the_rows(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = RequestLog(Lake(str(blocker)), batch_size=1)
    log.record("recommend", "u1", Recommendation(["a"], [1.0], "1", False, "model"), 1)
    log._batches.join()  # the background write failed and put the row back
    assert log.failures == 1 and len(log._rows) == 1
    assert log.flush() == 0 and log.failures == 2 and len(log._rows) == 1
