"""Who sees which variant: deterministic, sticky, stable under a coverage ramp.

A unit (a user id; for anonymous visitors the session or device id the client sends as
`user_id`) is hashed with the experiment's salt into one of 10,000 buckets. Variant `i`
owns the buckets from its cumulative weight share `start_i` up to
`start_i + coverage * share_i`: raising coverage only lengthens every range, so a user
already in a variant stays there and new users join, in proportion. Buckets outside every
range are not in the experiment (they see the champion, like the holdout).

The holdout is decided by a second hash (salt + "/holdout"), independent of the buckets,
so it is the same users for the whole experiment whatever the coverage. Nothing is stored
per user: the same inputs always give the same variant, in every serving replica.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from recsys.experiments.definition import ExperimentDefinition

BUCKETS = 10_000
HOLDOUT = "holdout"
"""`Assignment.reason` of a user kept out by the holdout."""


def bucket(salt: str, unit_id: str) -> int:
    """The unit's bucket in [0, BUCKETS) for this salt."""
    digest = hashlib.blake2b(f"{salt}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Assignment:
    variant: str | None
    """The variant label, or None when the unit is not in the experiment."""
    reason: str
    """`assigned`, `holdout`, `excluded` or `not_covered`."""


class Assigner:
    """Assignment for one experiment definition (ranges computed once)."""

    def __init__(self, definition: ExperimentDefinition):
        self.definition = definition
        self.salt = definition.salt
        self._excluded = frozenset(definition.excluded_users)
        self._holdout_buckets = round(definition.holdout * BUCKETS)
        self.ranges: list[tuple[str, float, float]] = []
        start = 0.0
        for label, share in definition.shares().items():
            self.ranges.append((label, start * BUCKETS,
                                (start + definition.coverage * share) * BUCKETS))
            start += share

    def assign(self, unit_id: str) -> Assignment:
        if unit_id in self._excluded:
            return Assignment(None, "excluded")
        if self._holdout_buckets and \
                bucket(f"{self.salt}/{HOLDOUT}", unit_id) < self._holdout_buckets:
            return Assignment(None, HOLDOUT)
        position = bucket(self.salt, unit_id)
        for label, low, high in self.ranges:
            if low <= position < high:
                return Assignment(label, "assigned")
        return Assignment(None, "not_covered")

    def expected_shares(self) -> dict[str, float]:
        """Share of all units expected in each variant (holdout and coverage applied): what
        the sample-ratio check compares the observed split with."""
        kept = 1 - self._holdout_buckets / BUCKETS
        return {label: kept * (_covered(low, high) / BUCKETS)
                for label, low, high in self.ranges}


def _covered(low: float, high: float) -> int:
    """Whole buckets b with low <= b < high."""
    import math

    return max(0, math.ceil(high) - math.ceil(low))
