"""Print the SHA-256 of everything `make image` builds from: the Dockerfiles, the base
image's script and the build context that .dockerignore lets through (sources, pins,
entrypoint; never byte code). `make image` labels the images with it and skips the build
while the images carry the same value."""
import fnmatch
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = ("infra/Dockerfile", "infra/Dockerfile.serving", "infra/Dockerfile.spark",
               "infra/base_image.sh", ".dockerignore")
SKIPPED = ("*/__pycache__/*", "*.pyc")


def context_paths(root: Path) -> list[str]:
    """The paths .dockerignore lets through: it excludes everything (`*`) and lets named
    paths back in with `!path`."""
    lines = [line.strip() for line in (root / ".dockerignore").read_text().splitlines()]
    return [line[1:] for line in lines if line.startswith("!")]


def files(root: Path) -> list[Path]:
    found = []
    for name in context_paths(root):
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and not any(
            fnmatch.fnmatch(p.relative_to(root).as_posix(), pattern) for pattern in SKIPPED)]
    return found + [root / name for name in DOCKERFILES]


def inputs_sha256(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


if __name__ == "__main__":
    sys.stdout.write(inputs_sha256() + "\n")
