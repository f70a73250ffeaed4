"""One quarantine replay at a time per lake: a lock object in the lake.

The raw zone's de-duplication reads a date partition before writing to it, so two replays
running at once could both find an event missing and both write it. A replay therefore
takes `quarantine/replay.lock` first and a second one fails at once naming the holder:
- local lake: the file is created whole and exclusively (written to a temporary file, then
  hard-linked to its name: like O_CREAT|O_EXCL one creator wins, and it is never read half
  written) and holds the holder's host, pid, the process's start (from /proc, so a reused
  pid is not taken for the holder) and the time the lock was taken;
- S3 lake: a conditional PUT (`If-None-Match: *`: one writer wins, the others get 412).
The holder removes the lock at the end, whatever the outcome. A lock left by a replay that
died is stale and taken over with a warning naming it: on the same host when its process is
gone, on any host once it is older than `STALE_LOCK_SECONDS` (the only test on S3, where the
holder may be on another machine). A stale lock is replaced atomically: locally it is
renamed away and the take-over checks it moved the lock it judged; on S3 the new lock is
written with `If-Match` on the stale one's ETag, so of two replays taking over only one wins.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from recsys.core.data.lake import TMP_PREFIX, Lake, _S3Backend
from recsys.core.errors import LakeError, RecsysError

log = logging.getLogger(__name__)
LOCK_KEY = "quarantine/replay.lock"
STALE_LOCK_SECONDS = 6 * 3600
"""A lock older than this is stale whoever holds it (a replay of a large quarantine takes
minutes; one still running after hours is taken for dead)."""
EMPTY_LOCK_SECONDS = 60
"""A local lock file empty or unreadable (not a replay's: they are linked whole) is stale
once older than this."""


class ReplayBusy(RecsysError):
    """Another replay holds the lake's replay lock."""

    status_code = 409


def _process_start(pid: int) -> int | None:
    """The process's start (clock ticks since boot, /proc/<pid>/stat field 22), None when
    there is no such process or no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    if Path("/proc").is_dir():
        return _process_start(pid) == holder.get("process_start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(holder: dict, now: float, max_age: float = STALE_LOCK_SECONDS) -> str | None:
    """Why a lock left by `holder` may be taken over, or None while it holds."""
    taken = holder.get("taken_at")
    if not isinstance(taken, (int, float)):
        return "the lock names no time"
    if now - taken > max_age:
        return f"taken {now - taken:.0f} s ago, more than {max_age:.0f} s"
    if holder.get("host") == socket.gethostname() and not _alive(holder):
        return f"its process {holder.get('pid')} is gone"
    return None


def describe(holder: dict) -> str:
    taken = holder.get("taken_at")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(taken)) \
        if isinstance(taken, (int, float)) else "an unknown time"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {when}"


def _read(raw: bytes) -> dict:
    try:
        holder = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


@contextmanager
def replay_lock(lake: Lake, max_age: float = STALE_LOCK_SECONDS) -> Iterator[dict]:
    """Hold the lake's replay lock for the block; ReplayBusy at once when another replay
    holds it."""
    token = uuid.uuid4().hex
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "process_start": _process_start(os.getpid()), "taken_at": time.time(),
          "token": token}
    body = orjson.dumps(me)
    path = lake._backend.local_path(LOCK_KEY)
    if path is not None:
        _take_local(Path(path), body, max_age)
    else:
        _take_s3(lake, body, max_age)
    try:
        yield me
    finally:
        _release(lake, path, token)


def _take_local(path: Path, body: bytes, max_age: float) -> None:
    for _ in range(3):  # a stale lock taken over, then created again
        try:
            _create(path, body)
            return
        except FileExistsError:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue  # released meanwhile
        holder = _read(raw)
        if not holder:  # not written by a replay (they link it whole): by its age
            age = time.time() - path.stat().st_mtime
            reason = f"empty or unreadable for {age:.0f} s" \
                if age > EMPTY_LOCK_SECONDS else None
        else:
            reason = stale_reason(holder, time.time(), max_age)
        if reason is None:
            raise ReplayBusy(f"another quarantine replay holds {path}: "
                             f"{describe(holder) if holder else 'unreadable'}; "
                             f"run one replay at a time")
        _take_over_local(path, raw, holder, reason)
    raise ReplayBusy(f"the replay lock {path} changed hands three times while taken: "
                     "another replay is starting")


def _create(path: Path, body: bytes) -> None:
    """The lock file created whole or not at all: written to a temporary file, then
    hard-linked to its name (like O_CREAT|O_EXCL, the link fails when the name exists), so
    another replay never reads it half written. FileExistsError when it exists."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    except OSError as exc:  # read-only, missing permission
        raise LakeError(f"cannot create the replay lock {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:  # a full disk
        raise LakeError(f"cannot create the replay lock {path}: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _take_over_local(path: Path, raw: bytes, holder: dict, reason: str) -> None:
    moved = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return  # another replay took it over first; try again
    if moved.read_bytes() != raw:  # another replay took it over and holds it now: put back
        try:
            os.link(moved, path)
        except FileExistsError:
            pass
        moved.unlink(missing_ok=True)
        raise ReplayBusy(f"another quarantine replay took over {path} first; run one "
                         "replay at a time")
    moved.unlink(missing_ok=True)
    log.warning("quarantine replay: taking over the stale lock %s of %s (%s)", path,
                describe(holder), reason)


def _take_s3(lake: Lake, body: bytes, max_age: float) -> None:
    from botocore.exceptions import ClientError

    backend = lake._backend  # the conditional PUTs below are S3's own, not the Lake API's
    if not isinstance(backend, _S3Backend):
        raise LakeError(f"{lake.url(LOCK_KEY)} is not on S3")
    target = {"Bucket": backend.bucket, "Key": backend._key(LOCK_KEY)}
    url = lake.url(LOCK_KEY)
    try:
        backend.client.put_object(**target, Body=body, IfNoneMatch="*")
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"PreconditionFailed", "412"}:
            raise LakeError(f"cannot write the replay lock {url}: {exc}") from exc
    except Exception as exc:
        raise LakeError(f"cannot write the replay lock {url}: {exc}") from exc
    try:
        found = backend.client.get_object(**target)
        raw, etag = found["Body"].read(), found["ETag"]
    except Exception as exc:  # released meanwhile, or the lake is unreachable
        raise ReplayBusy(f"another quarantine replay holds {url} (unreadable: {exc}); run "
                         "one replay at a time") from exc
    holder = _read(raw)
    reason = stale_reason(holder, time.time(), max_age)
    if reason is None:
        raise ReplayBusy(f"another quarantine replay holds {url}: {describe(holder)}; run "
                         "one replay at a time")
    try:  # compare-and-swap: only the replay that saw this very lock replaces it
        backend.client.put_object(**target, Body=body, IfMatch=etag)
    except Exception as exc:
        raise ReplayBusy(f"another quarantine replay took over the stale lock {url} "
                         f"first ({exc}); run one replay at a time") from exc
    log.warning("quarantine replay: took over the stale lock %s of %s (%s)", url,
                describe(holder), reason)


def _release(lake: Lake, path: str | None, token: str) -> None:
    """Remove the lock if it is still this replay's (not taken over as stale meanwhile)."""
    try:
        holder = _read(lake.read_bytes(LOCK_KEY))
        if holder.get("token") != token:
            log.warning("quarantine replay: the lock %s is no longer this replay's (%s); "
                        "left in place", lake.url(LOCK_KEY), describe(holder))
            return
        if path is not None:
            Path(path).unlink(missing_ok=True)
        else:
            lake.delete(LOCK_KEY)
    except Exception as exc:  # the replay's own outcome matters more: say, and go on
        log.warning("quarantine replay: could not remove its lock %s (%s); the next replay "
                    "takes it over once stale", lake.url(LOCK_KEY), exc)
