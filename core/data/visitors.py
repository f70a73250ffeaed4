"""The id an event without a (trusted) user is kept under: one per visitor.

Used by the collector for events whose user signature does not bind them, and by readers
for layouts whose user id is nullable (the Avro `UserEvent`). A hash of the session id, so
the visitor's sessions cannot be linked to each other or to a user. Without a session, a
hash of another id the front end keeps for the visitor (an anonymous or device id); with
neither, a random id: such visitors never share one id (which would merge strangers into
one heavy "user" in the session features and the training data).
"""
from __future__ import annotations

import hashlib
import secrets

ANONYMOUS_PREFIX = "anonymous:"


def anonymous_user_id(session_id: str | None, visitor_id: str | None = None) -> str:
    """Per session; without one, per `visitor_id`; with neither, a fresh random id."""
    if session_id:
        seed = session_id
    elif visitor_id:
        seed = f"visitor:{visitor_id}"  # never the id of a session named the same
    else:
        return ANONYMOUS_PREFIX + secrets.token_hex(8)
    return ANONYMOUS_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:16]
