"""Assignment: split within sampling error, sticky, stable under a coverage ramp."""
import numpy as np
import pytest
from scipy import stats

from recsys.core.errors import ConfigError
from recsys.experiments.assignment import BUCKETS, Assigner, bucket
from recsys.experiments.definition import ExperimentDefinition, parse_variants

USERS = [f"user-{i}" for i in range(100_000)]


def definition(**changes):
    return ExperimentDefinition(name="seeds-ab", variants=parse_variants(
        "control=popularity:30,a=champion:35,b=challenger:35"), **changes)


def split(assigner, users=USERS):
    counts = {}
    for user in users:
        label = assigner.assign(user).variant
        counts[label] = counts.get(label, 0) + 1
    return counts


def test_split_of_100k_ids_is_within_sampling_error_of_the_weights():
    counts = split(Assigner(definition()))
    assert set(counts) == {"control", "a", "b"}
    observed = np.array([counts["control"], counts["a"], counts["b"]])
    expected = np.array([0.30, 0.35, 0.35]) * len(USERS)
    # each share within 4 standard errors, and the whole split passes a chi-square test
    for o, e in zip(observed, expected):
        share = e / len(USERS)
        assert abs(o - e) < 4 * np.sqrt(len(USERS) * share * (1 - share))
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_the_same_id_always_gets_the_same_variant_and_a_new_salt_reshuffles():
    first, again = Assigner(definition()), Assigner(definition())
    assert [first.assign(u).variant for u in USERS[:2000]] == \
        [again.assign(u).variant for u in USERS[:2000]]
    other = Assigner(definition(salt="another-seed"))
    moved = sum(first.assign(u).variant != other.assign(u).variant for u in USERS[:2000])
    assert moved > 1000  # about 2/3 of users land elsewhere under an independent hash


def test_a_ramp_from_10_to_50_percent_moves_no_assigned_user():
    small, large = Assigner(definition(coverage=0.1)), Assigner(definition(coverage=0.5))
    before = {u: small.assign(u).variant for u in USERS}
    after = {u: large.assign(u).variant for u in USERS}
    assigned = [u for u, v in before.items() if v is not None]
    assert 0.09 * len(USERS) < len(assigned) < 0.11 * len(USERS)
    assert all(after[u] == before[u] for u in assigned)
    newly = sum(v is not None for v in after.values())
    assert 0.48 * len(USERS) < newly < 0.52 * len(USERS)
    # the newcomers keep the 30/35/35 proportions
    counts = split(large)
    del counts[None]
    total = sum(counts.values())
    assert abs(counts["control"] / total - 0.30) < 0.01


def test_holdout_and_exclusions_are_never_assigned_and_the_holdout_is_stable():
    d = definition(holdout=0.1, excluded_users=("staff-1",))
    assigner = Assigner(d)
    assert assigner.assign("staff-1").reason == "excluded"
    held = [u for u in USERS[:20_000] if assigner.assign(u).reason == "holdout"]
    assert 1700 < len(held) < 2300
    ramped = Assigner(definition(holdout=0.1, coverage=0.5))
    assert all(ramped.assign(u).reason == "holdout" for u in held)
    assert sum(assigner.expected_shares().values()) == pytest.approx(0.9, abs=1e-3)


def test_buckets_are_uniform():
    counts = np.bincount([bucket("s", u) for u in USERS], minlength=BUCKETS)
    assert counts.size == BUCKETS
    assert stats.chisquare(counts).pvalue > 0.001


def test_variant_specs_parse_and_bad_ones_are_refused_by_name():
    variants = parse_variants("control=popularity:30,a=champion:35,b=12:35")
    assert [(v.label, v.target, v.weight) for v in variants] == \
        [("control", "popularity", 30), ("a", "champion", 35), ("b", "12", 35)]
    with pytest.raises(ConfigError, match="label=target:weight"):
        parse_variants("control-popularity-30")
    with pytest.raises(ConfigError, match="variant target 'hybird'"):
        parse_variants("a=hybird:50,b=champion:50")
    with pytest.raises(ValueError, match="labels repeat"):
        ExperimentDefinition(name="x", variants=parse_variants("a=champion:1,a=popularity:1"))
    with pytest.raises(ValueError, match="at least two"):
        ExperimentDefinition(name="x", variants=parse_variants("a=champion:1"))


def test_guardrail_specs_parse_and_bad_ones_are_refused():
    from recsys.experiments.definition import parse_guardrails

    assert [(g.metric, g.margin) for g in parse_guardrails(["conversion:0.1", "aov:0.02"])] \
        == [("conversion", 0.1), ("aov", 0.02)]
    for bad in ("conversion", "conversion:abc", "dwell:0.1", "ctr:1.5"):
        with pytest.raises(ConfigError, match="METRIC:MARGIN"):
            parse_guardrails([bad])
