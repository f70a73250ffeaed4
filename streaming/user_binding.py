"""User binding: only the shop's backend can say which user an event belongs to.

A write key proves an event comes from the shop's site, not whose it is: any visitor's
browser holds the key and can post events for any `user_id`. With binding on, the shop's
backend signs each logged-in user's id when it renders the page, and the front end sends
the token with every event as `user_signature`:

    user_signature = "v1.<expires, unix seconds>.<hex HMAC-SHA256(key, "v1.<expires>.<user_id>")>"

(`sign_user` below is the reference implementation, three lines in any language.) The
collector checks the signature against every signing key (rotation: add the new key,
switch the backend, remove the old one) and the expiry. An event whose signature is
missing, expired or does not match is, by `RECSYS_COLLECTOR_USER_BINDING`:

- `require`: refused (422 naming `user_signature`; dead-lettered with the reason);
- `anonymous`: kept, but under an anonymous id derived from its session
  (`anonymous:<hash of session_id>`), else from the visitor id the front end sends
  (`anonymous_id`, `device_id`, `context.device.id`), else a random one per request: never
  attributed to the user it named, and visitors without a session never share one id;
- `off` (the default; the shop has no backend signing yet): not checked.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

from recsys.core.data.visitors import anonymous_user_id
from recsys.core.errors import ConfigError
from recsys.core.online.bearer_keys import BearerKeys

VERSION = "v1"
MODES = ("off", "require", "anonymous")
SIGNATURE = re.compile(r"v1\.([0-9]{1,12})\.([0-9a-f]{64})")
"""The only shape a signature can have (ASCII digits, 64 lowercase hex digits); anything
else is refused before any arithmetic or comparison."""


def sign_user(key: str, user_id: str, expires_at: int) -> str:
    """The token the shop's backend gives the page for `user_id`, valid until `expires_at`."""
    digest = hmac.new(key.encode(), f"{VERSION}.{expires_at}.{user_id}".encode(),
                      hashlib.sha256).hexdigest()
    return f"{VERSION}.{expires_at}.{digest}"


class UserBinding:
    def __init__(self, mode: str, keys: BearerKeys | None,
                 clock: Callable[[], float] = time.time):
        if mode not in MODES:
            raise ConfigError(f"RECSYS_COLLECTOR_USER_BINDING must be one of {MODES}, "
                              f"got {mode!r}")
        if mode != "off" and keys is None:
            raise ConfigError("user binding needs signing keys: RECSYS_COLLECTOR_USER_SIGNING_"
                              "KEYS or RECSYS_COLLECTOR_USER_SIGNING_KEYS_FILE")
        self.mode, self.keys, self.clock = mode, keys, clock

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def problem(self, user_id: str, signature: str | None) -> str | None:
        """Why `signature` does not bind `user_id` (None when it does)."""
        if not signature:
            return "no user_signature: this collector only takes events signed by the shop"
        shape = SIGNATURE.fullmatch(signature)
        if shape is None:
            return f"user_signature is not {VERSION}.<expires>.<hex digest>"
        expires = shape.group(1)
        if int(expires) < self.clock():
            return "user_signature has expired"
        valid = False
        keys = self.keys.current() if self.keys is not None else ()  # no keys: nothing binds
        for key in keys:  # every key, constant time each
            valid |= hmac.compare_digest(sign_user(key, user_id, int(expires)), signature)
        return None if valid else "user_signature does not match user_id"

    @staticmethod
    def anonymous_id(session_id: str | None, visitor_id: str | None = None) -> str:
        """The id an unbound event is kept under: per session (else per visitor id, else
        random), unlinkable to the user."""
        return anonymous_user_id(session_id, visitor_id)


NO_BINDING = UserBinding("off", None)
