"""Personal data the project never stores: network addresses and user agents.

Every entry point of outside events (the collector, the JSONL, Avro and CSV readers) drops
these keys, at any depth, before a record's unknown fields go into the lake's `extra`
column. One definition, used by all of them (docs/security.md, "Personal data").
"""
from __future__ import annotations

from typing import Any

PERSONAL_DATA_KEYS: frozenset[str] = frozenset({
    "ip", "ip_address", "ipaddress", "remote_addr", "remoteaddr", "client_ip", "clientip",
    "user_agent", "useragent", "ua", "x_forwarded_for", "xforwardedfor", "forwarded",
    "x_real_ip", "xrealip",
})
"""Key spellings, compared after lower-casing and dropping `-` (so `userAgent`,
`User-Agent`, `X-Forwarded-For` and `ipAddress` all match)."""


def is_personal_key(key: object) -> bool:
    """True for a key that names an IP address or a user agent, in any usual spelling."""
    if not isinstance(key, str):
        return False
    return key.lower().replace("-", "_") in PERSONAL_DATA_KEYS or \
        key.lower().replace("-", "").replace("_", "") in PERSONAL_DATA_KEYS


def without_personal_data(value: Any) -> Any:
    """`value` with every personal-data key removed from the mappings in it, at any depth
    (lists are walked too); other values are returned as they are. Iterative, so a
    hostile nesting depth cannot exhaust the interpreter's stack."""
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]  # (source, parent, slot)
    while pending:
        source, parent, slot = pending.pop()
        if isinstance(source, dict):
            copy: dict = {}
            parent[slot] = copy
            for key, inner in source.items():
                if not is_personal_key(key):
                    copy[key] = None
                    pending.append((inner, copy, key))
        elif isinstance(source, list):
            items: list = [None] * len(source)
            parent[slot] = items
            pending.extend((inner, items, index) for index, inner in enumerate(source))
        else:
            parent[slot] = source
    return root[0]
