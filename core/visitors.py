"""The id an event without a (trusted) user is kept under: one per session.

Used by the collector for events whose user signature does not bind them, and by readers
for layouts whose user id is nullable (the Avro `UserEvent`). A hash of the session id, so
the visitor's sessions cannot be linked to each other or to a user.
"""
from __future__ import annotations

import hashlib

ANONYMOUS_PREFIX = "anonymous:"


def anonymous_user_id(session_id: str | None) -> str:
    """Per session, unlinkable to the user."""
    seed = session_id or "no-session"
    return ANONYMOUS_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:16]
