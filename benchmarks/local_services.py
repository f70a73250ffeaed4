"""Helpers for tests and benchmarks that use the machine's real services on loopback."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def temporary_postgres_database(prefix: str) -> Iterator[str]:
    """Create a fresh database on the local PostgreSQL (trust auth) and drop it afterwards;
    yields its SQLAlchemy URL."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def wait_for_http(url: str, timeout_seconds: float = 120.0, process=None) -> bool:
    """Poll `url` until it answers 2xx; False on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        if _answers(url):
            return True
        time.sleep(0.5)
    return False


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:  # not listening yet
        return False
