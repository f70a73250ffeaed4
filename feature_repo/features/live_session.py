"""What serving reads of a user's live session (no Feast import: the seldon v1 image, which
has no Feast, shares the service core that uses this type)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LiveSession:
    """The live session features serving reads (the `user_session` view)."""

    recent_items: list[str]
    top_category: str | None
    avg_view_price: float | None = None
    """Average price of the items viewed in the last 10 minutes (`avg_view_price_10m`)."""

    def key(self) -> str:
        """A digest of everything in the session that can change a recommendation: a new
        session event that changes it gives a new cache key; one that does not keeps the key
        (its answer would be the same list). Feast's timestamps cannot tell two events of one
        second apart (`last_event_ts`, and every timestamp of the SQLite store, are whole
        seconds), content can. The price counts to three significant digits."""
        price = "" if self.avg_view_price is None else f"{self.avg_view_price:.3g}"
        text = "\x1f".join([self.top_category or "", price, *self.recent_items])
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


NO_SESSION = LiveSession([], None)
