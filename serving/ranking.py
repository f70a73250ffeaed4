"""The last step of every list: stock, the request's rules, then promotions, with an audit.

1. Candidates in score order; an item out of stock is skipped (audited `stock` when it
   would have been shown), excluded / other-category items are skipped silently: the
   organic top k.
2. Promotions in force (`core/online/business_rules.py`): a boosted item's score is multiplied by
   its boost (positive scores only) and the list re-sorted; a pinned item (allowed by stock,
   `exclude` and the category, candidate or not) is put at its slot. Items that enter the
   list this way displace organic ones, and at most `floor(k x max_promoted_share)` may:
   pins first (by slot), then boosts by boosted score; the rest are audited
   `promotion_cap` and the displaced organic items come back in their order.

`rules_applied` lists what each rule changed: {rule, item_id, action, rank, ...}.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.core.online.business_rules import ActiveRules

SCAN_LIMIT = 1000
"""Candidate lists up to this long are scanned in Python; longer ones with np.isin."""
RuleApplied = dict[str, str | int | float | None]
"""One change a rule made to a list: {rule, item_id, action, rank, ...} (module docstring)."""


@dataclass
class Ranked:
    items: list[str]
    scores: list[float]
    applied: list[RuleApplied] = field(default_factory=list)


def rank(items: Sequence[str] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int,
         allowed: Callable[[str], bool], out_of_stock: Callable[[str], bool],
         rules: ActiveRules | None = None, max_promoted_share: float = 0.3) -> Ranked:
    """The top k of `items` by `scores` under the rules (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    top: list[str] = []
    values: list[float] = []
    applied: list[RuleApplied] = []
    for index in order:
        if not np.isfinite(scores[index]):
            break
        item = str(items[index])
        if out_of_stock(item):
            applied.append({"rule": "stock", "item_id": item, "action": "removed",
                            "rank": len(top) + 1})
            continue
        if allowed(item):
            top.append(item)
            values.append(round(float(scores[index]), 6))
            if len(top) == k:
                break
    if rules is None or not rules.promotions:
        return Ranked(top, values, applied)
    return _promote(items, scores, k, top, values, applied, allowed, out_of_stock, rules,
                    max_promoted_share)


def _promote(items: Sequence[str] | np.ndarray, scores: np.ndarray, k: int, top: list[str],
             values: list[float], applied: list[RuleApplied], allowed: Callable[[str], bool],
             out_of_stock: Callable[[str], bool], rules: ActiveRules,
             max_promoted_share: float) -> Ranked:
    promoted = rules.promotions
    organic_rank = {item: n for n, item in enumerate(top, start=1)}
    eligible = {item for item in promoted if allowed(item) and not out_of_stock(item)}
    outside = eligible - organic_rank.keys()
    if not eligible:
        return Ranked(top, values, applied)  # no promotion can touch this list
    score_of: dict[str, float] = dict(zip(top, values))
    if outside:  # promoted candidates outside the organic list, and their scores
        if len(items) <= SCAN_LIMIT:
            hits = [n for n, item in enumerate(items) if str(item) in outside]
        else:
            items_array = np.asarray(items, dtype=object)
            hits = np.flatnonzero(np.isin(items_array, list(outside))).tolist()
        for index in hits:
            if np.isfinite(scores[index]):
                score_of[str(items[index])] = round(float(scores[index]), 6)
    boosted = {item: score * promoted[item].boost if item in promoted and score > 0 else score
               for item, score in score_of.items()
               if item in organic_rank or item in eligible}
    allowance = int(np.floor(k * max_promoted_share))
    pins = sorted((p for item, p in promoted.items() if p.pin_slot is not None and
                   p.pin_slot <= k and item in eligible), key=lambda p: (p.pin_slot, p.item_id))
    entrants: list[str] = []
    capped: list[str] = []
    for pin in pins:
        if pin.item_id not in organic_rank:
            (entrants if len(entrants) < allowance else capped).append(pin.item_id)
    pinned = {p.item_id for p in pins if p.item_id in organic_rank or p.item_id in entrants}
    for item in sorted((i for i in boosted if i not in organic_rank and i not in pinned
                        and promoted[i].pin_slot is None), key=lambda i: (-boosted[i], i)):
        if len(entrants) < allowance:
            entrants.append(item)
        else:
            capped.append(item)
    ranked = sorted((i for i in boosted if (i in organic_rank or i in entrants)
                     and i not in pinned), key=lambda i: (-boosted[i], organic_rank.get(i, k)))
    ranked = ranked[:k - len(pinned)]
    for pin in pins:
        if pin.item_id in pinned and pin.pin_slot is not None:  # pins all have a slot
            ranked.insert(min(pin.pin_slot - 1, len(ranked)), pin.item_id)
    final = ranked[:k]
    for item in final:
        if item in promoted:
            promotion = promoted[item]
            action = "pinned" if item in pinned else "boosted"
            applied.append({"rule": "promotion", "promotion_id": promotion.promotion_id,
                            "item_id": item, "action": action, "rank": final.index(item) + 1,
                            "organic_rank": organic_rank.get(item), "boost": promotion.boost})
    for item in capped:
        applied.append({"rule": "promotion_cap", "promotion_id": promoted[item].promotion_id,
                        "item_id": item, "action": "not_shown", "allowance": allowance})
    return Ranked(final, [round(float(boosted.get(i, score_of.get(i, 0.0))), 6) for i in final],
                  applied)
