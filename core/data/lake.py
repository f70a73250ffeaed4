"""Data lake storage: a local folder or `s3://bucket/prefix` (through boto3).

Every write is atomic: a local file is written beside its target and renamed into
place; an S3 object becomes visible only when its single PUT completes. Readers never
see half a file.
"""
from __future__ import annotations

import builtins
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from recsys.core.errors import CorruptFileError, LakeError, NotFoundError

log = logging.getLogger(__name__)
PARQUET_COMPRESSION = "zstd"


CORRUPT_ZONE = "corrupt"
"""Where files that cannot be decoded are moved (`corrupt/<their key>`), each with a
`<key>.reason.json` beside it, so the rest of their partition stays readable."""
REASON_SUFFIX = ".reason.json"
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 30 * 60
"""A `.tmp-*` file (a write killed before its rename) older than this is removed by the next
write into its folder; a younger one may belong to a write still running."""


def remove_stale_tmp(folder: Path, max_age_seconds: float = STALE_TMP_SECONDS) -> list[Path]:
    """Remove the leftovers of killed writes in `folder`: `.tmp-*` files not modified for
    `max_age_seconds`. Returns what was removed."""
    removed: list[Path] = []
    cutoff = time.time() - max_age_seconds
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and \
                    entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (another writer swept it), or not ours to remove
            continue
    if removed:
        log.info("lake: removed %d leftover temporary file(s) of killed writes in %s",
                 len(removed), folder)
    return removed


# `builtins.list` in the annotations after a class's own `list` method, which the bare
# name means there
class _Backend(Protocol):
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def describe(self, prefix: str) -> builtins.list[tuple[str, int, str]]: ...
    def delete(self, key: str) -> None: ...
    def move(self, key: str, new_key: str) -> None: ...
    def local_path(self, key: str) -> str | None: ...


