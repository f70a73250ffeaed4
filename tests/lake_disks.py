"""A small disk for a test's lake: a tmpfs of a given size (needs root), which a test can
fill or remount read-only; the chaos tests of every lake writer share it."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (`1m`, `64m`) on `folder` (made here); skip the test where
    that is not possible; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the lake needs root")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, options: str) -> None:
    """Remount the tmpfs (`ro`, `rw`)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)
