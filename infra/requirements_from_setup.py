"""Print the install_requires of a setup.cfg, one a line (the image's dependency layer)."""
import configparser
import sys

parser = configparser.ConfigParser()
parser.read(sys.argv[1])
for line in parser["options"]["install_requires"].strip().splitlines():
    if line.strip():
        print(line.strip())