class _LocalBackend:
    def __init__(self, root: str):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def write_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
        except OSError as exc:  # read-only, missing permission: name the place
            raise LakeError(f"cannot write {target}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):  # a full disk's error names no file
                raise LakeError(f"cannot write {target}: {exc}") from exc
            raise
        remove_stale_tmp(target.parent)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"lake object not found: {self._path(key)}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = []
        # os.walk skips a folder another process removes meanwhile (retention deleting an
        # expired day): what is gone is simply not listed (rglob raised FileNotFoundError)
        for folder, _, names in os.walk(base):
            for name in names:
                if not name.startswith(TMP_PREFIX):
                    keys.append(Path(folder, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def describe(self, prefix: str) -> builtins.list[tuple[str, int, str]]:
        out = []
        for key in self.list(prefix):
            try:
                stat = self._path(key).stat()
            except FileNotFoundError:  # deleted since it was listed
                continue
            out.append((key, stat.st_size, str(stat.st_mtime_ns)))
        return out

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def move(self, key: str, new_key: str) -> None:
        target = self._path(new_key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path(key), target)
        except FileNotFoundError as exc:
            raise NotFoundError(f"lake object not found: {self._path(key)}") from exc
        except OSError as exc:
            raise LakeError(f"cannot move {self._path(key)} to {target}: {exc}") from exc

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))


S3_CLIENT_BOUNDS = {"connect_timeout": 5, "read_timeout": 30,
                    "retries": {"mode": "standard", "max_attempts": 3}}
"""botocore's wait on an S3 endpoint that stopped answering: 5 s to connect, 30 s per read,
3 attempts in all (its defaults, 60 s and up to 5 legacy attempts, hold a step for about
5 minutes per call). A frozen endpoint fails a lake call within about 2 minutes."""


class _S3Backend:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url,
                                   config=Config(**S3_CLIENT_BOUNDS))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, lambda: self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data))

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise NotFoundError(
                    f"lake object not found: s3://{self.bucket}/{self._key(key)}") from exc
            raise LakeError(f"cannot read s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        except Exception as exc:  # botocore raises many kinds; all mean "lake unreachable"
            raise LakeError(f"cannot read s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        return self._call("read", key, obj["Body"].read)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False
        except Exception as exc:  # botocore raises many kinds; all mean "lake unreachable"
            raise LakeError(f"cannot reach s3://{self.bucket}/{self._key(key)}: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        return [key for key, _, _ in self.describe(prefix)]

    def describe(self, prefix: str) -> builtins.list[tuple[str, int, str]]:
        full = self._key(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[tuple[str, int, str]] = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                found.extend((obj["Key"][strip:], int(obj["Size"]), obj["ETag"].strip('"'))
                             for obj in page.get("Contents", []))
        except Exception as exc:  # botocore raises many kinds; all mean "lake unreachable"
            raise LakeError(f"cannot list s3://{self.bucket}/{full}: {exc}") from exc
        return sorted(found)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def move(self, key: str, new_key: str) -> None:
        if not self.exists(key):
            raise NotFoundError(f"lake object not found: s3://{self.bucket}/{self._key(key)}")
        self._call("copy", key, lambda: self.client.copy_object(
            Bucket=self.bucket, Key=self._key(new_key),
            CopySource={"Bucket": self.bucket, "Key": self._key(key)}))
        self._call("delete", key, lambda: self.delete(key))

    def local_path(self, key: str) -> str | None:
        return None

    def _call(self, what: str, key: str, action) -> Any:
        try:
            return action()
        except Exception as exc:
            raise LakeError(f"cannot {what} s3://{self.bucket}/{self._key(key)}: {exc}") from exc


class Lake:
    """A data lake rooted at a local folder or an `s3://bucket/prefix` URI."""

    def __init__(self, uri: str, s3_endpoint_url: str | None = None):
        self.uri = str(uri).rstrip("/")
        self.s3_endpoint_url = s3_endpoint_url
        if self.uri.startswith("s3://"):
            bucket, _, prefix = self.uri[len("s3://"):].partition("/")
            if not bucket:
                raise LakeError(f"lake URI {uri!r} names no bucket")
            self._backend: _Backend = _S3Backend(bucket, prefix, s3_endpoint_url)
        else:
            self._backend = _LocalBackend(self.uri)
        self.set_aside_keys: list[str] = []
        """The corrupt files this object moved to the corrupt zone (`set_aside`), in order."""

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    @property
    def is_remote(self) -> bool:
        """True for an object store (`s3://`), False for a local folder."""
        return isinstance(self._backend, _S3Backend)

    def url(self, key: str) -> str:
        """The full URI of a key, for logs and reports."""
        return f"{self.uri}/{key}"

    def write_bytes(self, key: str, data: bytes) -> None:
        self._backend.write_bytes(key, data)

    def read_bytes(self, key: str) -> bytes:
        return self._backend.read_bytes(key)

    def exists(self, key: str) -> bool:
        return self._backend.exists(key)

    def list(self, prefix: str) -> list[str]:
        """Every object key below `prefix`, sorted."""
        return self._backend.list(prefix)

    def describe(self, prefix: str) -> builtins.list[tuple[str, int, str]]:
        """(key, size, version) of every object below `prefix`, sorted; the version is the
        ETag on S3 and the modification time (ns) on disk: it changes when the bytes do."""
        return self._backend.describe(prefix)

    def delete(self, key: str) -> None:
        self._backend.delete(key)

    def write_table(self, key: str, table: pa.Table) -> int:
        """Write a Parquet file (zstd) atomically; returns its size in bytes."""
        sink = io.BytesIO()
        pq.write_table(table, sink, compression=PARQUET_COMPRESSION)
        self.write_bytes(key, sink.getvalue())
        return sink.tell()

    def set_aside(self, key: str, reason: str) -> str:
        """Move a corrupt file out of its zone to `corrupt/<key>`, with the reason beside it
        in `corrupt/<key>.reason.json`; returns the new key. A file another reader already
        moved is not an error."""
        new_key = f"{CORRUPT_ZONE}/{key}"
        self.write_json(f"{new_key}{REASON_SUFFIX}", {
            "key": key, "reason": reason,
            "set_aside_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        try:
            self._backend.move(key, new_key)
        except NotFoundError:
            pass
        self.set_aside_keys.append(key)
        log.warning("lake: %s is corrupt (%s); moved to %s", self.url(key), reason,
                    self.url(new_key))
        return new_key

    def read_table(self, key: str, columns: builtins.list[str] | None = None) -> pa.Table:
        local = self._backend.local_path(key)
        if local is not None:
            if not os.path.exists(local):
                raise NotFoundError(f"lake object not found: {local}")
            with self._decoding(key):
                return pq.read_table(local, columns=columns)
        data = self.read_bytes(key)
        with self._decoding(key):
            return pq.read_table(io.BytesIO(data), columns=columns)

    @contextmanager
    def _decoding(self, key: str) -> Iterator[None]:
        """Turn a Parquet decoding failure into CorruptFileError naming the file, or, when
        the file cannot even be read (a disk's I/O error), into LakeError."""
        try:
            yield
        except (pa.ArrowException, OSError) as exc:
            local = self._backend.local_path(key)
            if local is not None:
                try:
                    with open(local, "rb") as handle:
                        while handle.read(1 << 24):
                            pass
                except OSError as io_error:
                    raise LakeError(f"cannot read {local}: {io_error}") from exc
            raise CorruptFileError(key, f"{self.url(key)} is not a readable Parquet file: "
                                        f"{type(exc).__name__}: {exc}") from exc

    def read_tables(self, keys: builtins.list[str], columns: builtins.list[str] | None = None,
                    schema: pa.Schema | None = None) -> pa.Table:
        """Read and concatenate several Parquet files (an empty table of `schema` if none).

        With `schema`, every file is read as that schema: columns a file was written without
        (an older schema version) are nulls, and columns it has beyond the schema are left
        out - so a lake written by an earlier release reads beside a newer one."""
        if schema is None:
            tables = [self.read_table(k, columns=columns) for k in keys]
            if not tables:
                raise NotFoundError("no Parquet files to read and no schema given")
            return pa.concat_tables(tables)
        target = pa.schema([schema.field(n) for n in (columns or schema.names)])
        tables = [self._read_as(k, target) for k in keys]
        return pa.concat_tables(tables) if tables else target.empty_table()

    def _read_as(self, key: str, target: pa.Schema) -> pa.Table:
        local = self._backend.local_path(key)
        source = local if local is not None else io.BytesIO(self.read_bytes(key))
        if local is not None and not os.path.exists(local):
            raise NotFoundError(f"lake object not found: {local}")
        with self._decoding(key):
            parquet = pq.ParquetFile(source)
            present = set(parquet.schema_arrow.names)
            table = parquet.read(columns=[n for n in target.names if n in present])
        arrays = [table.column(f.name).cast(f.type) if f.name in present
                  else pa.nulls(table.num_rows, f.type) for f in target]
        return pa.Table.from_arrays(arrays, schema=target)

    def write_json(self, key: str, payload: Any) -> None:
        self.write_bytes(key, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))
