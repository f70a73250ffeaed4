"""A weighted sum of next-item session models (`session_knn.py`), repeats handled once.

Each member is fitted on the same sessions with its repeat boost at 0; a prefix scores
sum(weight x the member's scores scaled to [0, 1] by their row's largest), and then, like
every session model, the sum is scaled to [0, 1] and the ensemble's own `repeat_boost` /
age is added to the items already in the prefix. A member with weight 0 is not fitted.
The weights are parameters like any other: the bench's validation search tunes them
(`benchmarks/session_bench.py`), and a member may take the parameters tuned for it alone
(`member_params`).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recsys.core.errors import ConfigError
from recsys.core.models.base import Hyperparameters
from recsys.core.models.session_base import SessionModel
from recsys.core.models.session_knn import STAN, VSKNN, SequentialRules

MEMBERS = ("vsknn", "stan", "sequential_rules")
MEMBER_CLASSES: dict[str, type[SessionModel]] = {
    model.name: model for model in (VSKNN, STAN, SequentialRules)}
"""The member models, by their `SESSION_MODELS` names (`slist` is left out: a fit takes
30-45 s and it ranks below these on RetailRocket)."""
WEIGHTS = [0.0, 0.5, 1.0, 2.0]


class SessionEnsemble(SessionModel):
    name = "ensemble"
    search_space = {"repeat_boost": [-1.0, 0.0, 1.0, 10.0],
                    "weight_sequential_rules": WEIGHTS, "weight_stan": WEIGHTS,
                    "weight_vsknn": WEIGHTS}
    """The repeat boost first (it moves the figures most), then each member's weight."""

    members: list[SessionModel]
    """The fitted members with a weight > 0, in `MEMBERS` order (set by fit)."""

    # The default weights and repeat boost are the ones chosen on RetailRocket's validation
    # split (docs/models.md); the rules' weight 0 leaves them out until a search adds them.

    def __init__(self, weight_vsknn: float = 0.5, weight_stan: float = 2.0,
                 weight_sequential_rules: float = 0.0,
                 member_params: Mapping[str, Hyperparameters] | None = None,
                 **common: float) -> None:
        super().__init__(**common)
        self.weight_vsknn = float(weight_vsknn)
        self.weight_stan = float(weight_stan)
        self.weight_sequential_rules = float(weight_sequential_rules)
        weights = self.weights()
        if min(weights.values()) < 0 or not any(weights.values()):
            raise ConfigError(f"ensemble weights must be >= 0, one of them > 0: {weights}")
        member_params = dict(member_params or {})
        stray = sorted(set(member_params) - set(MEMBERS))
        if stray:
            raise ConfigError(f"ensemble: member_params names {stray}; members: "
                              f"{', '.join(MEMBERS)}")
        # the ensemble boosts repeats once, on the sum
        self.member_params = {name: {**member_params.get(name, {}), "repeat_boost": 0.0}
                              for name in MEMBERS}

    def weights(self) -> dict[str, float]:
        """Each member's weight, by name."""
        return {name: getattr(self, f"weight_{name}") for name in MEMBERS}

    def params(self) -> dict[str, object]:
        members = {m.name: m.params() for m in self.members} \
            if getattr(self, "members", None) is not None else self.member_params
        return {**super().params(), "member_params": members}

    def _fit(self, sessions: list[list[int]]) -> None:
        self.members = [MEMBER_CLASSES[name](**self.member_params[name])
                        .fit(sessions, self.n_items)
                        for name, weight in self.weights().items() if weight > 0]

    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        weights = self.weights()
        total = np.zeros((len(prefixes), self.n_items + 1), dtype=np.float32)
        for member in self.members:
            total += weights[member.name] * member.scaled_scores(prefixes)
        return total
