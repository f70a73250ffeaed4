"""The session ensemble: a weighted sum of its members' scaled scores, repeats boosted once,
saved and loaded with its members nested as model folders."""
import numpy as np
import pytest

from recsys.core.errors import ConfigError
from recsys.core.models.session_zoo import build_session_model
from recsys.core.models.storage import files_sha256, load_model, save_model

# after item 1: the rules (last item, next step only) see 2; the neighbours sharing 1 are
# mostly [4, 1], so the kNN votes favour 4 (2 x 1/sqrt(2)) over 2 (1/sqrt(2))
SESSIONS = [[4, 1], [4, 1], [1, 2]]
RULES = {"sequential_rules": {"window": 1, "recent": 1}}


def ensemble(**weights):
    return build_session_model("ensemble", member_params=RULES, repeat_boost=0.0,
                               **{"weight_stan": 0.0, **weights}).fit(SESSIONS, 4)


def test_weights_decide_between_the_members():
    knn_only = ensemble(weight_vsknn=1.0, weight_sequential_rules=0.0).score([[1]])[0]
    rules_only = ensemble(weight_vsknn=0.0, weight_sequential_rules=1.0).score([[1]])[0]
    assert knn_only[4] > knn_only[2] and rules_only[2] > rules_only[4]
    # vsknn scaled: 1 (in all three neighbours) -> 1, 4 -> 2/3, 2 -> 1/3; rules: 2 -> 1
    mixed = ensemble(weight_vsknn=1.0, weight_sequential_rules=2.0).score([[1]])[0]
    assert mixed[2] / mixed[4] == pytest.approx((1 / 3 + 2) / (2 / 3), rel=1e-4)
    light = ensemble(weight_vsknn=1.0, weight_sequential_rules=0.25).score([[1]])[0]
    assert light[4] / light[2] == pytest.approx((2 / 3) / (1 / 3 + 0.25), rel=1e-4)


def test_repeats_are_boosted_once_by_the_ensemble():
    model = build_session_model("ensemble", repeat_boost=2.0).fit(SESSIONS, 4)
    # the defaults: vsknn 0.5, stan 2, the rules 0 (not fitted)
    assert [(m.name, m.repeat_boost) for m in model.members] == [("vsknn", 0.0), ("stan", 0.0)]
    plain = build_session_model("ensemble", repeat_boost=0.0).fit(SESSIONS, 4)
    boosted, unboosted = model.score([[4, 1]])[0], plain.score([[4, 1]])[0]
    assert boosted[1] - unboosted[1] == pytest.approx(2.0)  # age 1
    assert boosted[4] - unboosted[4] == pytest.approx(1.0)  # age 2
    assert boosted[2] == pytest.approx(unboosted[2])


def test_save_and_load_nest_the_fitted_members(tmp_path):
    model = ensemble(weight_vsknn=1.0, weight_sequential_rules=0.5)
    digest = save_model(model, tmp_path / "ensemble")
    members = sorted(p.name for p in (tmp_path / "ensemble" / "models").iterdir())
    assert members == ["members.0", "members.1"]  # stan has weight 0: never fitted
    loaded = load_model(tmp_path / "ensemble", expected_sha256=digest)
    assert [m.name for m in loaded.members] == ["vsknn", "sequential_rules"]
    assert loaded.params() == model.params()
    assert loaded.params()["member_params"]["sequential_rules"]["window"] == 1
    prefixes = [[1], [4], [1, 2], []]
    np.testing.assert_array_equal(loaded.score(prefixes), model.score(prefixes))
    assert files_sha256(tmp_path / "ensemble") == digest


def test_refusals():
    with pytest.raises(ConfigError, match="one of them > 0"):
        build_session_model("ensemble", weight_vsknn=0.0, weight_stan=0.0,
                            weight_sequential_rules=0.0)
    with pytest.raises(ConfigError, match="names \\['slist'\\]"):
        build_session_model("ensemble", member_params={"slist": {}})
