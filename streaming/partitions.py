"""Which partition a user's events belong to, and which partitions a worker owns.

Scale-out without changing any result: every event of one user goes to one partition (a
stable hash of user_id, the same in every process and across restarts), and a partition has
exactly one owner among the N members of a worker group (member k owns the partitions p
with p % N == k). A user's session state, cart timer and watermark are therefore only ever
written by one processor, and its events reach the lake through one sink.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from recsys.core.errors import ConfigError


def partition_of(user_id: str, partitions: int) -> int:
    """A user's partition: blake2b of the id (never Python's salted `hash`)."""
    if partitions == 1:
        return 0
    digest = hashlib.blake2b(str(user_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True)
class Membership:
    """Member `index` of `members` workers of one kind (processors, or sinks)."""

    index: int = 0
    members: int = 1

    def __post_init__(self) -> None:
        if self.members < 1 or not 0 <= self.index < self.members:
            raise ConfigError(f"worker membership {self.index}/{self.members}: the index must "
                              f"be 0..{self.members - 1}")

    @classmethod
    def parse(cls, text: str) -> "Membership":
        """`K/N` (member K of N, counted from 0), as on the command line."""
        index, _, members = text.partition("/")
        try:
            return cls(int(index), int(members or 1))
        except ValueError as exc:
            raise ConfigError(f"worker membership {text!r}: write it K/N, e.g. 0/2") from exc

    def owned(self, partitions: int) -> tuple[int, ...]:
        """The partitions this member owns; refused when some member would own none."""
        if self.members > partitions:
            raise ConfigError(f"{self.members} workers share {partitions} bus partitions: at "
                              f"least as many partitions as workers are needed "
                              f"(RECSYS_BUS_PARTITIONS)")
        return tuple(p for p in range(partitions) if p % self.members == self.index)

    def __str__(self) -> str:
        return f"{self.index}/{self.members}"


EVERYTHING = Membership()
