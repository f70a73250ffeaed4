"""What serving reads of a user's live session (no Feast import: the seldon v1 image, which
has no Feast, shares the service core that uses this type)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LiveSession:
    recent_items: list[str]
    top_category: str | None

    def key(self) -> str:
        """A digest of everything in the session that can change a recommendation: a new
        session event that changes it gives a new cache key; one that does not keeps the key
        (its answer would be the same list). Feast's timestamps cannot tell two events of one
        second apart (`last_event_ts`, and every timestamp of the SQLite store, are whole
        seconds), content can."""
        text = "\x1f".join([self.top_category or "", *self.recent_items])
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


NO_SESSION = LiveSession([], None)
