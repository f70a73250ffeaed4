"""Shared helpers of the streaming tests: a collector with a known write key."""
from fastapi.testclient import TestClient

from recsys.core.bearer_keys import BearerKeys
from recsys.streaming.collector import CollectorAccess, create_app

WRITE_KEY = "test-write-key"
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


def keyed_access(**options) -> CollectorAccess:
    return CollectorAccess(BearerKeys([WRITE_KEY]), **options)



def collector_client(bus, limits=None, access=None, observed=None) -> TestClient:
    """A TestClient of the collector that sends the write key on every request."""
    return TestClient(create_app(bus, access or keyed_access(), limits, observed=observed),
                      headers=AUTH)
