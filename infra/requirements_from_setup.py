"""Print the requirements of setup.cfg's install_requires and of the extras named after the
file, one a line, for an image's dependency layer (`infra/Dockerfile*`). An extra that names
the project's own extras (`recsys-mlops[models,stream]`) is expanded, so each requirement is
written once in setup.cfg."""
import configparser
import re
import sys

SELF = re.compile(r"^recsys-mlops\[([a-z,\s-]+)\]$")


def requirements(parser: configparser.ConfigParser, extras: list[str]) -> list[str]:
    found = _lines(parser["options"]["install_requires"])
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        for line in _lines(parser["options.extras_require"][extra]):
            nested = SELF.match(line)
            if nested:
                pending += [name.strip() for name in nested.group(1).split(",")]
            else:
                found.append(line)
    return list(dict.fromkeys(found))


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


if __name__ == "__main__":
    config = configparser.ConfigParser()
    config.read(sys.argv[1])
    print("\n".join(requirements(config, sys.argv[2:])))
