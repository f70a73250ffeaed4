"""Drift on a generated shop: none between random halves, the right columns after a shift."""
import json

import numpy as np
import pandas as pd
import pytest

from recsys.cli.main import main
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift


@pytest.fixture(scope="module")
def events():
    return generate_shop(ShopConfig(events=40_000, seed=5, end="2026-10-31")).events


def halves(events):
    mask = np.random.default_rng(0).random(len(events)) < 0.5
    return events[mask], events[~mask].copy()


def shifted(current):
    out = current.copy()
    out["price"] = out["price"] * 1.5
    top = out["category"].str.split(".").str[0]
    chosen = top.value_counts().index[3]
    out = pd.concat([out, out[top == chosen]], ignore_index=True)  # its share doubles
    new_source = out.sample(frac=0.2, random_state=1).index
    out.loc[new_source, "utm_source"] = "tiktok"
    return out


def test_two_random_halves_of_one_period_do_not_drift(events):
    reference, current = halves(events)
    result = run_drift(reference, current, DriftConfig())
    assert result.summary["drift_detected"] is False
    assert result.summary["drifted_columns"] == 0
    assert result.summary["columns_tested"] == 7
    assert max(c["score"] for c in result.summary["columns"].values()) < 0.03


def test_a_shift_is_reported_with_the_right_columns(events):
    reference, current = halves(events)
    result = run_drift(reference, shifted(current), DriftConfig())
    summary = result.summary
    assert summary["drift_detected"] is True
    drifted = {c for c, r in summary["columns"].items() if r["drifted"]}
    # brands belong to categories, so doubling a category's share moves the brand mix too
    assert drifted == {"price", "utm_source", "top_category", "brand"}
    assert summary["top_drifted_columns"][0] == "price"
    assert not summary["columns"]["device_type"]["drifted"]
    assert not summary["columns"]["event_type"]["drifted"]
    assert summary["columns"]["price"]["method"] == "wasserstein"


def test_cli_writes_html_and_summary(events, tmp_path, capsys):
    reference, current = halves(events)
    config = ShopConfig(events=1, end="2026-10-31")
    shop = generate_shop(config)
    ref_path, cur_path = tmp_path / "ref.jsonl", tmp_path / "cur.jsonl"
    write_shop(type(shop)(shop.catalogue, reference), "jsonl", ref_path, config)
    write_shop(type(shop)(shop.catalogue, shifted(current)), "jsonl", cur_path, config)
    out = tmp_path / "report"
    assert main(["monitor", "drift", "--reference", str(ref_path), "--current", str(cur_path),
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["drift_detected"] is True and "price" in summary["top_drifted_columns"]
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "price" in html
