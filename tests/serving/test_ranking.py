"""The last step of every list: stock, then promotions (boosts and pins) within the share
they may take, each change audited."""
import pandas as pd

from recsys.core.online.business_rules import ActiveRules, Promotion
from recsys.serving.ranking import rank

ITEMS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
SCORES = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
DAY = pd.Timestamp("2026-12-01T00:00:00Z")


def promotions(*specs) -> ActiveRules:
    found = {item: Promotion(f"p-{item}", item, boost, pin, DAY, DAY + pd.Timedelta(days=9))
             for item, boost, pin in specs}
    return ActiveRules(frozenset(), found, "v")


def ranked(k=4, rules=None, share=0.5, unavailable=(), exclude=()):
    return rank(ITEMS, SCORES, k, lambda item: item not in exclude,
                lambda item: item in unavailable, rules, share)


def test_without_rules_the_list_is_the_organic_top_k():
    result = ranked()
    assert result.items == ["a", "b", "c", "d"] and result.applied == []
    assert result.scores == [1.0, 0.9, 0.8, 0.7]


def test_an_unavailable_item_is_removed_and_audited_where_it_would_have_been():
    result = ranked(unavailable={"b", "h"}, exclude={"c"})
    assert result.items == ["a", "d", "e", "f"]
    assert result.applied == [{"rule": "stock", "item_id": "b", "action": "removed",
                               "rank": 2}]  # h would not have been shown: not audited


def test_a_boost_moves_an_item_up_and_can_bring_one_in():
    result = ranked(rules=promotions(("c", 2.0, None), ("f", 2.0, None)))
    # c 1.6 first; f 1.0 enters (one entrant, allowance floor(4 x 0.5) = 2), d drops out
    assert result.items == ["c", "a", "f", "b"]
    assert result.scores == [1.6, 1.0, 1.0, 0.9]
    audit = {entry["item_id"]: entry for entry in result.applied}
    assert audit["c"]["action"] == "boosted" and audit["c"]["organic_rank"] == 3
    assert audit["c"]["rank"] == 1 and audit["f"]["organic_rank"] is None


def test_promotions_never_displace_more_than_the_share():
    rules = promotions(("e", 3.0, None), ("f", 3.0, None), ("g", 3.0, None))
    result = ranked(rules=rules, share=0.25)  # allowance: floor(4 x 0.25) = 1
    assert result.items == ["e", "a", "b", "c"]
    capped = [entry["item_id"] for entry in result.applied if entry["rule"] == "promotion_cap"]
    assert capped == ["f", "g"]
    assert ranked(rules=rules, share=0.0).items == ["a", "b", "c", "d"]


def test_a_pin_puts_its_item_at_its_slot_and_counts_against_the_share():
    result = ranked(rules=promotions(("j", 1.0, 1), ("b", 1.0, 4)))
    assert result.items == ["j", "a", "c", "b"]  # b pinned at 4: it was organic already
    actions = {(e["item_id"], e["action"], e["rank"]) for e in result.applied}
    assert actions == {("j", "pinned", 1), ("b", "pinned", 4)}
    out_of_stock = ranked(rules=promotions(("j", 1.0, 1)), unavailable={"j"})
    assert out_of_stock.items == ["a", "b", "c", "d"]  # a pin never shows what is not sold
    excluded = ranked(rules=promotions(("j", 1.0, 1)), exclude={"j"})
    assert excluded.items == ["a", "b", "c", "d"]
