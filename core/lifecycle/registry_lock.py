"""One lock around every alias move of a registered model, across processes and machines.

Two pipeline runs gated against the same champion must not both promote: the move checks
that the champion is still the one the gate compared with, and that check and the move
happen under this lock.

- PostgreSQL (the registry's database, or `RECSYS_REGISTRY_LOCK_URL`): a session-level
  advisory lock keyed by the model name, held by one connection for the duration of the
  move; it holds across machines.
- The embedded SQLite registry: an exclusive `flock` on a file beside the database; it
  holds across processes of one machine, which is where that registry lives.
- An HTTP tracking server hides its database: give `RECSYS_REGISTRY_LOCK_URL` (the
  server's PostgreSQL, `postgresql://...`, or a lock file path shared by every writer).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from recsys.core.errors import ConfigError, RecsysError


class RegistryBusy(RecsysError):
    """Another writer held the registry lock for longer than we would wait."""

    status_code = 503


RegistryLock = AbstractContextManager[None]


class _Reusable(AbstractContextManager):
    """A lock that can be entered again after it was left (each entry acquires anew)."""

    def __init__(self, acquire: Callable[[], AbstractContextManager[None]]):
        self._acquire = acquire
        self._held: list[AbstractContextManager[None]] = []

    def __enter__(self) -> None:
        held = self._acquire()
        held.__enter__()
        self._held.append(held)

    def __exit__(self, *exc_info) -> bool | None:
        return self._held.pop().__exit__(*exc_info)


def registry_lock(tracking_uri: str, name: str, lock_url: str | None = None,
                  timeout: float = 60.0) -> RegistryLock:
    """The lock for alias moves of model `name` in the registry at `tracking_uri`."""
    target = lock_url or tracking_uri
    if target.startswith(("postgresql", "postgres://")):
        return _Reusable(lambda: _advisory_lock(target, name, timeout))
    if target.startswith("sqlite:///"):
        path = Path(target[len("sqlite:///"):] + f".{_slug(name)}.lock")
        return _Reusable(lambda: _file_lock(path, timeout))
    if target.startswith(("/", "./", "file:")):
        return _Reusable(lambda: _file_lock(Path(target.removeprefix("file:")), timeout))
    raise ConfigError(f"cannot lock alias moves of a registry at {tracking_uri!r}: set "
                      "RECSYS_REGISTRY_LOCK_URL to its PostgreSQL (postgresql://...) or to a "
                      "lock file every writer shares")


def configured_lock(tracking_uri: str, name: str, lock_url: str | None = None
                    ) -> RegistryLock | None:
    """The registry lock when one can be named (a local store, or `lock_url`), else None:
    for the gate's `challenger` move, which falls back to compare-and-set alone."""
    try:
        return registry_lock(tracking_uri, name, lock_url)
    except ConfigError:
        return None


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _key(name: str) -> int:
    """A signed 64-bit advisory-lock key for the model name."""
    return int.from_bytes(hashlib.sha256(f"recsys-registry:{name}".encode()).digest()[:8],
                          "big", signed=True)


@contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryBusy(
                        f"registry lock {path} held for over {timeout:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(url: str, name: str, timeout: float) -> Iterator[None]:
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = psycopg2.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
        user=parsed.username, password=parsed.password, dbname=parsed.database)
    connection.autocommit = True
    key = _key(name)
    try:
        with connection.cursor() as cursor:
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise RegistryBusy(f"registry advisory lock {key} held for over "
                                       f"{timeout:.0f} s")
                time.sleep(0.05)
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()
