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
               "infra/Dockerfile.stream",
               "infra/Dockerfile.seldon-v1", "infra/base_image.sh", "infra/python312_image.sh",
               ".dockerignore")


def ignore_rules(root: Path) -> tuple[list[str], list[str]]:
    """(the paths .dockerignore lets back in with `!path` after excluding everything with
    `*`, the patterns it excludes within them): its rules are the one definition."""
    lines = [line.strip() for line in (root / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#") and line != "*"]
    return ([rule[1:] for rule in rules if rule.startswith("!")],
            [rule.replace("**/", "*/") for rule in rules if not rule.startswith("!")])


def files(root: Path) -> list[Path]:
    included, excluded = ignore_rules(root)
    found = []
    for name in included:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and not any(
            fnmatch.fnmatch(p.relative_to(root).as_posix(), pattern) for pattern in excluded)]
    return found + [root / name for name in DOCKERFILES]


def inputs_sha256(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


if __name__ == "__main__":
    sys.stdout.write(inputs_sha256() + "\n")
