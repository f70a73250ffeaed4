"""Print the install_requires of a setup.cfg, one a line (the image's dependency layer), or,
given extras' names after the file, those extras' requirements instead (the Spark image)."""
import configparser
import sys

parser = configparser.ConfigParser()
parser.read(sys.argv[1])
extras = sys.argv[2:]
blocks = [parser["options.extras_require"][name] for name in extras] if extras \
    else [parser["options"]["install_requires"]]
for block in blocks:
    for line in block.strip().splitlines():
        if line.strip():
            print(line.strip())
