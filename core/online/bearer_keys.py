"""Bearer keys: who may call a surface (the collector's write keys, serving's tokens).

Keys are sent as `Authorization: Bearer <key>`. They come from a setting (comma-separated)
and/or a key file (one key a line, `#` comments) that is read again when it changes
(checked at most once a second), so keys rotate without a restart: add the new key, move
the clients over, delete the old one. The embedded default creates a random key file under
`<state dir>/secrets/` (0600, folder 0700) on first start when nothing is configured.
Every offered key is compared with every accepted key in constant time.
"""
from __future__ import annotations

import hmac
import logging
import math
import os
import secrets
import threading
import time
from pathlib import Path

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)
SECRETS_DIR = "secrets"


class BearerKeys:
    """The accepted keys of one surface: fixed ones plus those of a file watched for
    changes. `what` names the surface and its settings in messages."""

    def __init__(self, keys: list[str] | tuple[str, ...] = (), path: Path | None = None,
                 check_every_seconds: float = 1.0,
                 what: str = "the collector's write keys (RECSYS_COLLECTOR_WRITE_KEYS or "
                             "RECSYS_COLLECTOR_WRITE_KEYS_FILE)"):
        self.fixed = tuple(k for k in keys if k)
        self.path = Path(path) if path else None
        self._from_file: tuple[str, ...] = ()
        self._stamp: tuple[int, int] | None = None
        self._check_every = check_every_seconds
        self._checked_at = -math.inf
        self._lock = threading.Lock()
        self.what = what
        if not self.fixed and self.path is None:
            raise ConfigError(f"at least one key is needed: {what}")
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise ConfigError(f"key file {self.path} does not exist") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        keys = keys_in(self.path.read_text())
        with self._lock:
            self._from_file, self._stamp = keys, stamp
        log.info("%d key(s) from %s", len(keys), self.path)

    def matching(self, authorization: str | None) -> str | None:
        """The key a `Bearer` header carries when it is one of ours, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer "):].strip()
        found = None
        for key in self.current():  # compare with every key, in constant time each
            if hmac.compare_digest(key.encode(), offered.encode()):
                found = key
        return found

    def current(self) -> tuple[str, ...]:
        """Every accepted key now (the file re-read when it changed, at most once a second)."""
        now = time.monotonic()
        if now - self._checked_at >= self._check_every:  # one stat a second, not a request
            self._checked_at = now
            try:
                self._reload()
            except (OSError, ConfigError) as exc:  # keep the keys we had; say why
                log.warning("key file unreadable, keeping the old keys: %s", exc)
        with self._lock:
            return self.fixed + self._from_file


def embedded_key_file(state_dir: Path, name: str) -> Path:
    """The embedded default's key file `<state dir>/secrets/<name>`, created (0600, in a
    0700 folder) with one random key on first use; racing creators keep the first file."""
    folder = Path(state_dir) / SECRETS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.info("created a key in %s", path)
    return path


def keys_in(text: str) -> tuple[str, ...]:
    """The keys of a key file's text: one a line; blank lines and `#` comments skipped."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def configured_keys(value: str | None) -> list[str]:
    """The keys of a comma-separated setting (e.g. `RECSYS_COLLECTOR_WRITE_KEYS`)."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]


def first_key(path: Path) -> str:
    """The first key of a key file (what local tools such as `stream replay` send)."""
    keys = keys_in(Path(path).read_text())
    if not keys:
        raise ConfigError(f"key file {path} holds no key")
    return keys[0]


def surface_keys(configured: str | None, key_file: Path | None, state_dir: Path,
                 embedded_name: str, what: str) -> BearerKeys:
    """The keys of one surface: the comma-separated setting and/or the watched key file;
    with neither, the embedded default's generated `<state dir>/secrets/<embedded_name>`."""
    keys = configured_keys(configured)
    if not keys and key_file is None:
        key_file = embedded_key_file(state_dir, embedded_name)
    return BearerKeys(keys, key_file, what=what)


def a_surface_key(configured: str | None, key_file: Path | None, state_dir: Path,
                  embedded_name: str) -> str:
    """One key of a surface, for local tools that call it: the first configured one, else
    the first of the key file (the embedded default's, created if need be)."""
    keys = configured_keys(configured)
    if keys:
        return keys[0]
    return first_key(key_file or embedded_key_file(state_dir, embedded_name))


METRICS_TOKEN_FILE = "metrics_token"


def metrics_keys(configured: str | None, key_file: Path | None, state_dir: Path) -> BearerKeys:
    """The tokens Prometheus scrapes with (RECSYS_METRICS_TOKEN[_FILE], or the embedded
    default's generated `<state dir>/secrets/metrics_token`)."""
    return surface_keys(configured, key_file, state_dir, METRICS_TOKEN_FILE,
                        "metrics tokens (RECSYS_METRICS_TOKEN or RECSYS_METRICS_TOKEN_FILE)")
