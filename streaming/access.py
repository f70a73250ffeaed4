"""Who may write events, and how fast: the collector's write keys and rate limits.

- Write keys: `Authorization: Bearer <key>`; the keys come from `RECSYS_COLLECTOR_WRITE_KEYS`
  (comma-separated) and/or the file named by `RECSYS_COLLECTOR_WRITE_KEYS_FILE` (one key a
  line, `#` comments). The file is read again when it changes (checked at most once a
  second), so keys rotate without a restart (add the new key, move the shop over, delete
  the old one). With neither set, the embedded default creates one key under
  `<state dir>/secrets/` on first start.
- Rate limits: a token bucket per write key and one per client address; over either, 429
  with `Retry-After`. The per-client buckets are bounded (least recently seen dropped).
"""
from __future__ import annotations

import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)
KEY_FILE_NAME = "collector_write_key"


class WriteKeys:
    """The accepted keys: fixed ones plus those of a file watched for changes."""

    def __init__(self, keys: list[str] | tuple[str, ...] = (), path: Path | None = None,
                 check_every_seconds: float = 1.0):
        self.fixed = tuple(k for k in keys if k)
        self.path = Path(path) if path else None
        self._from_file: tuple[str, ...] = ()
        self._stamp: tuple[int, int] | None = None
        self._check_every = check_every_seconds
        self._checked_at = -math.inf
        self._lock = threading.Lock()
        if not self.fixed and self.path is None:
            raise ConfigError("the collector needs at least one write key "
                              "(RECSYS_COLLECTOR_WRITE_KEYS or RECSYS_COLLECTOR_WRITE_KEYS_FILE)")
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise ConfigError(f"write key file {self.path} does not exist") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        keys = keys_in(self.path.read_text())
        with self._lock:
            self._from_file, self._stamp = keys, stamp
        log.info("collector: %d write key(s) from %s", len(keys), self.path)

    def matching(self, authorization: str | None) -> str | None:
        """The key a `Bearer` header carries when it is one of ours, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer "):].strip()
        now = time.monotonic()
        if now - self._checked_at >= self._check_every:  # one stat a second, not a request
            self._checked_at = now
            try:
                self._reload()
            except (OSError, ConfigError) as exc:  # keep the keys we had; say why
                log.warning("collector: write key file unreadable, keeping the old keys: %s",
                            exc)
        with self._lock:
            keys = self.fixed + self._from_file
        found = None
        for key in keys:  # compare with every key, in constant time each
            if hmac.compare_digest(key.encode(), offered.encode()):
                found = key
        return found


def embedded_write_key(state_dir: Path) -> Path:
    """The embedded default's key file under `<state dir>/secrets/`, created (0600) with one
    random key on first use."""
    folder = Path(state_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / KEY_FILE_NAME
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.info("collector: created a write key in %s", path)
    return path


def keys_in(text: str) -> tuple[str, ...]:
    """The keys of a key file's text: one a line; blank lines and `#` comments skipped."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def configured_keys(value: str | None) -> list[str]:
    """The keys of a comma-separated setting (`RECSYS_COLLECTOR_WRITE_KEYS`)."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]


def first_key(path: Path) -> str:
    """The first key of a key file (what local tools such as `stream replay` send)."""
    keys = keys_in(Path(path).read_text())
    if not keys:
        raise ConfigError(f"write key file {path} holds no key")
    return keys[0]


class RateLimiter:
    """Token buckets by name: `rate` per second, up to `burst` at once; at most `max_names`
    buckets (the least recently used is dropped, as if it were full)."""

    def __init__(self, rate: float, burst: float, max_names: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.max_names, self.clock = rate, burst, max_names, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, name: str, cost: float = 1.0) -> float:
        """0 when `cost` tokens were taken, else the seconds until they would be there."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate if self.rate > 0 else math.inf
            self._buckets[name] = (tokens, now)
            while len(self._buckets) > self.max_names:
                self._buckets.popitem(last=False)
        return wait
