"""Bring a source to local disk: a local path as it is, an `s3://` object or prefix via boto3."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys.core.errors import LakeError, NotFoundError


@contextmanager
def local_source(source: str, s3_endpoint_url: str | None = None) -> Iterator[Path]:
    """Yield a local path holding the source's files (downloaded to a temp dir for S3)."""
    if not source.startswith("s3://"):
        path = Path(source)
        if not path.exists():
            raise NotFoundError(f"source not found: {source}")
        yield path
        return
    import boto3

    bucket, _, prefix = source[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=s3_endpoint_url)
    with tempfile.TemporaryDirectory(prefix="recsys-extract-") as tmp:
        root = Path(tmp)
        try:
            keys = [obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix) for obj in page.get("Contents", [])]
        except Exception as exc:
            raise LakeError(f"cannot list {source}: {exc}") from exc
        if not keys:
            raise NotFoundError(f"source not found: {source} (no objects under that prefix)")
        single = len(keys) == 1 and keys[0] == prefix
        for key in keys:
            relative = Path(key).name if single else Path(key[len(prefix):].lstrip("/"))
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
        yield root / Path(keys[0]).name if single else root


def source_listing(source: str, s3_endpoint_url: str | None = None) -> list[tuple[str, int, str]]:
    """(name, size, version) of every object of a source without reading it: ETags of an
    `s3://` prefix, modification times of a local file or folder."""
    if source.startswith("s3://"):
        from recsys.core.data.lake import Lake

        bucket_and_prefix = source[len("s3://"):]
        bucket, _, prefix = bucket_and_prefix.partition("/")
        found = Lake(f"s3://{bucket}", s3_endpoint_url).describe(prefix)
        if not found:
            raise NotFoundError(f"source not found: {source} (no objects under that prefix)")
        return found
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"source not found: {source}")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [(f.relative_to(path).as_posix() if f != path else f.name, f.stat().st_size,
             str(f.stat().st_mtime_ns)) for f in files]
