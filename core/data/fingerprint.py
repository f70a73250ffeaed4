"""Content fingerprints: which bytes a run was built from."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

CHUNK = 8 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def source_sha256(path: Path) -> str:
    """SHA-256 over a file, or over a folder's files (names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def listing_sha256(entries: list[tuple[str, int, str]]) -> str:
    """Fingerprint of a listing of (name, size, version) - ETags on S3, modification times
    on disk: cheap to take, and it changes when any object is added, removed or rewritten."""
    digest = hashlib.sha256()
    for name, size, version in sorted(entries):
        digest.update(f"{name}\0{size}\0{version}\n".encode())
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    """Order-insensitive fingerprint of a frame's rows (row hashes, sorted)."""
    part = frame[columns] if columns else frame
    hashed = pd.util.hash_pandas_object(part, index=False).sort_values().to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()
