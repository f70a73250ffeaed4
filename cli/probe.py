"""`python -m recsys.cli.probe URL`: exit 0 when URL answers 2xx within 3 s (container
HEALTHCHECK and Kubernetes exec probes; the images carry no curl)."""
from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m recsys.cli.probe URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(args[0], timeout=3) as answer:  # noqa: S310 - a probe URL
            return 0 if 200 <= answer.status < 300 else 1
    except Exception as exc:  # any failure is "unhealthy", said on stderr
        print(f"probe {args[0]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
