"""Every alert has a runbook: a section of docs/operations.md its runbook_url points to,
saying what it means, how to confirm it and what to do, with commands."""
import re

import yaml

from tests.conftest import REPO

RULES = REPO / "infra" / "prometheus" / "rules.yml"
OPERATIONS = REPO / "docs" / "operations.md"


def sections() -> dict[str, str]:
    """GitHub anchor of each `### ` heading -> the section's text."""
    parts = re.split(r"^### (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", title.strip().lower()).replace(" ", "-"): body
            for title, body in zip(parts[1::2], parts[2::2])}


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def test_every_alert_links_to_its_runbook_section():
    found = sections()
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == 16
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
        body = found[url.split("#")[1]]
        for part in ("**Means:**", "**Confirm:**", "**Do:**"):
            assert part in body, (rule["alert"], part)
        assert re.search(r"`(curl|kubectl|recsys|redis-cli|amtool) [^`]+`", body), rule["alert"]
    assert set(found) == {name.lower() for name in names}  # no runbook of a removed alert
